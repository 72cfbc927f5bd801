"""The scheduled lifecycle (``vir lifecycle run``): removal dates and the archive term.

Signals whose removal date has come are removed — archived for five years, or
erased when the young person turns 23 before any archive term could start —
and archived signals whose term has ended are destroyed. Then notifications
that outlived a signal they carry (docs/matching.md, Retention) are swept: removal
deletes them as it goes, so this finds only rows some other path left behind. Last,
organisations that left (``vir org remove``) and that nothing holds any more are
deleted with their certificates (vir.services.offboarding).

Work goes in batches (``BATCH`` signals), each its own transaction: a crash loses at
most the batch in flight, which the next run picks up again, and a run with nothing
due changes nothing but its own audit entry. A batch is removed as a set
(``removal.remove_many``): its groups are read and settled once, its rows archived and
deleted a few statements at a time. The batches' audit entries are staged with them
and integrated into the log at the end of the run, with the run's own entry, rather
than after every batch (in ``vir serve`` the integrator thread takes them as they
come). Time comes from the injected clock only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.domain.clock import Clock
from vir.domain.lifecycle import ArchiveReason
from vir.domain.progress import Progress
from vir.services import offboarding, rekey, removal
from vir.store import audit_log, locks
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.records import ArchivedSignal, Signal

# Signals a transaction. Larger batches share more of their work (statements, the
# pages of the indexes they touch, commits) but hold SQLite's write lock longer.
BATCH = 1_000
ACTOR = "lifecycle"


@dataclass(frozen=True)
class LifecycleReport:
    archived: int = 0
    erased: int = 0
    destroyed: int = 0
    swept: int = 0  # notifications deleted by the sweep (not counted in ``total``)
    organisations: int = 0  # organisations that left, deleted (not counted in ``total``)

    @property
    def total(self) -> int:
        return self.archived + self.erased + self.destroyed


class _Tally:
    """What a run did so far, and its progress reports."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done = total, 0
        self.archived = self.erased = self.destroyed = 0
        self._progress = progress

    def advance(self, count: int) -> None:
        self.done += count
        if self._progress and count:
            self._progress(min(self.done, self.total), max(self.total, self.done))


