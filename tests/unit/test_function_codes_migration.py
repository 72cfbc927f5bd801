"""Migration 0009: stored free-text functions become codes or NULL, also in notifications."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import create_engine, text

from vir.domain import functions
from vir.store.migrate import upgrade

MIGRATION = (
    Path(__file__).resolve().parents[2] / "vir/store/migrations/versions/0009_function_codes.py"
)
OIN = "00000009000000000100"
STORED = {
    "s1": "mentor",  # a code: kept
    "s2": "Intern begeleider",  # reads as a code: made one
    "s3": "Zorgcoördinator",
    "s4": "mentor, vermoedt mishandeling door stiefvader",  # free text: cleared
    "s5": "GZ-psycholoog",
    "s6": None,
}


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0009", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _payload(function: Any) -> str:
    view = {
        "id": "m",
        "kind": "person",
        "via": "person",
        "active": True,
        "participants": [
            {
                "organisation": {"oin": OIN, "name": "School"},
                "professional": {
                    "name": "Anna de Wit",
                    "email": "a@school.example",
                    "phone": None,
                    "function": function,
                },
                "coordinator": None,
                "since": "2026-11-01T00:00:00Z",
            }
        ],
    }
    return json.dumps(view, separators=(",", ":"), ensure_ascii=False)


def test_free_text_functions_are_cleared_and_codes_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'functions.db'}"
    upgrade(url, "0008")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (oin, name, category, region, created_at) "
                "VALUES (:oin, 'School', 'education', 'Rotterdam', '2026-11-01 00:00:00')"
            ),
            {"oin": OIN},
        )
        for n, (ref, function) in enumerate(STORED.items()):
            values = {"id": ref, "oin": OIN, "ref": ref, "f": function, "p": bytes([n]) * 32}
            connection.execute(
                text(
                    "INSERT INTO signals (id, oin, local_ref, epoch, person, remove_on, "
                    "professional_name, professional_email, professional_function, "
                    "content_hash, created_at) VALUES (:id, :oin, :ref, 1, :p, '2027-11-01', "
                    "'Anna de Wit', 'a@school.example', :f, :p, '2026-11-01 00:00:00')"
                ),
                values,
            )
            connection.execute(
                text(
                    "INSERT INTO archived_signals (id, oin, local_ref, person, "
                    "professional_name, professional_function, registered_at, remove_on, "
                    "archived_on, reason, destroy_on) VALUES (:id, :oin, :ref, :p, "
                    "'Anna de Wit', :f, '2026-11-01 00:00:00', '2027-11-01', '2026-11-02', "
                    "'risk_ended', '2031-11-02')"
                ),
                values,
            )
            connection.execute(
                text(
                    "INSERT INTO notifications (seq, id, oin, position, local_ref, type, "
                    "match_id, created_at, payload) VALUES (:seq, :id, :oin, :seq, :ref, "
                    "'match.created', 'm', '2026-11-01 00:00:00', :payload)"
                ),
                values | {"seq": n + 1, "payload": _payload(function)},
            )
        connection.execute(
            text(
                "INSERT INTO notifications (seq, id, oin, position, local_ref, type, match_id, "
                "created_at, payload) VALUES (99, 'n99', :oin, 99, 'r', 'match.left', 'm', "
                "'2026-11-01 00:00:00', :payload)"
            ),
            {"oin": OIN, "payload": _payload("Leerkracht groep 7; vader drinkt")},
        )
    untouched = _payload("mentor")
    engine.dispose()

    upgrade(url)

    engine = create_engine(url)
    expected = {
        "s1": "mentor",
        "s2": "intern_begeleider",
        "s3": "zorgcoordinator",
        "s4": None,
        "s5": "gz_psycholoog",
        "s6": None,
    }
    with engine.connect() as connection:
        for table in ("signals", "archived_signals"):
            found = dict(
                connection.execute(text(f"SELECT id, professional_function FROM {table}")).all()
            )
            assert found == expected, table
        payloads = dict(connection.execute(text("SELECT id, payload FROM notifications")).all())
    engine.dispose()
    shown = {
        ref: json.loads(payload)["participants"][0]["professional"]["function"]
        for ref, payload in payloads.items()
    }
    assert shown == expected | {"n99": None}
    assert payloads["s1"] == untouched  # a payload without free text is not rewritten
    everything = json.dumps(payloads, ensure_ascii=False)
    assert "mishandeling" not in everything and "drinkt" not in everything


def test_the_codes_kept_by_0009_are_catalogue_codes() -> None:
    """0009 lists the codes as they were; every one of them must still be a code (a code
    taken out of the catalogue later needs a migration of its own)."""
    migration = _migration()
    assert set(functions.CODES) >= migration.CODES
    assert all(migration.as_code(code) == code for code in migration.CODES)
