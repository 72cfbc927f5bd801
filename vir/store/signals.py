"""Reading and writing signals, matches and notifications.

Hot paths use prebuilt Core statements with bound parameters: SQLAlchemy
compiles each once, and rows come back as plain named tuples rather than
tracked ORM objects.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Connection,
    LargeBinary,
    Row,
    String,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from vir.domain.matching import GroupKey, Via
from vir.domain.signals import Professional, SignalFacts
from vir.store import locks, multirow, outbox
from vir.store.locks import Lock
from vir.store.records import (
    ArchivedSignal,
    Informed,
    Match,
    OrganisationContact,
    Signal,
    StoredNotification,
)
from vir.store.tables import (
    ArchivedSignalRow,
    ArchiveOfferRow,
    ExcludedAddressRow,
    MatchMemberRow,
    MatchRow,
    NotificationRow,
    NotificationSignalRow,
    OrganisationRow,
    PortalSignalRow,
    SignalParentRow,
    SignalRow,
)
from vir.store.write_group import before_commit

SIGNALS = cast(Table, SignalRow.__table__)
PARENTS = cast(Table, SignalParentRow.__table__)
MATCHES = cast(Table, MatchRow.__table__)
MEMBERS = cast(Table, MatchMemberRow.__table__)
NOTIFICATIONS = cast(Table, NotificationRow.__table__)
CARRIED = cast(Table, NotificationSignalRow.__table__)
EXCLUDED = cast(Table, ExcludedAddressRow.__table__)
ORGANISATIONS = cast(Table, OrganisationRow.__table__)
ARCHIVED = cast(Table, ArchivedSignalRow.__table__)
OFFERS = cast(Table, ArchiveOfferRow.__table__)
PORTAL = cast(Table, PortalSignalRow.__table__)


def _professional(row: Row[Any]) -> Professional:
    return Professional.stored(
        row.professional_name,
        row.professional_email,
        row.professional_phone,
        row.professional_function,
    )


def _professional_columns(p: Professional) -> dict[str, str | None]:
    return {
        "professional_name": p.name,
        "professional_email": p.email,
        "professional_phone": p.phone,
        "professional_function": p.function,
    }


def _informed(row: Row[Any]) -> Informed | None:
    if row.informed_on is None:
        return None
    return Informed(row.informed_on, row.informed_who)


def _signal(row: Row[Any]) -> Signal:
    return Signal(
        id=row.id,
        oin=row.oin,
        local_ref=row.local_ref,
        epoch=row.epoch,
        person=row.person,
        address=row.address,
        remove_on=row.remove_on,
        professional=_professional(row),
        content_hash=row.content_hash,
        created_at=row.created_at,
        archive_until=row.archive_until,
        informed=_informed(row),
    )


def _signals(rows: Iterable[Row[Any]]) -> list[Signal]:
    return [_signal(r) for r in rows]


def _archived(row: Row[Any]) -> ArchivedSignal:
    return ArchivedSignal(
        id=row.id,
        oin=row.oin,
        local_ref=row.local_ref,
        person=row.person,
        professional=_professional(row),
        registered_at=row.registered_at,
        remove_on=row.remove_on,
        archived_on=row.archived_on,
        reason=row.reason,
        destroy_on=row.destroy_on,
        informed=_informed(row),
    )


def _archived_list(rows: Iterable[Row[Any]]) -> list[ArchivedSignal]:
    return [_archived(r) for r in rows]


_BY_REF = select(SIGNALS).where(
    SIGNALS.c.oin == bindparam("oin"), SIGNALS.c.local_ref == bindparam("ref")
)
_BY_PERSON = select(SIGNALS.c.local_ref).where(
    SIGNALS.c.oin == bindparam("oin"), SIGNALS.c.person == bindparam("person")
)
_BY_IDS = select(SIGNALS).where(SIGNALS.c.id.in_(bindparam("ids", expanding=True)))
# The young persons in parent ``key``'s household: the parent as a young person, and
# everyone some active signal declares ``key`` the parent of (index on
# signal_parents.parent, then the signals' primary key).
_HOUSEHOLD_OF = union(
    select(bindparam("key", type_=SIGNALS.c.person.type)),
    select(SIGNALS.c.person)
    .join(PARENTS, PARENTS.c.signal_id == SIGNALS.c.id)
    .where(PARENTS.c.parent == bindparam("key")),
)
# Candidates of each group; vir.domain.matching.group_members decides membership.
_GROUP = {
    Via.PERSON: select(SIGNALS).where(SIGNALS.c.person == bindparam("key")),
    Via.ADDRESS: select(SIGNALS).where(SIGNALS.c.address == bindparam("key")),
    # Every signal about those young persons (index on signals.person), whether or not
    # it names the parent itself. ``IN (... UNION ...)`` rather than ``person = key OR
    # person IN (...)``: PostgreSQL scans the whole table for the OR form.
    Via.PARENT: select(SIGNALS).where(SIGNALS.c.person.in_(_HOUSEHOLD_OF)),
}
# The parents active signals declare for one young person (index on signals.person,
# then the primary key of signal_parents).
_LINKED_PARENTS = (
    select(PARENTS.c.parent)
    .join(SIGNALS, SIGNALS.c.id == PARENTS.c.signal_id)
    .where(SIGNALS.c.person == bindparam("person"))
    .distinct()
)
_PARENTS_OF = select(PARENTS.c.signal_id, PARENTS.c.parent).where(
    PARENTS.c.signal_id.in_(bindparam("ids", expanding=True))
)
_ACTIVE_MATCH = select(
    MATCHES.c.id, MATCHES.c.via, MATCHES.c.created_at, MATCHES.c.coordinator
).where(
    MATCHES.c.via == bindparam("via"),
    MATCHES.c.key == bindparam("key"),
    MATCHES.c.ended_at.is_(None),
)
_MEMBERS = select(MEMBERS.c.signal_id).where(MEMBERS.c.match_id == bindparam("match"))
_MATCHES_OF = (
    select(MATCHES.c.id, MATCHES.c.via, MATCHES.c.created_at, MATCHES.c.key, MATCHES.c.coordinator)
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
    ORGANISATIONS.c.region,
).where(ORGANISATIONS.c.oin == bindparam("oin"))
_NOTIFICATIONS_AFTER = (
    select(NOTIFICATIONS)
    .where(NOTIFICATIONS.c.oin == bindparam("oin"), NOTIFICATIONS.c.position > bindparam("after"))
    .order_by(NOTIFICATIONS.c.position)
    .limit(bindparam("limit"))
)
# The position of an organisation's newest notification at or before a global ``seq``:
# how an old-style cursor (the global seq, before migration 0007) carries on.
_POSITION_AT_SEQ = select(func.max(NOTIFICATIONS.c.position)).where(
    NOTIFICATIONS.c.oin == bindparam("oin"), NOTIFICATIONS.c.seq <= bindparam("seq")
)


def signal_by_ref(session: Session, oin: str, local_ref: str) -> Signal | None:
    row = session.execute(_BY_REF, {"oin": oin, "ref": local_ref}).first()
    return _signal(row) if row is not None else None


def refs_in(session: Session, oin: str, refs: Collection[str]) -> frozenset[str]:
    """Which of ``refs`` are the local_ref of one of the organisation's active signals."""
    return frozenset(session.scalars(_REFS_IN, {"oin": oin, "refs": list(refs)}))


