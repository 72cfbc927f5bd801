"""Reading and writing signals, matches and notifications.

Hot paths use prebuilt Core statements with bound parameters: SQLAlchemy
compiles each once, and rows come back as plain named tuples rather than
tracked ORM objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from vir.domain.matching import GroupKey, Via
from vir.domain.signals import SignalFacts
from vir.store.tables import (
    ArchivedSignalRow,
    ArchiveOfferRow,
    ExcludedAddressRow,
    MatchMemberRow,
    MatchRow,
    NotificationCounterRow,
    NotificationRow,
    OrganisationRow,
    SignalParentRow,
    SignalRow,
)

SIGNALS = cast(Table, SignalRow.__table__)
PARENTS = cast(Table, SignalParentRow.__table__)
MATCHES = cast(Table, MatchRow.__table__)
MEMBERS = cast(Table, MatchMemberRow.__table__)
NOTIFICATIONS = cast(Table, NotificationRow.__table__)
COUNTERS = cast(Table, NotificationCounterRow.__table__)
EXCLUDED = cast(Table, ExcludedAddressRow.__table__)
ORGANISATIONS = cast(Table, OrganisationRow.__table__)
ARCHIVED = cast(Table, ArchivedSignalRow.__table__)
OFFERS = cast(Table, ArchiveOfferRow.__table__)

Signal = Row[Any]  # a row of ``signals``: .id, .oin, .local_ref, .person, ... .created_at


@dataclass(frozen=True)
class Match:
    id: str
    via: Via
    created_at: dt.datetime
    active: bool = True


_BY_REF = select(SIGNALS).where(
    SIGNALS.c.oin == bindparam("oin"), SIGNALS.c.local_ref == bindparam("ref")
)
_BY_PERSON = select(SIGNALS.c.id).where(
    SIGNALS.c.oin == bindparam("oin"), SIGNALS.c.person == bindparam("person")
)
_BY_IDS = select(SIGNALS).where(SIGNALS.c.id.in_(bindparam("ids", expanding=True)))
_GROUP = {
    Via.PERSON: select(SIGNALS).where(SIGNALS.c.person == bindparam("key")),
    Via.ADDRESS: select(SIGNALS).where(SIGNALS.c.address == bindparam("key")),
    Via.PARENT: select(SIGNALS).where(
        or_(
            SIGNALS.c.person == bindparam("key"),
            SIGNALS.c.id.in_(
                select(PARENTS.c.signal_id).where(PARENTS.c.parent == bindparam("key"))
            ),
        )
    ),
}
_PARENTS_OF = select(PARENTS.c.signal_id, PARENTS.c.parent).where(
    PARENTS.c.signal_id.in_(bindparam("ids", expanding=True))
)
_ACTIVE_MATCH = select(MATCHES.c.id, MATCHES.c.via, MATCHES.c.created_at).where(
    MATCHES.c.via == bindparam("via"),
    MATCHES.c.key == bindparam("key"),
    MATCHES.c.ended_at.is_(None),
)
_MEMBERS = select(MEMBERS.c.signal_id).where(MEMBERS.c.match_id == bindparam("match"))
_MATCHES_OF = (
    select(MATCHES.c.id, MATCHES.c.via, MATCHES.c.created_at, MATCHES.c.key)
    .join(MEMBERS, MEMBERS.c.match_id == MATCHES.c.id)
    .where(MEMBERS.c.signal_id == bindparam("signal"), MATCHES.c.ended_at.is_(None))
    .order_by(MATCHES.c.created_at, MATCHES.c.id)
)
_EXCLUDED = select(EXCLUDED.c.address).where(
    EXCLUDED.c.address.in_(bindparam("addresses", expanding=True))
)
_ORG_NAME = select(ORGANISATIONS.c.name).where(ORGANISATIONS.c.oin == bindparam("oin"))
_ORG_CONTACT = select(
    ORGANISATIONS.c.name,
    ORGANISATIONS.c.category,
    ORGANISATIONS.c.coordinator_name,
    ORGANISATIONS.c.coordinator_email,
    ORGANISATIONS.c.coordinator_phone,
).where(ORGANISATIONS.c.oin == bindparam("oin"))
_NOTIFICATIONS_AFTER = (
    select(NOTIFICATIONS)
    .where(NOTIFICATIONS.c.oin == bindparam("oin"), NOTIFICATIONS.c.position > bindparam("after"))
    .order_by(NOTIFICATIONS.c.position)
    .limit(bindparam("limit"))
)
_COUNTER = select(COUNTERS.c.last).where(COUNTERS.c.oin == bindparam("oin"))
_ADVANCE_COUNTER = (
    update(COUNTERS).where(COUNTERS.c.oin == bindparam("b_oin")).values(last=bindparam("b_last"))
)
# The position of an organisation's newest notification at or before a global ``seq``:
# how an old-style cursor (the global seq, before migration 0007) carries on.
_POSITION_AT_SEQ = select(func.max(NOTIFICATIONS.c.position)).where(
    NOTIFICATIONS.c.oin == bindparam("oin"), NOTIFICATIONS.c.seq <= bindparam("seq")
)


def signal_by_ref(session: Session, oin: str, local_ref: str) -> Signal | None:
    return session.execute(_BY_REF, {"oin": oin, "ref": local_ref}).first()


def has_signal_on(session: Session, oin: str, person: bytes) -> bool:
    return session.execute(_BY_PERSON, {"oin": oin, "person": person}).first() is not None


def signals_by_id(session: Session, ids: Collection[str]) -> list[Signal]:
    return list(session.execute(_BY_IDS, {"ids": list(ids)})) if ids else []


def insert_signal(session: Session, values: dict[str, Any], parents: Sequence[bytes]) -> None:
    session.execute(insert(SIGNALS), [values])
    if parents:
        session.execute(
            insert(PARENTS), [{"signal_id": values["id"], "parent": p} for p in parents]
        )


def delete_signal(session: Session, signal_id: str) -> None:
    session.execute(delete(MEMBERS).where(MEMBERS.c.signal_id == signal_id))
    session.execute(delete(PARENTS).where(PARENTS.c.signal_id == signal_id))
    session.execute(delete(SIGNALS).where(SIGNALS.c.id == signal_id))


def facts(session: Session, rows: Iterable[Signal]) -> list[SignalFacts]:
    rows = list(rows)
    parents: dict[str, set[bytes]] = {r.id: set() for r in rows}
    if rows:
        for signal_id, parent in session.execute(_PARENTS_OF, {"ids": list(parents)}):
            parents[signal_id].add(parent)
    return [SignalFacts(r.id, r.oin, r.person, frozenset(parents[r.id]), r.address) for r in rows]


def group(session: Session, key: GroupKey) -> list[Signal]:
    """The active signals in one group (see ``vir.domain.matching``)."""
    return list(session.execute(_GROUP[key.via], {"key": key.key}))


def excluded(session: Session, addresses: Collection[bytes]) -> set[bytes]:
    if not addresses:
        return set()
    return set(session.scalars(_EXCLUDED, {"addresses": list(addresses)}))


def active_match(session: Session, key: GroupKey) -> Match | None:
    row = session.execute(_ACTIVE_MATCH, {"via": key.via.value, "key": key.key}).first()
    return Match(row.id, Via(row.via), row.created_at) if row else None


def members(session: Session, match_id: str) -> frozenset[str]:
    return frozenset(session.scalars(_MEMBERS, {"match": match_id}))


def matches_of(session: Session, signal_id: str) -> list[tuple[Match, GroupKey]]:
    rows = session.execute(_MATCHES_OF, {"signal": signal_id})
    return [(Match(r.id, Via(r.via), r.created_at), GroupKey(Via(r.via), r.key)) for r in rows]


def create_match(session: Session, match_id: str, key: GroupKey, now: dt.datetime) -> None:
    session.execute(
        insert(MATCHES),
        [
            {
                "id": match_id,
                "via": key.via.value,
                "key": key.key,
                "created_at": now,
                "ended_at": None,
            }
        ],
    )


def end_match(session: Session, match_id: str, now: dt.datetime) -> None:
    # The key is cleared: no pseudonym outlives the match.
    session.execute(update(MATCHES).where(MATCHES.c.id == match_id).values(ended_at=now, key=None))
    session.execute(delete(MEMBERS).where(MEMBERS.c.match_id == match_id))


def add_members(
    session: Session, match_id: str, signal_ids: Collection[str], now: dt.datetime
) -> None:
    if signal_ids:
        session.execute(
            insert(MEMBERS),
            [{"match_id": match_id, "signal_id": s, "joined_at": now} for s in sorted(signal_ids)],
        )


def remove_members(session: Session, match_id: str, signal_ids: Collection[str]) -> None:
    if signal_ids:
        session.execute(
            delete(MEMBERS).where(
                MEMBERS.c.match_id == match_id, MEMBERS.c.signal_id.in_(list(signal_ids))
            )
        )


def insert_notifications(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert notifications, each numbered after its organisation's previous ones.

    Positions are drawn from ``notification_counters`` inside the write transaction;
    writes are serialised (vir.store.db), so two writers never draw the same one.
    """
    if not rows:
        return
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["oin"]] = counts.get(row["oin"], 0) + 1
    drawn: dict[str, int] = {}
    for oin in sorted(counts):
        last = session.execute(_COUNTER, {"oin": oin}).scalar()
        if last is None:
            session.execute(insert(COUNTERS), [{"oin": oin, "last": counts[oin]}])
            last = 0
        else:
            session.execute(_ADVANCE_COUNTER, {"b_oin": oin, "b_last": last + counts[oin]})
        drawn[oin] = last
    numbered = []
    for row in rows:
        drawn[row["oin"]] += 1
        numbered.append({**row, "position": drawn[row["oin"]]})
    session.execute(insert(NOTIFICATIONS), numbered)


