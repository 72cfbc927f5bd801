"""Taking a signal out of the index: archived or erased, matches settled, audited.

Every way a signal ends — withdrawal by its reporter, its removal date, an
erasure or objection request, a death notice — goes through ``remove`` inside
the caller's write transaction, so the signal, its matches, the notifications to
the partners that remain and the audit entries change together or not at all.

Notifications live no longer than the signals they carry (docs/matching.md,
Retention): when a signal leaves the index, archived or erased, every notification
addressed to it or showing its reporter goes in the same transaction, and when an
archived signal is destroyed, so do the archive offers that showed it. Its
reporter's contact details then remain only in the archive (by law), never in
another organisation's notifications.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain.lifecycle import ArchiveReason, destroy_on
from vir.domain.matching import GroupKey, group_keys
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
    lock(session, [row])
    before = snapshot(session, _groups(session, row))
    today = now.date()
    until = destroy_on(today, row.archive_until) if archive is not None else None
    if archive is not None and until is not None:
        repo.archive_signal(session, row, today, archive.value, until)
        outcome, objects = ARCHIVED, {"signal": row.id, "destroy_on": until.isoformat()}
    else:
        repo.delete_signal(session, row.id)
        outcome, objects = ERASED, {"signal": row.id}
    audit_log.append(
        session,
        audit_log.new_event(
            Action.SIGNAL_ARCHIVED if outcome == ARCHIVED else Action.SIGNAL_ERASED,
            Outcome.SUCCESS,
            now,
            objects=objects,
            **accessor,
        ),
    )
    settle(session, before, now, {row.id: row.oin})
    # After settle: the partners' notices it just made show the match without the
    # signal, and are kept; everything made earlier that shows the signal goes.
    repo.forget_notifications(session, row.id)
    return outcome


def lock(session: Session, rows: Sequence[Signal]) -> None:
    """Lock what removing ``rows`` touches: their young persons, then every group they
    are in (``vir.store.locks``). A transaction that removes several signals locks them
    all first: locks come in one order, and removing one signal only ever shrinks the
    groups of the next."""
    locks.take(session, [Lock.person(row.person) for row in rows])
    groups: set[GroupKey] = set()
    for row in rows:
        groups |= _groups(session, row)
    locks.take(session, [Lock.group(key) for key in groups])


def _groups(session: Session, row: Signal) -> set[GroupKey]:
    """The groups a signal is in, or makes with the parents linked to its young person:
    the signal leaves those households, and a link that only it declared takes the
    person's other signals out with it. Read under the person's lock."""
    (facts,) = repo.facts(session, [row])
    linked = repo.linked_parents(session, row.person)
    return set(group_keys(facts, linked)) | {key for _m, key in repo.matches_of(session, row.id)}


def destroy(session: Session, row: ArchivedSignal, now: dt.datetime, **accessor: Any) -> None:
    """Delete an archived signal for good (end of term, turning 23, death, erasure), and
    the archive offers that showed it."""
    repo.delete_archived(session, row.id)
    repo.forget_notifications(session, row.id)
    audit_log.append(
        session,
        audit_log.new_event(
            Action.SIGNAL_DESTROYED,
            Outcome.SUCCESS,
            now,
            objects={"signal": row.id},
            **accessor,
        ),
    )