def ref_on(session: Session, oin: str, person: bytes) -> str | None:
    """The local_ref of organisation ``oin``'s active signal on ``person``, if any."""
    found = session.execute(_BY_PERSON, {"oin": oin, "person": person}).first()
    return None if found is None else str(found[0])


def signals_by_id(session: Session, ids: Collection[str]) -> list[Signal]:
    return _signals(session.execute(_BY_IDS, {"ids": list(ids)})) if ids else []


def insert_signal(session: Session, signal: Signal, parents: Sequence[bytes]) -> None:
    """Store a new active signal and the parents it declares."""
    insert_signals(session, [(signal, parents)])


def insert_signals(session: Session, signals: Sequence[tuple[Signal, Sequence[bytes]]]) -> None:
    """Store new active signals, each with the parents it declares: two statements."""
    if not signals:
        return
    session.execute(insert(SIGNALS), [_columns(signal) for signal, _parents in signals])
    parent_rows = [{"signal_id": s.id, "parent": p} for s, parents in signals for p in parents]
    if parent_rows:
        session.execute(insert(PARENTS), parent_rows)


def _columns(signal: Signal) -> dict[str, Any]:
    """A new signal's row, column by column."""
    return {
        "id": signal.id,
        "oin": signal.oin,
        "local_ref": signal.local_ref,
        "epoch": signal.epoch,
        "person": signal.person,
        "address": signal.address,
        "remove_on": signal.remove_on,
        **_professional_columns(signal.professional),
        "content_hash": signal.content_hash,
        "created_at": signal.created_at,
        "archive_until": signal.archive_until,
        "informed_on": signal.informed.on if signal.informed else None,
        "informed_who": signal.informed.who if signal.informed else None,
    }


def insert_signals_last(
    session: Session, signals: Sequence[tuple[Signal, Sequence[bytes]]]
) -> None:
    """``insert_signals`` for the last rows a write transaction stores, which nothing in
    it reads afterwards: on PostgreSQL written out just before the commit, in the round
    trip of the transaction's other writes then (``write_group.before_commit``), as
    multi-row inserts through psycopg; elsewhere at once."""
    if not signals:
        return
    if session.get_bind().dialect.name != "postgresql":
        insert_signals(session, signals)
        return
    columns = [_columns(signal) for signal, _parents in signals]
    names = tuple(columns[0])
    rows = [tuple(row.values()) for row in columns]
    parents = [(s.id, parent) for s, declared in signals for parent in declared]

    def write_out(connection: Connection) -> None:
        multirow.insert(connection, "signals", names, rows)
        if parents:
            multirow.insert(connection, "signal_parents", ("signal_id", "parent"), parents)

    before_commit(session, write_out)


@dataclass(frozen=True)
class Known:
    """Which of some local_refs and pseudonyms the index holds (``known``)."""

    refs: frozenset[str]  # the organisation's local_refs of active signals
    persons: frozenset[bytes]  # young persons of active signals
    parents: frozenset[bytes]  # parents that active signals declare
    addresses: frozenset[bytes]  # addresses of active signals
    archived: frozenset[bytes]  # young persons of archived signals
    matched: frozenset[GroupKey]  # keys of active matches


_REFS_IN = select(SIGNALS.c.local_ref).where(
    SIGNALS.c.oin == bindparam("oin"),
    SIGNALS.c.local_ref.in_(bindparam("refs", expanding=True)),
)


def _tagged(tag: str, column: Any, values: str, *where: Any) -> Any:
    return select(
        literal(tag).label("tag"), column.label("value"), literal(None, String).label("ref")
    ).where(column.in_(bindparam(values, expanding=True)), *where)