def organisation_name(session: Session, oin: str) -> str:
    name: str = session.execute(_ORG_NAME, {"oin": oin}).scalar_one()
    return name


def notifications_after(session: Session, oin: str, after: int, limit: int) -> list[Row[Any]]:
    """The organisation's notifications after ``position`` ``after``, in position order."""
    return list(session.execute(_NOTIFICATIONS_AFTER, {"oin": oin, "after": after, "limit": limit}))


def position_at_seq(session: Session, oin: str, seq: int) -> int:
    """The organisation's position that a legacy global-seq cursor stands for."""
    position: int | None = session.execute(_POSITION_AT_SEQ, {"oin": oin, "seq": seq}).scalar()
    return position or 0


def organisation_contact(session: Session, oin: str) -> Any:
    """Name and coordinator contact details of an organisation (a row)."""
    return session.execute(_ORG_CONTACT, {"oin": oin}).one()


# --- the lifecycle: removal dates, the archive and its one-time offers --------------

ArchivedSignal = Row[Any]  # a row of ``archived_signals``


def update_signal(session: Session, signal_id: str, values: dict[str, Any]) -> None:
    session.execute(update(SIGNALS).where(SIGNALS.c.id == signal_id).values(**values))


def archive_signal(
    session: Session, row: Signal, archived_on: dt.date, reason: str, destroy_on: dt.date
) -> None:
    """Move an active signal to the archive: the person, reporter and dates only."""
    session.execute(
        insert(ARCHIVED),
        [
            {
                "id": row.id,
                "oin": row.oin,
                "local_ref": row.local_ref,
                "person": row.person,
                "professional_name": row.professional_name,
                "professional_email": row.professional_email,
                "professional_phone": row.professional_phone,
                "professional_function": row.professional_function,
                "registered_at": row.created_at,
                "remove_on": row.remove_on,
                "informed_on": row.informed_on,
                "informed_who": row.informed_who,
                "archived_on": archived_on,
                "reason": reason,
                "destroy_on": destroy_on,
            }
        ],
    )
    delete_signal(session, row.id)


