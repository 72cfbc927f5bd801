"""The scheduled lifecycle (``vir lifecycle run``): removal dates and the archive term.

Signals whose removal date has come are removed — archived for five years, or
erased when the young person turns 23 before any archive term could start —
and archived signals whose term has ended are destroyed. Last, notifications
that outlived a signal they carry (docs/matching.md, Retention) are swept: removal
deletes them as it goes, so this finds only rows some other path left behind.
Work goes in small batches, each its own transaction: a crash loses at most the
batch in flight, which the next run picks up again, and a run with nothing due
changes nothing but its own audit entry. Time comes from the injected clock only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain.clock import Clock
from vir.domain.lifecycle import ArchiveReason
from vir.services import rekey, removal
from vir.store import audit_log
from vir.store import signals as repo
from vir.store.db import Database

BATCH = 50
ACTOR = "lifecycle"

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class LifecycleReport:
    archived: int = 0
    erased: int = 0
    destroyed: int = 0
    swept: int = 0  # notifications deleted by the sweep (not counted in ``total``)

    @property
    def total(self) -> int:
        return self.archived + self.erased + self.destroyed


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
        removal_due, destruction_due = self.due()
        total, done = removal_due + destruction_due, 0
        archived = erased = destroyed = 0
        while True:
            with self._db.write() as session:
                due = repo.due_for_removal(session, today, self._batch)
                # Locked, then read again: its reporter may have withdrawn one meanwhile.
                removal.lock(session, due)
                now_held = {r.id: r for r in repo.signals_by_id(session, [r.id for r in due])}
                rows = [now_held[r.id] for r in due if r.id in now_held]
                for row in rows:
                    accessor = {"organisation": row.oin, "actor": ACTOR, "reason": "remove_on"}
                    audit_log.append(
                        session,
                        audit_log.new_event(
                            Action.SIGNAL_EXPIRED,
                            Outcome.SUCCESS,
                            now,
                            objects={"signal": row.id, "remove_on": row.remove_on.isoformat()},
                            **accessor,
                        ),
                    )
                    outcome = removal.remove(session, row, now, ArchiveReason.EXPIRED, accessor)
                    archived += outcome == removal.ARCHIVED
                    erased += outcome == removal.ERASED
            done += len(due)
            if progress and due:
                progress(min(done, total), max(total, done))
            if len(due) < self._batch:
                break
        while True:
            with self._db.write() as session:
                old = repo.due_for_destruction(session, today, self._batch)
                for kept in old:
                    removal.destroy(
                        session,
                        kept,
                        now,
                        organisation=kept.oin,
                        actor=ACTOR,
                        reason="archive_term",
                    )
                destroyed += len(old)
            done += len(old)
            if progress and old:
                progress(min(done, total), max(total, done))
            if len(old) < self._batch:
                break
        swept = self.sweep()
        rekey.retire(self._db, now, actor=ACTOR)  # key epochs past their grace period
        report = LifecycleReport(archived, erased, destroyed, swept)
        with self._db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.LIFECYCLE_RUN,
                    Outcome.SUCCESS,
                    now,
                    actor=ACTOR,
                    objects={
                        "archived": archived,
                        "erased": erased,
                        "destroyed": destroyed,
                        "swept": swept,
                        "as_of": today.isoformat(),
                    },
                ),
            )
        return report

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


def progress_bar(write: Callable[[str], object], width: int = 30) -> Progress:
    """A one-line text progress bar for a terminal (``\\r``-rewritten)."""

    def show(done: int, total: int) -> None:
        filled = width * done // total if total else width
        write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")

    return show