# Which of some local_refs and pseudonyms the index holds, and in what role: one
# statement, each part on an index whose first column is the one looked up.
_KNOWN = union_all(
    select(
        literal("ref").label("tag"),
        literal(None, LargeBinary).label("value"),
        SIGNALS.c.local_ref.label("ref"),
    ).where(
        SIGNALS.c.oin == bindparam("oin"),
        SIGNALS.c.local_ref.in_(bindparam("refs", expanding=True)),
    ),
    _tagged("person", SIGNALS.c.person, "pseudonyms"),
    _tagged("parent", PARENTS.c.parent, "pseudonyms"),
    _tagged("address", SIGNALS.c.address, "addresses"),
    _tagged("archived", ARCHIVED.c.person, "pseudonyms"),
    *(
        _tagged(
            f"match:{via.value}",
            MATCHES.c.key,
            f"{via.value}_keys",
            MATCHES.c.via == via.value,
            MATCHES.c.ended_at.is_(None),
        )
        for via in Via
    ),
)


# The same on PostgreSQL, sent with a round of locks (``locks.take``): arrays, not lists
# of parameters, so that the statement is one whatever the number of values.
_KNOWN_POSTGRESQL = " UNION ALL ".join(
    [
        "SELECT 'ref' AS tag, NULL::bytea AS value, local_ref AS ref FROM signals"
        " WHERE oin = %(oin)s AND local_ref = ANY(%(refs)s::varchar[])",
        "SELECT 'person', person, NULL FROM signals WHERE person = ANY(%(pseudonyms)s::bytea[])",
        "SELECT 'parent', parent, NULL FROM signal_parents"
        " WHERE parent = ANY(%(pseudonyms)s::bytea[])",
        "SELECT 'address', address, NULL FROM signals WHERE address = ANY(%(addresses)s::bytea[])",
        "SELECT 'archived', person, NULL FROM archived_signals"
        " WHERE person = ANY(%(pseudonyms)s::bytea[])",
        *(
            f"SELECT 'match:{via.value}', key, NULL FROM matches"  # noqa: S608 (Via's names)
            f" WHERE key = ANY(%({via.value}_keys)s::bytea[]) AND via = '{via.value}'"
            " AND ended_at IS NULL"
            for via in Via
        ),
    ]
)


def known(
    session: Session,
    oin: str,
    refs: Collection[str],
    pseudonyms: Collection[bytes],
    addresses: Collection[bytes],
    keys: Collection[GroupKey],
    *,
    after: Iterable[Lock] = (),
) -> Known:
    """Which of ``refs`` the organisation uses; which of ``pseudonyms`` are young persons
    or declared parents of active signals, or young persons of archived ones; which of
    ``addresses`` active signals have; which of ``keys`` have an active match. One
    statement however many (up to a few thousand values of each), where a
    registration asks one at a time. ``after``: locks to take first (``locks.take``; on
    PostgreSQL in the same round trip)."""
    params: dict[str, Any] = {
        "oin": oin,
        "refs": list(refs),
        "pseudonyms": list(pseudonyms),
        "addresses": list(addresses),
        **{f"{via.value}_keys": [k.key for k in keys if k.via is via] for via in Via},
    }
    found: dict[str, set[bytes]] = {}
    used: set[str] = set()
    rows = locks.take(session, after, then=locks.Then(_KNOWN_POSTGRESQL, params))
    for tag, value, ref in session.execute(_KNOWN, params) if rows is None else rows:
        if ref is not None:
            used.add(ref)
        else:
            found.setdefault(tag, set()).add(value)
    return Known(
        refs=frozenset(used),
        persons=frozenset(found.get("person", ())),
        parents=frozenset(found.get("parent", ())),
        addresses=frozenset(found.get("address", ())),
        archived=frozenset(found.get("archived", ())),
        matched=frozenset(
            GroupKey(via, k) for via in Via for k in found.get(f"match:{via.value}", ())
        ),
    )


def facts(session: Session, rows: Iterable[Signal]) -> list[SignalFacts]:
    """What matching needs of these signals: their pseudonyms and declared parents."""
    rows = list(rows)
    parents: dict[str, set[bytes]] = {r.id: set() for r in rows}
    if rows:
        for signal_id, parent in session.execute(_PARENTS_OF, {"ids": list(parents)}):
            parents[signal_id].add(parent)
    return [SignalFacts(r.id, r.oin, r.person, frozenset(parents[r.id]), r.address) for r in rows]


def group(session: Session, key: GroupKey) -> list[Signal]:
    """The candidate active signals of one group: every member, and every signal that
    links one to it (``vir.domain.matching.group_members`` decides membership)."""
    return _signals(session.execute(_GROUP[key.via], {"key": key.key}))


def linked_parents(session: Session, person: bytes) -> set[bytes]:
    """Every parent that some active signal declares for this young person."""
    return set(session.scalars(_LINKED_PARENTS, {"person": person}))


def excluded(session: Session, addresses: Collection[bytes]) -> set[bytes]:
    if not addresses:
        return set()
    return set(session.scalars(_EXCLUDED, {"addresses": list(addresses)}))


def active_match(session: Session, key: GroupKey) -> Match | None:
    row = session.execute(_ACTIVE_MATCH, {"via": key.via.value, "key": key.key}).first()
    return Match(row.id, Via(row.via), row.created_at, coordinator=row.coordinator) if row else None