def delete_archived(session: Session, signal_id: str) -> None:
    session.execute(delete(OFFERS).where(OFFERS.c.archived_signal_id == signal_id))
    session.execute(delete(ARCHIVED).where(ARCHIVED.c.id == signal_id))


_ARCHIVED_ON_PERSON = (
    select(ARCHIVED)
    .where(ARCHIVED.c.person == bindparam("person"))
    .order_by(ARCHIVED.c.registered_at, ARCHIVED.c.id)
)
_ACTIVE_ON_PERSON = (
    select(SIGNALS)
    .where(SIGNALS.c.person == bindparam("person"))
    .order_by(SIGNALS.c.created_at, SIGNALS.c.id)
)
_AS_PARENT = (
    select(SIGNALS)
    .where(SIGNALS.c.id.in_(select(PARENTS.c.signal_id).where(PARENTS.c.parent == bindparam("p"))))
    .order_by(SIGNALS.c.created_at, SIGNALS.c.id)
)
_OFFERED = select(OFFERS.c.archived_signal_id).where(
    OFFERS.c.oin == bindparam("oin"),
    OFFERS.c.archived_signal_id.in_(bindparam("ids", expanding=True)),
)


def archived_on_person(session: Session, person: bytes) -> list[ArchivedSignal]:
    return list(session.execute(_ARCHIVED_ON_PERSON, {"person": person}))


