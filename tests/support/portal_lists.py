"""Many signals for one organisation, straight into a running portal world's database
(as a region's data steward found them: thousands for one organisation), for the tests
of the portal's paged lists: signals with random pseudonyms (no key holder asked), some
with a match with another organisation's signal about the same young person, some
registered through the portal by a given person."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from typing import cast

from sqlalchemy import Table, create_engine, insert, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from vir.domain.signals import Professional
from vir.store import signals as repo
from vir.store.records import Signal
from vir.store.tables import MatchMemberRow, MatchRow, PortalSignalRow

MATCHES = cast(Table, MatchRow.__table__)
MEMBERS = cast(Table, MatchMemberRow.__table__)
PORTAL = cast(Table, PortalSignalRow.__table__)
SIGNAL_LINK = re.compile(r'href="/meldingen/([0-9a-f-]{36})"')
MATCH_LINK = re.compile(r'href="/matches/([0-9a-f-]{36})"')


def _signal(oin: str, epoch: int, at: dt.datetime, person: bytes) -> Signal:
    return Signal(
        id=str(uuid.uuid4()),
        oin=oin,
        local_ref=f"seed-{uuid.uuid4().hex[:16]}",
        epoch=epoch,
        person=person,
        address=None,
        remove_on=dt.date.today() + dt.timedelta(days=300),
        professional=Professional("Test Persoon", None, None, None),
        content_hash=os.urandom(32),
        created_at=at,
    )


def seed(
    url: str,
    oin: str,
    count: int,
    *,
    epoch: int,
    newest: dt.datetime,
    person: str | None = None,
    partner: str | None = None,
    matched: int = 0,
    via: str = "person",
) -> list[str]:
    """``count`` active signals of ``oin``, a minute apart back from ``newest``, every
    tenth sharing its created_at with the one before (the id decides their order);
    ``person``: registered through the portal by that person; the first ``matched`` in a
    match with a signal of ``partner`` about the same young person (``via``: "parent"
    or "address", of the same household, a key of its own). Their ids."""
    made: list[Signal] = []
    for i in range(count):
        step = i - 1 if i % 10 == 1 else i
        made.append(_signal(oin, epoch, newest - dt.timedelta(minutes=step), os.urandom(32)))
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as session, session.begin():
            partners = [
                _signal(cast(str, partner), epoch, s.created_at, s.person) for s in made[:matched]
            ]
            repo.insert_signals(session, [(s, ()) for s in [*made, *partners]])
            if person is not None:
                session.execute(
                    insert(PORTAL),
                    [
                        {"signal_id": s.id, "person": person, "created_at": s.created_at}
                        for s in made
                    ],
                )
            for ours, theirs in zip(made, partners, strict=False):
                match_id = str(uuid.uuid4())
                session.execute(
                    insert(MATCHES),
                    [
                        {
                            "id": match_id,
                            "via": via,
                            "key": ours.person if via == "person" else os.urandom(32),
                            "created_at": ours.created_at,
                            "ended_at": None,
                            "coordinator": ours.id,
                        }
                    ],
                )
                session.execute(
                    insert(MEMBERS),
                    [
                        {"match_id": match_id, "signal_id": s.id, "joined_at": ours.created_at}
                        for s in (ours, theirs)
                    ],
                )
    finally:
        engine.dispose()
    return [s.id for s in made]


def newest_first(url: str, oin: str, person: str | None = None) -> list[str]:
    """The ids of the organisation's active signals (of those ``person`` registered
    through the portal), newest first by (created_at, id)."""
    sql = "SELECT s.id FROM signals s"
    if person is not None:
        sql += " JOIN portal_signals p ON p.signal_id = s.id AND p.person = :person"
    sql += " WHERE s.oin = :oin ORDER BY s.created_at DESC, s.id DESC"
    return [r[0] for r in _rows(url, sql, oin=oin, person=person)]


def matches_of(url: str, oin: str, person: str | None = None) -> list[str]:
    """The ids of the active matches of the organisation's active signals (those of
    ``person``), once per signal in one."""
    sql = (
        "SELECT m.match_id FROM match_members m JOIN signals s ON s.id = m.signal_id"
        " JOIN matches x ON x.id = m.match_id AND x.ended_at IS NULL"
    )
    if person is not None:
        sql += " JOIN portal_signals p ON p.signal_id = s.id AND p.person = :person"
    sql += " WHERE s.oin = :oin"
    return [r[0] for r in _rows(url, sql, oin=oin, person=person)]


def person_of(url: str, signal_id: str) -> str:
    """The portal person who registered the signal."""
    rows = _rows(url, "SELECT person FROM portal_signals WHERE signal_id = :id", id=signal_id)
    return str(rows[0][0])


def _rows(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def next_link(html: str, path: str) -> str | None:
    found = re.search(rf'href="({re.escape(path)}\?na=[A-Za-z0-9_-]+)"', html)
    return found[1] if found else None


def previous_link(html: str, path: str) -> str | None:
    found = re.search(rf'href="({re.escape(path)}\?voor=[A-Za-z0-9_-]+)"', html)
    return found[1] if found else None