def members(session: Session, match_id: str) -> frozenset[str]:
    return frozenset(session.scalars(_MEMBERS, {"match": match_id}))


def matches_of(session: Session, signal_id: str) -> list[tuple[Match, GroupKey]]:
    rows = session.execute(_MATCHES_OF, {"signal": signal_id})
    return [
        (
            Match(r.id, Via(r.via), r.created_at, coordinator=r.coordinator),
            GroupKey(Via(r.via), r.key),
        )
        for r in rows
    ]


_MATCH_BY_ID = select(
    MATCHES.c.id, MATCHES.c.via, MATCHES.c.created_at, MATCHES.c.key, MATCHES.c.coordinator
).where(MATCHES.c.id == bindparam("match"), MATCHES.c.ended_at.is_(None))


def active_match_by_id(session: Session, match_id: str) -> tuple[Match, GroupKey] | None:
    """An active match and its key, by id (None: no such match, or it ended)."""
    r = session.execute(_MATCH_BY_ID, {"match": match_id}).first()
    if r is None:
        return None
    return (
        Match(r.id, Via(r.via), r.created_at, coordinator=r.coordinator),
        GroupKey(Via(r.via), r.key),
    )


def create_match(
    session: Session, match_id: str, key: GroupKey, now: dt.datetime, coordinator: str
) -> None:
    session.execute(
        insert(MATCHES),
        [
            {
                "id": match_id,
                "via": key.via.value,
                "key": key.key,
                "created_at": now,
                "ended_at": None,
                "coordinator": coordinator,
            }
        ],
    )


def end_match(session: Session, match_id: str, now: dt.datetime) -> None:
    # The key is cleared: no pseudonym outlives the match; nor its rekey shadow, which
    # would otherwise be moved back into place by a running rekey's switch.
    session.execute(
        update(MATCHES)
        .where(MATCHES.c.id == match_id)
        .values(ended_at=now, key=None, key_next=None, coordinator=None)
    )
    session.execute(delete(MEMBERS).where(MEMBERS.c.match_id == match_id))


def set_coordinator(session: Session, match_id: str, signal_id: str) -> None:
    """The member signal whose reporter now coordinates the match."""
    session.execute(update(MATCHES).where(MATCHES.c.id == match_id).values(coordinator=signal_id))


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


class Carried(enum.StrEnum):
    """How a notification carries a signal (``notification_signals.role``)."""

    RECIPIENT = "recipient"  # the recipient's own signal, active
    PARTICIPANT = "participant"  # an active signal whose reporter the payload shows
    ARCHIVED = "archived"  # an archived signal offered (``match.historical``)


@dataclass(frozen=True, slots=True)
class NewNotification:
    """A notification to store: for the organisation ``oin`` about its signal
    ``recipient`` (under ``local_ref``), showing the reporters of ``carries``."""

    id: str
    oin: str
    local_ref: str
    type: str
    match_id: str
    created_at: dt.datetime
    payload: str
    recipient: str
    carries: frozenset[str] = frozenset()


def insert_notifications(session: Session, notifications: Sequence[NewNotification]) -> None:
    """Insert notifications, not numbered yet, and link each to the signals it carries.

    The integrator (``vir.store.sequencer``) numbers them among their organisation's
    own once committed; until then no reader sees them. Their ``seq`` is drawn here:
    all notifications of one recipient signal on one match are made by writers that
    hold the match's group lock (``vir.store.locks``), so within that story ``seq``
    order is commit order.
    """
    if not notifications:
        return
    numbered = []
    links = []
    for n in notifications:
        numbered.append(
            {
                "id": n.id,
                "oin": n.oin,
                "position": None,
                "local_ref": n.local_ref,
                "type": n.type,
                "match_id": n.match_id,
                "created_at": n.created_at,
                "payload": n.payload,
            }
        )
        links.append(
            {"notification_id": n.id, "signal_id": n.recipient, "role": Carried.RECIPIENT.value}
        )
        links += [
            {"notification_id": n.id, "signal_id": s, "role": Carried.PARTICIPANT.value}
            for s in sorted(n.carries - {n.recipient})
        ]
    session.execute(insert(NOTIFICATIONS), numbered)
    session.execute(insert(CARRIED), links)
    outbox.enqueue(session, notifications)  # their deliveries (webhook, e-mail)


_CARRYING = select(CARRIED.c.notification_id).where(
    CARRIED.c.signal_id.in_(bindparam("signals", expanding=True))
)
# The newest of the given notifications of each (recipient signal, match): a story's end.
_STORY_ENDS = (
    select(
        CARRIED.c.signal_id.label("recipient"),
        NOTIFICATIONS.c.match_id,
        func.max(NOTIFICATIONS.c.seq).label("seq"),
    )
    .join(NOTIFICATIONS, NOTIFICATIONS.c.id == CARRIED.c.notification_id)
    .where(
        CARRIED.c.role == Carried.RECIPIENT.value,
        NOTIFICATIONS.c.id.in_(bindparam("ids", expanding=True)),
    )
    .group_by(CARRIED.c.signal_id, NOTIFICATIONS.c.match_id)
    .subquery("ends")
)
# Those stories up to their ends: per story, the recipient's notifications on the match
# (index on notification_signals.signal_id, then the notifications' unique id).
_STORIES_UP_TO = (
    select(NOTIFICATIONS.c.id)
    .join(CARRIED, CARRIED.c.notification_id == NOTIFICATIONS.c.id)
    .join(
        _STORY_ENDS,
        and_(
            _STORY_ENDS.c.recipient == CARRIED.c.signal_id,
            _STORY_ENDS.c.match_id == NOTIFICATIONS.c.match_id,
        ),
    )
    .where(
        CARRIED.c.role == Carried.RECIPIENT.value,
        NOTIFICATIONS.c.seq <= _STORY_ENDS.c.seq,
    )
)