class Lifecycle:
    def __init__(self, db: Database, clock: Clock, batch: int = BATCH) -> None:
        self._db = db
        self._clock = clock
        self._batch = batch

    def due(self) -> tuple[int, int]:
        """How many signals are due for removal and how many archived ones for destruction."""
        with self._db.read() as session:
            return repo.count_due(session, self._clock().date())

    def run(self, progress: Progress | None = None) -> LifecycleReport:
        now = self._clock()
        today = now.date()
        tally = _Tally(sum(self.due()), progress)
        with self._integrated_at_the_end():
            self._remove_due(now, tally)
            self._destroy_due(now, tally)
            swept = self.sweep()
            rekey.retire(self._db, now, actor=ACTOR)  # key epochs past their grace period
            # After the destruction: an archived signal destroyed now no longer holds its
            # organisation's tombstone.
            purged = offboarding.purge(self._db, now, ACTOR)
            report = LifecycleReport(
                tally.archived, tally.erased, tally.destroyed, swept, organisations=purged
            )
            with self._db.write() as session:
                audit_log.append(
                    session,
                    audit_log.new_event(
                        Action.LIFECYCLE_RUN,
                        Outcome.SUCCESS,
                        now,
                        actor=ACTOR,
                        objects={
                            "archived": report.archived,
                            "erased": report.erased,
                            "destroyed": report.destroyed,
                            "swept": swept,
                            "as_of": today.isoformat(),
                        },
                    ),
                )
        return report

    def _remove_due(self, now: dt.datetime, tally: _Tally) -> None:
        """Remove the signals whose removal date has come, a batch a transaction."""
        after: repo.Keyset | None = None
        while True:
            with self._db.write() as session, repo.batch_cache(session):
                due = repo.due_for_removal(session, now.date(), self._batch, after)
                # Their young persons locked, then the signals read: a reporter may have
                # withdrawn one, or changed its contact details, until then.
                locks.take(session, [Lock.person(d.person) for d in due])
                held = {r.id: r for r in repo.signals_by_id(session, [d.id for d in due])}
                outcomes = removal.remove_many(
                    session,
                    [held[d.id] for d in due if d.id in held],
                    now,
                    ArchiveReason.EXPIRED,
                    _removed_by,
                    cause=lambda row: _expired(row, now),
                )
            tally.archived += outcomes.count(removal.ARCHIVED)
            tally.erased += outcomes.count(removal.ERASED)
            tally.advance(len(due))
            if len(due) < self._batch:
                return
            after = (due[-1].remove_on, due[-1].id)

    def _destroy_due(self, now: dt.datetime, tally: _Tally) -> None:
        """Destroy the archived signals whose term has ended, a batch a transaction."""
        after: repo.Keyset | None = None
        while True:
            with self._db.write() as session, repo.batch_cache(session):
                old = repo.due_for_destruction(session, now.date(), self._batch, after)
                removal.destroy_many(session, old, now, _destroyed_by)
            tally.destroyed += len(old)
            tally.advance(len(old))
            if len(old) < self._batch:
                return
            after = (old[-1].destroy_on, old[-1].id)

    @contextmanager
    def _integrated_at_the_end(self) -> Iterator[None]:
        """Leave the audit events of the run's writes staged meanwhile, when this process
        integrates after every write (the CLI, which has no integrator thread), and
        integrate them at the end: a few integrations, however many batches. Staged,
        they are committed already; should the run stop early, the next integration
        takes them."""
        if not self._db.integrate_after_commit:
            yield  # an integrator thread integrates as the writes commit
            return
        self._db.integrate_after_commit = False
        try:
            yield
        finally:
            self._db.integrate_after_commit = True
        # One integration moves a bounded number of events (vir.store.sequencer): the
        # log is whole when one finds nothing left.
        while (done := self._db.integrate()) is not None and done.entries:
            pass

    def sweep(self) -> int:
        """Delete notifications that carry a signal no longer held; returns how many.

        Found in a read transaction, one batch at a time in seq order, and deleted in a
        write transaction of their own: at most one batch of ids in memory, and the
        write lock is not held while the table is scanned. Safe outside the lock: a
        signal that has gone never comes back (ids are never reused).
        """
        deleted, after = 0, 0
        while True:
            with self._db.read() as session:
                found = repo.orphaned_notifications(session, after, self._batch)
            if found:
                with self._db.write() as session:
                    deleted += repo.delete_notifications(session, [i for _seq, i in found])
                after = found[-1][0]
            if len(found) < self._batch:
                return deleted


def _removed_by(row: Signal) -> dict[str, Any]:
    """Who removes a signal whose removal date has come, for its audit entries."""
    return {"organisation": row.oin, "actor": ACTOR, "reason": "remove_on"}


def _expired(row: Signal, now: dt.datetime) -> AuditEvent:
    """The entry that precedes a signal's ``signal.archived`` or ``signal.erased``."""
    return audit_log.new_event(
        Action.SIGNAL_EXPIRED,
        Outcome.SUCCESS,
        now,
        objects={"signal": row.id, "remove_on": audit_log.day(row.remove_on, row.archive_until)},
        **_removed_by(row),
    )


def _destroyed_by(row: ArchivedSignal) -> dict[str, Any]:
    """Who destroys an archived signal at the end of its term."""
    return {"organisation": row.oin, "actor": ACTOR, "reason": "archive_term"}


def progress_bar(write: Callable[[str], object], width: int = 30) -> Progress:
    """A one-line text progress bar for a terminal (``\\r``-rewritten)."""

    def show(done: int, total: int) -> None:
        filled = width * done // total if total else width
        write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")

    return show
