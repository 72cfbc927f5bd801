"""Reading and writing signals, matches and notifications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from vir.domain.matching import GroupKey, Via
from vir.domain.signals import SignalFacts
from vir.store.tables import (
    ExcludedAddressRow,
    MatchMemberRow,
    MatchRow,
    NotificationRow,
    SignalParentRow,
    SignalRow,
)


def parents_of(session: Session, signal_ids: Collection[str]) -> dict[str, set[bytes]]:
    found: dict[str, set[bytes]] = {i: set() for i in signal_ids}
    if signal_ids:
        rows = session.execute(
            select(SignalParentRow.signal_id, SignalParentRow.parent).where(
                SignalParentRow.signal_id.in_(signal_ids)
            )
        )
        for signal_id, parent in rows:
            found[signal_id].add(parent)
    return found


def facts(session: Session, rows: Iterable[SignalRow]) -> list[SignalFacts]:
    rows = list(rows)
    parents = parents_of(session, [r.id for r in rows])
    return [SignalFacts(r.id, r.oin, r.person, frozenset(parents[r.id]), r.address) for r in rows]


def group_rows(session: Session, key: GroupKey) -> list[SignalRow]:
    """The active signals in one group (see ``vir.domain.matching``)."""
    if key.via is Via.PERSON:
        condition = SignalRow.person == key.key
    elif key.via is Via.ADDRESS:
        condition = SignalRow.address == key.key
    else:
        as_parent = select(SignalParentRow.signal_id).where(SignalParentRow.parent == key.key)
        condition = or_(SignalRow.person == key.key, SignalRow.id.in_(as_parent))
    return list(session.scalars(select(SignalRow).where(condition).order_by(SignalRow.id)))


def excluded(session: Session, addresses: Collection[bytes]) -> set[bytes]:
    if not addresses:
        return set()
    return set(
        session.scalars(
            select(ExcludedAddressRow.address).where(ExcludedAddressRow.address.in_(addresses))
        )
    )


def active_match(session: Session, key: GroupKey) -> MatchRow | None:
    return session.scalars(
        select(MatchRow).where(
            MatchRow.via == key.via.value, MatchRow.key == key.key, MatchRow.ended_at.is_(None)
        )
    ).first()


def members(session: Session, match_id: str) -> dict[str, dt.datetime]:
    rows = session.execute(
        select(MatchMemberRow.signal_id, MatchMemberRow.joined_at).where(
            MatchMemberRow.match_id == match_id
        )
    )
    return {signal_id: joined_at for signal_id, joined_at in rows}


def match_keys_of(session: Session, signal_id: str) -> list[GroupKey]:
    rows = session.execute(
        select(MatchRow.via, MatchRow.key)
        .join(MatchMemberRow, MatchMemberRow.match_id == MatchRow.id)
        .where(MatchMemberRow.signal_id == signal_id, MatchRow.ended_at.is_(None))
    )
    return [GroupKey(Via(via), key) for via, key in rows if key is not None]


def matches_of(session: Session, signal_id: str) -> list[MatchRow]:
    return list(
        session.scalars(
            select(MatchRow)
            .join(MatchMemberRow, MatchMemberRow.match_id == MatchRow.id)
            .where(MatchMemberRow.signal_id == signal_id, MatchRow.ended_at.is_(None))
            .order_by(MatchRow.created_at, MatchRow.id)
        )
    )


def signal_by_ref(session: Session, oin: str, local_ref: str) -> SignalRow | None:
    return session.scalars(
        select(SignalRow).where(SignalRow.oin == oin, SignalRow.local_ref == local_ref)
    ).first()


def signal_by_person(session: Session, oin: str, person: bytes) -> SignalRow | None:
    return session.scalars(
        select(SignalRow).where(SignalRow.oin == oin, SignalRow.person == person)
    ).first()


def delete_members(session: Session, match_id: str, signal_ids: Collection[str]) -> None:
    if signal_ids:
        session.execute(
            delete(MatchMemberRow).where(
                MatchMemberRow.match_id == match_id, MatchMemberRow.signal_id.in_(signal_ids)
            )
        )


def notifications_after(
    session: Session, oin: str, after: int, limit: int
) -> list[NotificationRow]:
    return list(
        session.scalars(
            select(NotificationRow)
            .where(NotificationRow.oin == oin, NotificationRow.seq > after)
            .order_by(NotificationRow.seq)
            .limit(limit)
        )
    )