def forget_notifications(session: Session, signal_ids: Collection[str]) -> int:
    """Delete every notification that carries one of the signals (active or archived), as
    ``delete_notifications`` does; returns how many went."""
    ids: set[str] = set()
    for part in _chunks(signal_ids):
        ids.update(session.scalars(_CARRYING, {"signals": part}))
    return delete_notifications(session, ids)


def delete_notifications(session: Session, ids: Collection[str]) -> int:
    """Delete these notifications, the earlier ones of the same recipient signal on the
    same match, and their links; returns how many went.

    What is held of one recipient's notifications on one match is so always the newest
    part of what was sent: never an older notice (a ``match.created``) that a deleted
    later one (its ``match.left``) had overtaken. Positions are not reused
    (``notification_counters``), so the cursor carries on over the gaps.
    """
    doomed = set(ids)
    for part in _chunks(ids):
        doomed.update(session.scalars(_STORIES_UP_TO, {"ids": part}))
    deleted = 0
    for part in _chunks(doomed):
        session.execute(delete(CARRIED).where(CARRIED.c.notification_id.in_(part)))
        result = session.execute(delete(NOTIFICATIONS).where(NOTIFICATIONS.c.id.in_(part)))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


_LINK = CARRIED.alias("link")
_RECIPIENT = CARRIED.alias("recipient")
_ACTIVE = SIGNALS.alias("active")
_KEPT = ARCHIVED.alias("kept")
# A notification that outlived what it carries: a carried active signal is no longer
# active (ended, archived or erased), an offered archived signal is destroyed, or it has
# no recipient link at all. ``vir.services.removal`` deletes them as it goes; this finds
# any it missed (``vir lifecycle run`` sweeps them).
_ORPHANED = (
    select(NOTIFICATIONS.c.seq, NOTIFICATIONS.c.id)
    .where(
        NOTIFICATIONS.c.seq > bindparam("after"),
        or_(
            ~exists().where(
                _RECIPIENT.c.notification_id == NOTIFICATIONS.c.id,
                _RECIPIENT.c.role == Carried.RECIPIENT.value,
            ),
            exists().where(
                _LINK.c.notification_id == NOTIFICATIONS.c.id,
                or_(
                    and_(
                        _LINK.c.role != Carried.ARCHIVED.value,
                        ~exists().where(_ACTIVE.c.id == _LINK.c.signal_id),
                    ),
                    and_(
                        _LINK.c.role == Carried.ARCHIVED.value,
                        ~exists().where(_KEPT.c.id == _LINK.c.signal_id),
                    ),
                ),
            ),
        ),
    )
    .order_by(NOTIFICATIONS.c.seq)
    .limit(bindparam("limit"))
)


def orphaned_notifications(session: Session, after_seq: int, limit: int) -> list[tuple[int, str]]:
    """Up to ``limit`` (seq, id) of notifications after ``after_seq`` that carry a signal
    no longer held, in seq order (a keyset: the caller passes the last seq back)."""
    rows = session.execute(_ORPHANED, {"after": after_seq, "limit": limit})
    return [(int(seq), str(notification_id)) for seq, notification_id in rows]


def organisation_name(session: Session, oin: str) -> str:
    name: str = session.execute(_ORG_NAME, {"oin": oin}).scalar_one()
    return name


def notifications_after(
    session: Session, oin: str, after: int, limit: int
) -> list[StoredNotification]:
    """The organisation's notifications after ``position`` ``after``, in position order."""
    rows = session.execute(_NOTIFICATIONS_AFTER, {"oin": oin, "after": after, "limit": limit})
    return [
        StoredNotification(
            r.id, r.oin, r.position, r.local_ref, r.type, r.match_id, r.created_at, r.payload
        )
        for r in rows
    ]


def newest_notifications(
    session: Session, oin: str, person: str | None, limit: int
) -> list[StoredNotification]:
    """The organisation's newest ``limit`` numbered notifications, newest first; with
    ``person``, only those about signals that person registered through the portal."""
    query = select(NOTIFICATIONS).where(
        NOTIFICATIONS.c.oin == oin, NOTIFICATIONS.c.position.is_not(None)
    )
    if person is not None:
        mine = (
            select(SIGNALS.c.local_ref)
            .join(PORTAL, PORTAL.c.signal_id == SIGNALS.c.id)
            .where(SIGNALS.c.oin == oin, PORTAL.c.person == person)
        )
        query = query.where(NOTIFICATIONS.c.local_ref.in_(mine))
    rows = session.execute(query.order_by(NOTIFICATIONS.c.position.desc()).limit(limit))
    return [
        StoredNotification(
            r.id, r.oin, r.position, r.local_ref, r.type, r.match_id, r.created_at, r.payload
        )
        for r in rows
    ]


def position_at_seq(session: Session, oin: str, seq: int) -> int:
    """The organisation's position that a legacy global-seq cursor stands for."""
    position: int | None = session.execute(_POSITION_AT_SEQ, {"oin": oin, "seq": seq}).scalar()
    return position or 0