def active_on_person(session: Session, person: bytes) -> list[Signal]:
    return list(session.execute(_ACTIVE_ON_PERSON, {"person": person}))


def active_as_parent(session: Session, parent: bytes) -> list[Signal]:
    return list(session.execute(_AS_PARENT, {"p": parent}))


def offered(session: Session, oin: str, archived_ids: Collection[str]) -> set[str]:
    if not archived_ids:
        return set()
    return set(session.scalars(_OFFERED, {"oin": oin, "ids": list(archived_ids)}))


def record_offers(
    session: Session,
    oin: str,
    archived_ids: Collection[str],
    notification_id: str,
    now: dt.datetime,
) -> None:
    session.execute(
        insert(OFFERS),
        [
            {
                "archived_signal_id": a,
                "oin": oin,
                "notification_id": notification_id,
                "offered_at": now,
            }
            for a in sorted(archived_ids)
        ],
    )


def due_for_removal(session: Session, today: dt.date, limit: int) -> list[Signal]:
    query = (
        select(SIGNALS)
        .where(SIGNALS.c.remove_on <= today)
        .order_by(SIGNALS.c.remove_on, SIGNALS.c.id)
        .limit(limit)
    )
    return list(session.execute(query))


def due_for_destruction(session: Session, today: dt.date, limit: int) -> list[ArchivedSignal]:
    query = (
        select(ARCHIVED)
        .where(ARCHIVED.c.destroy_on <= today)
        .order_by(ARCHIVED.c.destroy_on, ARCHIVED.c.id)
        .limit(limit)
    )
    return list(session.execute(query))


def count_due(session: Session, today: dt.date) -> tuple[int, int]:
    removal = session.execute(
        select(func.count()).select_from(SIGNALS).where(SIGNALS.c.remove_on <= today)
    ).scalar_one()
    destruction = session.execute(
        select(func.count()).select_from(ARCHIVED).where(ARCHIVED.c.destroy_on <= today)
    ).scalar_one()
    return int(removal), int(destruction)


def own_signals(
    session: Session, oin: str, after: str | None, limit: int, uninformed_before: dt.datetime | None
) -> list[Signal]:
    query = select(SIGNALS).where(SIGNALS.c.oin == oin)
    if after is not None:
        query = query.where(SIGNALS.c.id > after)
    if uninformed_before is not None:
        query = query.where(
            SIGNALS.c.informed_on.is_(None), SIGNALS.c.created_at < uninformed_before
        )
    return list(session.execute(query.order_by(SIGNALS.c.id).limit(limit)))


def own_archived(session: Session, oin: str, after: str | None, limit: int) -> list[ArchivedSignal]:
    query = select(ARCHIVED).where(ARCHIVED.c.oin == oin)
    if after is not None:
        query = query.where(ARCHIVED.c.id > after)
    return list(session.execute(query.order_by(ARCHIVED.c.id).limit(limit)))


def uninformed(session: Session, before: dt.datetime) -> list[Signal]:
    """Active signals, of every organisation, unconfirmed since before ``before``."""
    query = (
        select(SIGNALS)
        .where(SIGNALS.c.informed_on.is_(None), SIGNALS.c.created_at < before)
        .order_by(SIGNALS.c.oin, SIGNALS.c.created_at, SIGNALS.c.id)
    )
    return list(session.execute(query))


def signals_of_organisation(session: Session, oin: str) -> list[Signal]:
    return list(session.execute(select(SIGNALS).where(SIGNALS.c.oin == oin).order_by(SIGNALS.c.id)))
