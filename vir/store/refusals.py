"""The ``refusal_counts`` table: refused requests counted per minute and key until they
are in the audit log (``vir.services.refusals`` decides what is written when)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from vir.store.tables import RefusalCountRow

_TABLE = cast(Table, RefusalCountRow.__table__)
_C = _TABLE.c


@dataclass(frozen=True, slots=True)
class RefusalKey:
    """What refusals are counted under; '' for a part that is absent."""

    minute: str  # 2026-12-01T10:31Z
    reason: str
    endpoint: str
    organisation: str = ""
    certificate: str = ""
    network: str = ""


@dataclass(frozen=True, slots=True)
class RefusalCount:
    key: RefusalKey
    count: int  # refusals counted
    audited: int  # of which in audit entries already
    entries: int  # audit entries written for this key


def _is(key: RefusalKey) -> ColumnElement[bool]:
    return (
        (_C.minute == key.minute)
        & (_C.reason == key.reason)
        & (_C.endpoint == key.endpoint)
        & (_C.organisation == key.organisation)
        & (_C.certificate == key.certificate)
        & (_C.network == key.network)
    )


def _columns(key: RefusalKey) -> dict[str, str]:
    return {
        "minute": key.minute,
        "reason": key.reason,
        "endpoint": key.endpoint,
        "organisation": key.organisation,
        "certificate": key.certificate,
        "network": key.network,
    }


def get(session: Session, key: RefusalKey) -> RefusalCount | None:
    row = session.execute(select(_C.count, _C.audited, _C.entries).where(_is(key))).first()
    return None if row is None else RefusalCount(key, row[0], row[1], row[2])


def keys_in(session: Session, minute: str, *, besides: str) -> int:
    """How many keys ``minute`` has, not counting those with reason ``besides``."""
    query = select(func.count()).where(_C.minute == minute, _C.reason != besides)
    return int(session.execute(query).scalar_one())


def insert_count(session: Session, key: RefusalKey, count: int, audited: int, entries: int) -> None:
    session.execute(
        insert(_TABLE).values(**_columns(key), count=count, audited=audited, entries=entries)
    )


def add_one(session: Session, key: RefusalKey) -> None:
    session.execute(update(_TABLE).where(_is(key)).values(count=_C.count + 1))


def mark_audited(session: Session, count: RefusalCount) -> None:
    """All of ``count.count`` is in the audit log now, in one more entry."""
    session.execute(
        update(_TABLE).where(_is(count.key)).values(audited=count.count, entries=count.entries + 1)
    )


def _unaudited(before: str, open_minute: str | None, besides: str) -> ColumnElement[bool]:
    due = _C.minute < before
    if open_minute is not None:
        due = due | ((_C.minute == open_minute) & (_C.reason != besides))
    return (_C.count > _C.audited) & due


def any_due(session: Session, before: str, open_minute: str | None, besides: str) -> bool:
    """Whether some counts of minutes before ``before`` (and, given ``open_minute``, of
    that minute, except reason ``besides``) are not in the audit log yet."""
    query = select(exists().where(_unaudited(before, open_minute, besides)))
    return bool(session.execute(query).scalar_one())


def due(session: Session, before: str, open_minute: str | None, besides: str) -> list[RefusalCount]:
    """The counts ``any_due`` asks about, in key order."""
    rows = session.execute(
        select(
            _C.minute,
            _C.reason,
            _C.endpoint,
            _C.organisation,
            _C.certificate,
            _C.network,
            _C.count,
            _C.audited,
            _C.entries,
        )
        .where(_unaudited(before, open_minute, besides))
        .order_by(_C.minute, _C.reason, _C.endpoint, _C.organisation, _C.certificate, _C.network)
    )
    return [RefusalCount(RefusalKey(*row[:6]), *row[6:]) for row in rows]


def any_before(session: Session, before: str) -> bool:
    """Whether any counts of minutes before ``before`` are kept, audited or not."""
    return bool(session.execute(select(exists().where(_C.minute < before))).scalar_one())


def delete_before(session: Session, before: str) -> None:
    """Forget the minutes before ``before`` (call once their counts are audited)."""
    session.execute(delete(_TABLE).where(_C.minute < before))