def organisation_contact(session: Session, oin: str) -> OrganisationContact:
    """Name, category and coordinator contact details of an organisation."""
    row = session.execute(_ORG_CONTACT, {"oin": oin}).one()
    coordinator = None
    if row.coordinator_name is not None:
        coordinator = Professional.stored(
            row.coordinator_name, row.coordinator_email, row.coordinator_phone, None
        )
    return OrganisationContact(oin, row.name, row.category, coordinator, row.region)


# --- the lifecycle: removal dates, the archive and its one-time offers --------------


def set_informed(session: Session, signal_id: str, informed: Informed) -> None:
    """Record the confirmation of the information duty."""
    session.execute(
        update(SIGNALS)
        .where(SIGNALS.c.id == signal_id)
        .values(informed_on=informed.on, informed_who=informed.who)
    )


def set_professional(
    session: Session, signal_id: str, professional: Professional, content_hash: bytes
) -> None:
    """New contact details, and the content hash of the signal as it now reads."""
    session.execute(
        update(SIGNALS)
        .where(SIGNALS.c.id == signal_id)
        .values(**_professional_columns(professional), content_hash=content_hash)
    )


def set_remove_on(
    session: Session, signal_id: str, remove_on: dt.date, content_hash: bytes
) -> None:
    """A new removal date, and the content hash of the signal as it now reads."""
    session.execute(
        update(SIGNALS)
        .where(SIGNALS.c.id == signal_id)
        .values(remove_on=remove_on, content_hash=content_hash)
    )


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
    return _archived_list(session.execute(_ARCHIVED_ON_PERSON, {"person": person}))


def active_on_person(session: Session, person: bytes) -> list[Signal]:
    return _signals(session.execute(_ACTIVE_ON_PERSON, {"person": person}))


def active_as_parent(session: Session, parent: bytes) -> list[Signal]:
    return _signals(session.execute(_AS_PARENT, {"p": parent}))


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
    """Record that ``oin`` was offered these archived signals by ``notification_id``
    (stored already), and link the notification to them: it goes when one is destroyed."""
    session.execute(
        insert(CARRIED),
        [
            {"notification_id": notification_id, "signal_id": a, "role": Carried.ARCHIVED.value}
            for a in sorted(archived_ids)
        ],
    )
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


Keyset = tuple[dt.date, str]  # (date, id): where the previous batch of the lifecycle ended

# SQLite's page cache while a lifecycle batch runs (KiB): what a batch of a thousand
# removals reads and writes all over the signals' indexes (some ten thousand pages),
# instead of the default 2 MiB, with which every statement reads most of them in again.
_SQLITE_BATCH_CACHE_KIB = 64 * 1024


@contextmanager
def batch_cache(session: Session) -> Iterator[None]:
    """On SQLite, a page cache that holds what one lifecycle batch touches, for the rest
    of the ``with``; then the connection's own again (it is pooled, and shared by the
    writers of a group commit). Nothing on PostgreSQL."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
    connection.exec_driver_sql(f"PRAGMA cache_size = {-_SQLITE_BATCH_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {before}")


@dataclass(frozen=True, slots=True)
class Due:
    """A signal whose removal date has come: enough to lock it and read it again."""

    remove_on: dt.date
    id: str
    person: bytes


def due_for_removal(
    session: Session, today: dt.date, limit: int, after: Keyset | None = None
) -> list[Due]:
    """Up to ``limit`` active signals whose removal date has come, in ``(remove_on, id)``
    order, after ``after``: a range of the index ``ix_signals_remove_on_id``, and each
    row's person from the table (no longer in the index: migration 0024)."""
    order = tuple_(SIGNALS.c.remove_on, SIGNALS.c.id)
    query = select(SIGNALS.c.remove_on, SIGNALS.c.id, SIGNALS.c.person).where(
        SIGNALS.c.remove_on <= today
    )
    if after is not None:
        query = query.where(order > tuple_(*after))
    query = query.order_by(SIGNALS.c.remove_on, SIGNALS.c.id).limit(limit)
    return [Due(r.remove_on, r.id, r.person) for r in session.execute(query)]


def due_for_destruction(
    session: Session, today: dt.date, limit: int, after: Keyset | None = None
) -> list[ArchivedSignal]:
    """Up to ``limit`` archived signals whose term has ended, in ``(destroy_on, id)``
    order, after ``after`` (the index ``ix_archived_signals_destroy_on_id``)."""
    order = tuple_(ARCHIVED.c.destroy_on, ARCHIVED.c.id)
    query = select(ARCHIVED).where(ARCHIVED.c.destroy_on <= today)
    if after is not None:
        query = query.where(order > tuple_(*after))
    query = query.order_by(ARCHIVED.c.destroy_on, ARCHIVED.c.id).limit(limit)
    return _archived_list(session.execute(query))


# Removal, several signals at once (vir.services.removal). IN lists go in parts of at
# most this many values: PostgreSQL takes at most 65,535 parameters in one statement.
_IN_PART = 5_000


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _IN_PART):
        yield ordered[start : start + _IN_PART]


_LINKED_PARENTS_OF = (
    select(SIGNALS.c.person, PARENTS.c.parent)
    .join(PARENTS, PARENTS.c.signal_id == SIGNALS.c.id)
    .where(SIGNALS.c.person.in_(bindparam("persons", expanding=True)))
    .distinct()
)
_MATCH_KEYS_OF = (
    select(MATCHES.c.via, MATCHES.c.key)
    .join(MEMBERS, MEMBERS.c.match_id == MATCHES.c.id)
    .where(
        MEMBERS.c.signal_id.in_(bindparam("signals", expanding=True)),
        MATCHES.c.ended_at.is_(None),
    )
    .distinct()
)


