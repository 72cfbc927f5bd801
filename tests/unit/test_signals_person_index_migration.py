"""Migration 0022: ``uq_signals_oin_person`` becomes a unique index instead of a table
constraint (SQLite rebuilds the table for it), and back on downgrade. Every row stays,
in the tables that reference ``signals`` too (their ON DELETE CASCADE must not fire
when SQLite drops the old table), and every other column, key, index and foreign key
stays as it was. On the suite's database: SQLite, or PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool
from support import schema, seed
from support.instore import ORGS, T0, Store, fresh_store, template

NAME = "uq_signals_oin_person"
SIGNALS = 30


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A store with rows in ``signals`` and in every table that references it, some
    shadows written (as during a rekey)."""
    with fresh_store(template(tmp_path), tmp_path / "index.sqlite") as store:
        seed.seed(store.db, SIGNALS)
        with store.db.write() as session:
            ids = list(session.scalars(text("SELECT id FROM signals ORDER BY id")))
            match = session.scalar(text("SELECT id FROM matches WHERE key IS NOT NULL LIMIT 1"))
            for signal_id in ids[:2]:
                session.execute(
                    text(
                        "INSERT INTO match_members (match_id, signal_id, joined_at) "
                        "VALUES (:m, :s, :t)"
                    ),
                    {"m": match, "s": signal_id, "t": T0},
                )
            for signal_id in ids[:3]:
                session.execute(
                    text(
                        "INSERT INTO portal_signals (signal_id, person, created_at) "
                        "VALUES (:s, :p, :t)"
                    ),
                    {"s": signal_id, "p": "p" * 64, "t": T0},
                )
            session.execute(
                text("UPDATE signals SET person_next = person WHERE local_ref = 'seed-1'")
            )
        yield store


def _url(store: Store) -> str:
    return store.db.engine.url.render_as_string(hide_password=False)


@pytest.fixture
def engine(store: Store) -> Iterator[Engine]:
    engine = create_engine(_url(store), poolclass=NullPool)
    yield engine
    engine.dispose()


def _sqlite_indexes(connection: Connection) -> list[tuple[Any, ...]]:
    """SQLite's own list of the indexes on ``signals``: (name, unique, origin, columns),
    the automatic ones by origin ("u": a UNIQUE table constraint, "pk": the key)."""
    found = []
    for _seq, name, unique, origin, _partial in connection.exec_driver_sql(
        "PRAGMA index_list(signals)"
    ):
        columns = [r[2] for r in connection.exec_driver_sql(f'PRAGMA index_info("{name}")')]
        found.append((name if origin == "c" else origin, unique, origin, columns))
    return sorted(found)


def _without(found: dict[str, Any], name: str) -> dict[str, Any]:
    """``schema`` without anything called ``name`` on ``signals``."""
    signals = dict(found["signals"])
    for kind in ("unique", "indexes"):
        signals[kind] = [c for c in signals[kind] if c.get("name") != name]
    return {**found, "signals": signals}


def test_the_constraint_becomes_an_index_and_back_keeping_every_row(
    store: Store, engine: Engine
) -> None:
    schema.downgrade_to(_url(store), "0023")  # what 0022 made (later migrations changed signals)
    with engine.connect() as connection:
        head_schema, head_rows = schema.schema(connection), schema.rows(connection)
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            head_sqlite = _sqlite_indexes(connection)
    assert len(head_rows["match_members"]) == 2 and len(head_rows["portal_signals"]) == 3
    assert len(head_rows["signal_parents"]) == SIGNALS
    signals = head_schema["signals"]
    assert {"name": NAME, "column_names": ["oin", "person"], "unique": True} in [
        {k: i[k] for k in ("name", "column_names", "unique")} for i in signals["indexes"]
    ]
    assert NAME not in [u["name"] for u in signals["unique"]]
    if sqlite:  # a named index, no longer SQLite's automatic one of a table constraint
        assert (NAME, 1, "c", ["oin", "person"]) in head_sqlite
        assert ("u", 1, "u", ["oin", "person"]) not in head_sqlite

    schema.downgrade_to(_url(store), "0021")
    with engine.connect() as connection:
        old_schema, old_rows = schema.schema(connection), schema.rows(connection)
        if sqlite:
            old_sqlite = _sqlite_indexes(connection)
            schema.sqlite_is_sound(connection)
    assert {"name": NAME, "column_names": ["oin", "person"]} in [
        {k: u[k] for k in ("name", "column_names")} for u in old_schema["signals"]["unique"]
    ]
    # PostgreSQL lists a constraint's own index among the indexes, marked as such.
    indexes = old_schema["signals"]["indexes"]
    assert NAME not in [i["name"] for i in indexes if not i.get("duplicates_constraint")]
    # Everything else as it was (tables made after 0021 are gone, with their rows).
    shared = set(old_schema)
    assert _without(old_schema, NAME) == _without(
        {t: s for t, s in head_schema.items() if t in shared}, NAME
    )
    assert old_rows == {t: rows for t, rows in head_rows.items() if t in shared}
    if sqlite:
        assert ("u", 1, "u", ["oin", "person"]) in old_sqlite
        assert sorted(old_sqlite) == sorted(
            [("u", 1, "u", ["oin", "person"]) if i[0] == NAME else i for i in head_sqlite]
        )

    schema.upgrade_to(_url(store), "0023")
    with engine.connect() as connection:
        assert schema.schema(connection) == head_schema
        assert schema.rows(connection) == head_rows
        if sqlite:
            assert _sqlite_indexes(connection) == head_sqlite
            schema.sqlite_is_sound(connection)


def test_the_index_refuses_a_second_signal_of_one_person_in_one_organisation(
    store: Store, engine: Engine
) -> None:
    with engine.connect() as connection, pytest.raises(IntegrityError), connection.begin():
        connection.execute(
            text(
                "INSERT INTO signals (id, oin, local_ref, epoch, person, remove_on, "
                "professional_name, content_hash, created_at) VALUES ('again', :oin, "
                "'again', 1, :person, :remove_on, 'Anna de Vries', :hash, :created)"
            ),
            {
                "oin": str(ORGS[0].oin),
                "person": seed.pseudonym("person:0"),
                "remove_on": dt.date(2028, 1, 1),
                "hash": bytes(32),
                "created": T0,
            },
        )
