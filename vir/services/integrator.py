"""The integrator's loop in a running service (``vir.store.sequencer`` does the work).

Every instance runs one: a thread that integrates when a write of this process
committed audit events (at most once per ``MIN_INTERVAL_SECONDS``), and at least
every ``POLL_SECONDS`` (for what other instances and the CLI staged). On
PostgreSQL the integrators of all instances take turns through the integrator's
lock; one that finds it taken skips its turn, since the holder integrates what it
would have. Readers that need what was just committed integrate themselves
(``Database.integrate``, ``audit_log.flush``).

Each pass of the thread that ends without an error is told to ``observe_passes``'s
callback (the app's metrics: ``vir_job_last_success_timestamp_seconds{task=
"audit.integrate"}``), whether or not there was anything to integrate and also when
another instance's integrator had the lock (it integrates for this one): on a quiet
system that is every ``POLL_SECONDS``, so a gauge that stops moving means the thread
is stuck or failing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from vir import logs
from vir.store.db import Database
from vir.store.sequencer import Integrated

POLL_SECONDS = 0.25
# At most one integration per this interval from the thread: under load, one
# transaction integrates the events of many commits instead of one per commit, and
# does not compete with the writers for SQLite's one write lock after each of theirs.
MIN_INTERVAL_SECONDS = 0.05


class Integrator:
    def __init__(
        self,
        db: Database,
        observer: Callable[[Integrated], None] | None = None,
        poll: float = POLL_SECONDS,
    ) -> None:
        self._db = db
        self._observer = observer
        self._passed: Callable[[float], None] | None = None
        self._poll = poll
        self._nudged = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        db.observe_commits(self._committed)

    def observe(self, observer: Callable[[Integrated], None]) -> None:
        self._observer = observer

    def observe_passes(self, passed: Callable[[float], None]) -> None:
        """``passed(unix_time)`` after each pass of the thread that ended without an error."""
        self._passed = passed

    def _committed(self, _events: Sequence[Any]) -> None:
        self._nudged.set()

    def run_once(self, *, wait: bool = True) -> Integrated | None:
        """One integration in a write transaction of its own; None when another
        integrator had the lock and ``wait`` is False."""
        done = self._db.integrate(wait=wait)
        if done is not None and self._observer is not None and (done.entries or done.notifications):
            self._observer(done)
        return done

    def start(self) -> None:
        if self._thread is not None:
            return
        self._db.integrate_after_commit = False  # this thread integrates from now on
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="vir-integrator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then integrate what is left."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._nudged.set()
            thread.join()
        self.run_once(wait=True)
        self._db.integrate_after_commit = True

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._nudged.wait(self._poll)
            self._nudged.clear()
            if self._stopping.is_set():
                return
            try:
                self.run_once(wait=False)
            except Exception:  # a busy database must not end the loop for good
                logs.emit(logs.JOB_FAILED, job="audit.integrate", exc_info=True)
                self._stopping.wait(self._poll)
            else:
                if self._passed is not None:
                    self._passed(time.time())
            self._stopping.wait(MIN_INTERVAL_SECONDS)
