"""Migration 0012: content hashes of signals stored before it are recomputed without
their pseudonyms, so that a repeat is still recognised (after a rekey too); the shadow
columns arrive empty."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from vir.domain.intake import SignalRequest
from vir.domain.signals import Professional
from vir.store.migrate import upgrade

PERSON, MOTHER, FATHER, ADDRESS = (bytes([i]) * 32 for i in (1, 2, 3, 4))
PRO = Professional("Anna de Wit", "anna@example.org", function="jeugdhulpverlener")
STORED_REMOVE_ON = dt.date(2028, 3, 1)


def _old_hash(request: SignalRequest) -> bytes:
    """The content hash as vir computed it before 0012 (pseudonyms and epoch included)."""
    document: dict[str, object] = {
        "epoch": request.epoch,
        "person": request.person.hex(),
        "parents": sorted(p.hex() for p in request.parents),
        "address": request.address.hex() if request.address else None,
        "remove_on": request.remove_on.isoformat() if request.remove_on else None,
        "professional": request.professional.as_dict(),
    }
    if request.archive_until is not None:
        document["archive_until"] = request.archive_until.isoformat()
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()


@pytest.mark.parametrize(
    "request_",
    [
        SignalRequest("a", 1, PERSON, (MOTHER, FATHER), ADDRESS, None, PRO),
        SignalRequest("b", 1, PERSON, (FATHER,), None, STORED_REMOVE_ON, PRO),
        SignalRequest("c", 1, PERSON, (), ADDRESS, None, PRO, dt.date(2029, 1, 1)),
    ],
    ids=["removal-date-not-given", "removal-date-given", "archive-until"],
)
def test_stored_hashes_become_the_hash_of_the_same_request(
    tmp_path: Path, request_: SignalRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    upgrade(url, "0011")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (oin, name, category, region, created_at) "
                "VALUES ('00000009000000000100', 'School', 'education', 'R', '2026-11-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO signals (id, oin, local_ref, epoch, person, address, remove_on, "
                "professional_name, professional_email, professional_function, content_hash, "
                "created_at, archive_until) VALUES ('s1', '00000009000000000100', :ref, 1, "
                ":person, :address, :remove_on, :name, :email, :function, :hash, "
                "'2026-11-01 00:00:00', :archive_until)"
            ),
            {
                "ref": request_.local_ref,
                "person": request_.person,
                "address": request_.address,
                "remove_on": STORED_REMOVE_ON,
                "name": PRO.name,
                "email": PRO.email,
                "function": PRO.function,
                "hash": _old_hash(request_),
                "archive_until": request_.archive_until,
            },
        )
        for parent in request_.parents:
            connection.execute(
                text("INSERT INTO signal_parents (signal_id, parent) VALUES ('s1', :p)"),
                {"p": parent},
            )
    engine.dispose()
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        stored, shadows = connection.execute(
            text("SELECT content_hash, coalesce(person_next, address_next) FROM signals")
        ).one()
    engine.dispose()
    assert stored == request_.content_hash()
    assert shadows is None
    # The hash no longer depends on the pseudonyms or the epoch, only on their shape.
    moved = SignalRequest(
        request_.local_ref,
        2,
        bytes(32),
        tuple(bytes([9, i]) * 16 for i in range(len(request_.parents))),
        bytes(32) if request_.address else None,
        request_.remove_on,
        PRO,
        request_.archive_until,
    )
    assert moved.content_hash() == stored