_LINKED_PARENTS_OF_POSTGRESQL = (
    "SELECT DISTINCT signals.person, signal_parents.parent FROM signals"
    " JOIN signal_parents ON signal_parents.signal_id = signals.id"
    " WHERE signals.person = ANY(%(persons)s::bytea[])"
)


def linked_parents_of(
    session: Session, persons: Collection[bytes], *, after: Iterable[Lock] = ()
) -> dict[bytes, set[bytes]]:
    """``linked_parents`` of several young persons: person -> parents (none: absent).
    ``after``: locks to take first (``locks.take``; on PostgreSQL in the same round trip)."""
    found: dict[bytes, set[bytes]] = {}
    if not persons:
        locks.take(session, after)
        return found
    rows = locks.take(
        session, after, then=locks.Then(_LINKED_PARENTS_OF_POSTGRESQL, {"persons": list(persons)})
    )
    if rows is None:  # SQLite
        rows = [
            row
            for part in _chunks(persons)
            for row in session.execute(_LINKED_PARENTS_OF, {"persons": part})
        ]
    for person, parent in rows:
        found.setdefault(person, set()).add(parent)
    return found


def match_keys_of(session: Session, signal_ids: Collection[str]) -> set[GroupKey]:
    """The keys of the active matches these signals are members of."""
    found: set[GroupKey] = set()
    for part in _chunks(signal_ids):
        rows = session.execute(_MATCH_KEYS_OF, {"signals": part})
        found.update(GroupKey(Via(via), key) for via, key in rows)
    return found


def archive_signals(
    session: Session, destroy_on: Mapping[str, dt.date], archived_on: dt.date, reason: str
) -> None:
    """Move active signals to the archive, each (id) until its ``destroy_on`` date: the
    person, reporter and dates only, copied by the database (one statement a date)."""
    by_date: dict[dt.date, list[str]] = {}
    for signal_id, until in destroy_on.items():
        by_date.setdefault(until, []).append(signal_id)
    for until, ids in sorted(by_date.items()):
        for part in _chunks(ids):
            copied = select(
                *(SIGNALS.c[name] for name in _ARCHIVED_AS_IS),
                SIGNALS.c.created_at,
                literal(archived_on, ARCHIVED.c.archived_on.type),
                literal(reason, ARCHIVED.c.reason.type),
                literal(until, ARCHIVED.c.destroy_on.type),
            ).where(SIGNALS.c.id.in_(part))
            columns = [*_ARCHIVED_AS_IS, "registered_at", "archived_on", "reason", "destroy_on"]
            session.execute(insert(ARCHIVED).from_select(columns, copied))
    delete_signals(session, list(destroy_on))


# What the archive keeps of a signal under the same name (``registered_at`` is its
# ``created_at``); its parents and address are dropped.
_ARCHIVED_AS_IS = (
    "id",
    "oin",
    "local_ref",
    "person",
    "professional_name",
    "professional_email",
    "professional_phone",
    "professional_function",
    "remove_on",
    "informed_on",
    "informed_who",
)


def delete_signals(session: Session, signal_ids: Collection[str]) -> None:
    """Delete active signals, their parents and their match memberships."""
    for part in _chunks(signal_ids):
        session.execute(delete(MEMBERS).where(MEMBERS.c.signal_id.in_(part)))
        session.execute(delete(PARENTS).where(PARENTS.c.signal_id.in_(part)))
        session.execute(delete(SIGNALS).where(SIGNALS.c.id.in_(part)))


def delete_archived(session: Session, signal_ids: Collection[str]) -> None:
    """Delete archived signals and the record of their offers."""
    for part in _chunks(signal_ids):
        session.execute(delete(OFFERS).where(OFFERS.c.archived_signal_id.in_(part)))
        session.execute(delete(ARCHIVED).where(ARCHIVED.c.id.in_(part)))


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
    return _signals(session.execute(query.order_by(SIGNALS.c.id).limit(limit)))


# A place in an organisation's list of active signals, newest first: (created_at, id).
ListKey = tuple[dt.datetime, str]


def _listed(oin: str, person: str | None, matched: bool) -> Any:
    """The organisation's active signals (``person``: only those that person registered
    through the portal; ``matched``: only those in an active match), id and created_at."""
    query = select(SIGNALS.c.id, SIGNALS.c.created_at).where(SIGNALS.c.oin == oin)
    if person is not None:
        query = query.join(PORTAL, PORTAL.c.signal_id == SIGNALS.c.id).where(
            PORTAL.c.person == person
        )
    if matched:
        query = query.where(
            exists()
            .where(MEMBERS.c.signal_id == SIGNALS.c.id, MEMBERS.c.match_id == MATCHES.c.id)
            .where(MATCHES.c.ended_at.is_(None))
        )
    return query


def _key_columns() -> Any:
    """(created_at, id) as row values, compared as one: ``(created_at, id) < (?, ?)`` is
    a range of ``ix_signals_oin_created_at_id`` on SQLite and PostgreSQL."""
    return tuple_(SIGNALS.c.created_at, SIGNALS.c.id)


def _place(key: ListKey) -> Any:
    return tuple_(literal(key[0], SIGNALS.c.created_at.type), literal(key[1], SIGNALS.c.id.type))


def _older(key: ListKey) -> Any:
    return _key_columns() < _place(key)


def _newer(key: ListKey) -> Any:
    return _key_columns() > _place(key)


