"""Taking signals out of the index: archived or erased, matches settled, audited.

Every way a signal ends — withdrawal by its reporter, its removal date, an
erasure or objection request, a death notice — goes through ``remove_many``
(``remove`` for one) inside the caller's write transaction, so the signals, their
matches, the notifications to the partners that remain and the audit entries
change together or not at all.

Notifications live no longer than the signals they carry (docs/matching.md,
Retention): when a signal leaves the index, archived or erased, every notification
addressed to it or showing its reporter goes in the same transaction, and when an
archived signal is destroyed, so do the archive offers that showed it. Its
reporter's contact details then remain only in the archive (by law), never in
another organisation's notifications.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.domain.lifecycle import ArchiveReason, destroy_on
from vir.domain.matching import GroupKey, Via, group_keys
from vir.domain.signals import SignalFacts
from vir.services.matching import settle, snapshot
from vir.store import audit_log, locks
from vir.store import signals as repo
from vir.store.locks import Lock
from vir.store.records import ArchivedSignal, Signal

ARCHIVED = "archived"
ERASED = "erased"


def remove(
    session: Session,
    row: Signal,
    now: dt.datetime,
    archive: ArchiveReason | None,
    accessor: dict[str, Any],
) -> str:
    """Archive ``row`` (when ``archive`` is given and the archive term allows) or erase it.

    ``accessor`` names who caused it, as keyword arguments for the audit entry.
    """
    (outcome,) = remove_many(session, [row], now, archive, lambda _row: accessor)
    return outcome


def remove_many(
    session: Session,
    rows: Sequence[Signal],
    now: dt.datetime,
    archive: ArchiveReason | None,
    accessor_of: Callable[[Signal], dict[str, Any]],
    *,
    cause: Callable[[Signal], AuditEvent] | None = None,
) -> list[str]:
    """Archive each of ``rows`` (when ``archive`` is given and its archive term allows)
    or erase it; returns the outcome of each, in order.

    All at once: the rows are locked, their groups read once, archived and deleted with
    a few statements, and their groups settled once. Partners in a group that several
    of them leave get one notification, showing the match as it ends up, rather than one
    per departure. ``accessor_of(row)`` names who caused a removal, as keyword arguments
    for its audit entry; ``cause(row)``, when given, is an entry appended just before it
    (the lifecycle's ``signal.expired``), so each signal's entries stay together.
    """
    if not rows:
        return []
    _all, matched = _lock(session, rows)
    before = snapshot(session, matched)
    today = now.date()
    kept: dict[str, dt.date] = {}  # signal -> destroy_on
    erased: list[str] = []
    outcomes: list[str] = []
    for row in rows:
        until = destroy_on(today, row.archive_until) if archive is not None else None
        if archive is not None and until is not None:
            kept[row.id] = until
            destroy = audit_log.day(until, row.archive_until)
            outcome, objects = ARCHIVED, {"signal": row.id, "destroy_on": destroy}
        else:
            erased.append(row.id)
            outcome, objects = ERASED, {"signal": row.id}
        outcomes.append(outcome)
        if cause is not None:
            audit_log.append(session, cause(row))
        audit_log.append(
            session,
            audit_log.new_event(
                Action.SIGNAL_ARCHIVED if outcome == ARCHIVED else Action.SIGNAL_ERASED,
                Outcome.SUCCESS,
                now,
                objects=objects,
                **accessor_of(row),
            ),
        )
    if kept:
        assert archive is not None
        repo.archive_signals(session, kept, today, archive.value)
    repo.delete_signals(session, erased)
    settle(session, before, now, {row.id: row.oin for row in rows})
    # After settle: the partners' notices it just made show the matches without these
    # signals, and are kept; everything made earlier that shows one of them goes.
    repo.forget_notifications(session, [row.id for row in rows])
    return outcomes


def lock(session: Session, rows: Sequence[Signal]) -> set[GroupKey]:
    """Lock what removing or changing ``rows`` touches: their young persons, then every
    group they are in (``vir.store.locks``); returns those groups. Their matches read
    after it stay as read. A transaction that removes several signals locks them all
    first: locks come in one order, and removing one signal only ever shrinks the
    groups of the next."""
    groups, _matched = _lock(session, rows)
    return groups


def _lock(session: Session, rows: Sequence[Signal]) -> tuple[set[GroupKey], set[GroupKey]]:
    """``lock``; returns the groups, and those of them that are a match.

    The groups are those the signals are in, or make with the parents linked to their
    young persons: a signal leaves those households, and a link that only it declared
    takes the person's other signals out with it. Read under the persons' locks.

    Only a match can change when signals go: removing signals takes members out of
    groups and never adds one (no link or address comes with it), and a group with
    fewer members qualifies no more than before. And a signal is a member of every
    group it is in, so a match among them has it among its stored members
    (docs/concurrency.md, "matching"): the matches of the signals are those groups,
    read once they are all locked.
    """
    if not rows:
        return set(), set()
    persons = {row.person for row in rows}
    locks.take(session, [Lock.person(person) for person in persons])
    linked = repo.linked_parents_of(session, persons)
    # The matches stored now are locked too, should one be of a group the signals' facts
    # no longer give; which matches to settle is read again below, under the locks.
    groups = set(repo.match_keys_of(session, [row.id for row in rows]))
    for row in rows:
        # A signal's own parents are among those linked to its person (it is still held),
        # so its facts need not carry them here.
        facts = SignalFacts(row.id, row.oin, row.person, frozenset(), row.address)
        groups |= group_keys(facts, linked.get(row.person, ()))
    # The group of one of these persons is the lock on the person, taken above.
    taken = {GroupKey(Via.PERSON, person) for person in persons}
    locks.take(session, [Lock.group(key) for key in groups - taken])
    # Read again under the groups' locks. The persons' locks do not keep a group from
    # becoming a match: a registration about another young person at the same address,
    # or with the same parent, holds that group's lock only, and may have made a match
    # with these signals in it since the first read. Settling only the matches of that
    # read left such a match behind with one member (the stress test on PostgreSQL).
    return groups, set(repo.match_keys_of(session, [row.id for row in rows]))


def destroy(session: Session, row: ArchivedSignal, now: dt.datetime, **accessor: Any) -> None:
    """Delete an archived signal for good (end of term, turning 23, death, erasure), and
    the archive offers that showed it."""
    destroy_many(session, [row], now, lambda _row: accessor)


def destroy_many(
    session: Session,
    rows: Sequence[ArchivedSignal],
    now: dt.datetime,
    accessor_of: Callable[[ArchivedSignal], dict[str, Any]],
) -> None:
    """``destroy`` for several archived signals at once; audited in their order."""
    if not rows:
        return
    ids = [row.id for row in rows]
    repo.delete_archived(session, ids)
    repo.forget_notifications(session, ids)
    for row in rows:
        audit_log.append(
            session,
            audit_log.new_event(
                Action.SIGNAL_DESTROYED,
                Outcome.SUCCESS,
                now,
                objects={"signal": row.id},
                **accessor_of(row),
            ),
        )