def listed_page(
    session: Session,
    oin: str,
    *,
    person: str | None = None,
    matched: bool = False,
    older_than: ListKey | None = None,
    newer_than: ListKey | None = None,
    limit: int,
) -> list[Signal]:
    """At most ``limit`` of the organisation's active signals (``_listed``), newest first
    by (created_at, id): the newest of those older than ``older_than``, or the oldest of
    those newer than ``newer_than`` (a page back), or the newest of all. A keyset page:
    on ``ix_signals_oin_created_at_id`` (migration 0025) for the organisation's."""
    query = _listed(oin, person, matched)
    if older_than is not None:
        query = query.where(_older(older_than))
    if newer_than is not None:
        query = query.where(_newer(newer_than))
        order: tuple[Any, Any] = (SIGNALS.c.created_at, SIGNALS.c.id)
    else:
        order = (SIGNALS.c.created_at.desc(), SIGNALS.c.id.desc())
    keys = session.execute(query.order_by(*order).limit(limit)).all()
    ids = [k.id for k in sorted(keys, key=lambda k: (k.created_at, k.id), reverse=True)]
    found = {s.id: s for s in signals_by_id(session, ids)} if ids else {}
    return [found[i] for i in ids if i in found]


def listed_count(
    session: Session,
    oin: str,
    *,
    person: str | None = None,
    matched: bool = False,
    newer_than: ListKey | None = None,
) -> int:
    """How many of the organisation's active signals ``_listed`` holds (those newer than
    ``newer_than``: the place of a page's first signal in the list)."""
    query = _listed(oin, person, matched)
    if newer_than is not None:
        query = query.where(_newer(newer_than))
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def listed_matches_count(session: Session, oin: str, *, person: str | None = None) -> int:
    """How many (signal, active match) pairs the organisation's active signals are in
    (``person``: of the signals that person registered through the portal)."""
    query = (
        select(func.count())
        .select_from(MEMBERS)
        .join(MATCHES, MATCHES.c.id == MEMBERS.c.match_id)
        .join(SIGNALS, SIGNALS.c.id == MEMBERS.c.signal_id)
        .where(MATCHES.c.ended_at.is_(None), SIGNALS.c.oin == oin)
    )
    if person is not None:
        query = query.join(PORTAL, PORTAL.c.signal_id == SIGNALS.c.id).where(
            PORTAL.c.person == person
        )
    return int(session.execute(query).scalar_one())


def registered_in_match(session: Session, oin: str, person: str, match_id: str) -> bool:
    """Whether an active signal of the organisation that ``person`` registered through
    the portal is a member of the match (an ended match has no members)."""
    query = (
        select(MEMBERS.c.signal_id)
        .join(SIGNALS, SIGNALS.c.id == MEMBERS.c.signal_id)
        .join(PORTAL, PORTAL.c.signal_id == SIGNALS.c.id)
        .where(MEMBERS.c.match_id == match_id, SIGNALS.c.oin == oin, PORTAL.c.person == person)
        .limit(1)
    )
    return session.execute(query).first() is not None


def own_archived(session: Session, oin: str, after: str | None, limit: int) -> list[ArchivedSignal]:
    query = select(ARCHIVED).where(ARCHIVED.c.oin == oin)
    if after is not None:
        query = query.where(ARCHIVED.c.id > after)
    return _archived_list(session.execute(query.order_by(ARCHIVED.c.id).limit(limit)))


def uninformed(session: Session, before: dt.datetime) -> list[Signal]:
    """Active signals, of every organisation, unconfirmed since before ``before``."""
    query = (
        select(SIGNALS)
        .where(SIGNALS.c.informed_on.is_(None), SIGNALS.c.created_at < before)
        .order_by(SIGNALS.c.oin, SIGNALS.c.created_at, SIGNALS.c.id)
    )
    return _signals(session.execute(query))


def signals_of_organisation(session: Session, oin: str) -> list[Signal]:
    query = select(SIGNALS).where(SIGNALS.c.oin == oin).order_by(SIGNALS.c.id)
    return _signals(session.execute(query))


def oins_in_region(session: Session, region: str) -> frozenset[str]:
    """The OINs of the organisations of ``region``: a regional privacy officer's part."""
    return frozenset(
        session.scalars(select(ORGANISATIONS.c.oin).where(ORGANISATIONS.c.region == region))
    )


def uninformed_in_region(session: Session, before: dt.datetime, region: str | None) -> list[Signal]:
    """``uninformed``, of the organisations of ``region`` only (None: of every region)."""
    if region is None:
        return uninformed(session, before)
    query = (
        select(SIGNALS)
        .join(ORGANISATIONS, ORGANISATIONS.c.oin == SIGNALS.c.oin)
        .where(
            ORGANISATIONS.c.region == region,
            SIGNALS.c.informed_on.is_(None),
            SIGNALS.c.created_at < before,
        )
        .order_by(SIGNALS.c.oin, SIGNALS.c.created_at, SIGNALS.c.id)
    )
    return _signals(session.execute(query))


_UNNUMBERED_OF = (
    select(NOTIFICATIONS.c.seq)
    .where(NOTIFICATIONS.c.position.is_(None), NOTIFICATIONS.c.oin == bindparam("oin"))
    .limit(1)
)


def has_unnumbered(session: Session, oin: str) -> bool:
    """Whether the organisation has committed notifications the integrator has not
    numbered yet (readers do not see them until it has)."""
    return session.execute(_UNNUMBERED_OF, {"oin": oin}).first() is not None
