"""Rekeying the index: every stored pseudonym N becomes δ·N, while the index serves.

``start`` records the incoming epoch and δ from a verified token (``vir.crypto.
rekey_token``). ``run`` fills the shadow columns (``vir.store.rekey``, whose docstring
proves it resumable): batches are read in the main process, multiplied in a pool of
worker processes (``vir.crypto.rekey``), and written back in their own short write
transactions while the workers multiply the next ones, so the scalar multiplications,
the reads and the writes overlap. Passes repeat until what a pass finds (rows that
arrived meanwhile) is small; then ``switch``, one write transaction: the last rows
are converted, every shadow moves into place, the incoming epoch becomes current and
the old one previous, accepted for a grace period. ``retire`` ends that period.

Arrivals during the run are correct at every moment. Until the switch commits, the
live columns hold epoch e, and a registration converts its pseudonyms to e inside its
write transaction (``vir.services.epochs.in_transaction``; e + 1 ones by δ⁻¹), where
it matches everything stored; its row has NULL shadows and is converted by a later
pass or by the switch itself. The switch runs under the write lock, so no write
transaction sees half of it; after it, arrivals convert to e + 1.

``kill -9`` at any moment leaves a database that a new ``run`` carries on from: each
batch and the switch are single transactions, and a shadow is NULL or right.
"""

from __future__ import annotations

import collections
import ctypes
import datetime as dt
import enum
import hmac
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import rekey as arithmetic
from vir.crypto.oprf import ELEMENT_BYTES
from vir.crypto.rekey_token import RekeyToken
from vir.domain.clock import Clock
from vir.domain.errors import Conflict, InputError
from vir.store import audit_log
from vir.store import epochs as table
from vir.store import rekey as shadows
from vir.store.db import Database
from vir.store.epochs import EpochRecord, EpochState
from vir.store.rekey import PLAN, Row, Shadowed
from vir.store.tables import AuditEntryRow, AuditStagedRow

BATCH = 4096
ACTOR = "admin"
# Passes over the tables before the switch: the first converts nearly everything, a
# next one what arrived during the one before. The switch converts whatever is left
# inside its transaction, holding the write lock, so it should be little.
MAX_PASSES = 4

# Called as (table, rows converted so far, rows to convert) after every batch.
Progress = Callable[[str, int, int], None]


class Started(enum.StrEnum):
    """What ``start`` did."""

    STARTED = "started"
    RESUMED = "resumed"  # the same token started this rekey already
    DONE = "done"  # the same token's rekey is finished: nothing to do


@dataclass
class RekeyResult:
    """What one ``run`` did: values converted per column (``table.column``), values that
    could not be converted (not valid elements), values moved into place at the switch."""

    from_epoch: int | None = None
    to_epoch: int | None = None
    converted: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    swapped: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    switched: bool = False
    # Another run switched (or the rekey was replaced) while this one ran: it stopped.
    superseded: bool = False
    retire_after: dt.datetime | None = None
    seconds: float = 0.0
    # Of ``seconds``, the switch's transaction (holding the write lock).
    switch_seconds: float = 0.0

    @property
    def in_progress(self) -> bool:
        """A rekey was found and is not finished (stopped early, or blocked)."""
        return self.to_epoch is not None and not self.switched and not self.superseded


class RekeyBlocked(Conflict):
    """Stored values that are not valid elements cannot be converted: the switch waits
    until they are removed (``vir db check`` counts them per column). ``result`` says
    what the run did before it stopped."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.result = RekeyResult()


def start(db: Database, token: RekeyToken, now: dt.datetime) -> Started:
    """Record ``token``'s epoch as incoming, with its δ; idempotent for the same token.
    Conflict for a token that does not follow the index's current epoch."""
    with db.write(exclusive=True) as session:
        records = table.load(session)
        current = table.current(records)
        incoming = table.incoming(records)
        if incoming is not None:
            if incoming.epoch == token.to_epoch and _same(incoming.delta, token.delta):
                return Started.RESUMED
            raise Conflict(
                f"a rekey to epoch {incoming.epoch} is in progress; finish it first "
                "(vir keys rekey with its token)"
            )
        if token.to_epoch == current.epoch and _same(current.delta, token.delta):
            return Started.DONE
        if token.from_epoch != current.epoch:
            raise Conflict(
                f"the token rekeys epoch {token.from_epoch} to {token.to_epoch}, but the "
                f"index's current epoch is {current.epoch}"
            )
        shadows.clear_shadows(session)
        table.add_incoming(session, token.to_epoch, token.delta, now)
        audit_log.append(
            session,
            audit_log.new_event(
                Action.KEY_REKEY_STARTED,
                Outcome.SUCCESS,
                now,
                actor=ACTOR,
                objects={
                    "from_epoch": token.from_epoch,
                    "to_epoch": token.to_epoch,
                    "signer": token.signer,
                },
            ),
        )
    return Started.STARTED


def _same(stored: bytes | None, given: bytes) -> bool:
    return stored is not None and hmac.compare_digest(stored, given)


def run(
    db: Database,
    *,
    clock: Clock,
    grace: dt.timedelta,
    batch: int = BATCH,
    workers: int | None = None,
    progress: Progress | None = None,
    max_batches: int | None = None,
) -> RekeyResult:
    """Carry the rekey in progress through to the switch (see the module docstring).

    ``workers``: processes that multiply (default one per core; 0 multiplies in this
    process). ``max_batches``: stop after writing that many batches, before the switch
    (the rekey stays in progress; the next run carries on). RekeyBlocked when stored
    values cannot be converted (nothing switched; the batches written stay)."""
    if batch < 1:
        raise InputError("batch", "must be at least 1")
    if workers is not None and workers < 0:
        raise InputError("workers", "must be 0 or more")
    began = time.monotonic()
    with db.read() as session:
        records = table.load(session)
    incoming = table.incoming(records)
    if incoming is None or incoming.delta is None:
        return RekeyResult()
    job = _Job(db, table.current(records).epoch, incoming, batch, progress, max_batches)
    count = (os.cpu_count() or 1) if workers is None else workers
    try:
        with _pool(count, incoming.delta) as pool:
            job.fill(pool, depth=2 * max(1, count))
            if not job.stopped:
                job.switch(pool, clock(), grace)
    except RekeyBlocked as blocked:
        blocked.result = job.result
        raise
    finally:
        job.result.seconds = time.monotonic() - began
    return job.result


def retire(db: Database, now: dt.datetime, actor: str = ACTOR) -> list[int]:
    """Retire every previous epoch whose grace period is over (and any older one): its
    pseudonyms are refused from now on, and the δ that converted them is erased.
    Returns the epochs retired."""
    with db.read() as session:
        if not _due(table.load(session), now):
            return []  # the common case: no write transaction at all
    with db.write(exclusive=True) as session:
        due = _due(table.load(session), now)
        table.retire(session, due, now)
        for epoch in due:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.KEY_EPOCH_RETIRED,
                    Outcome.SUCCESS,
                    now,
                    actor=actor,
                    objects={"epoch": epoch},
                ),
            )
        return due


def _due(records: Sequence[EpochRecord], now: dt.datetime) -> list[int]:
    previous = [r for r in records if r.state == EpochState.PREVIOUS]
    past = [r.epoch for r in previous if r.retire_after is not None and r.retire_after <= now]
    if not past:
        return []
    # An epoch converts through every later one: none outlives an older one's retirement.
    return sorted(r.epoch for r in previous if r.epoch <= max(past))


def listing(db: Database) -> list[EpochRecord]:
    """Every epoch the index has known, oldest first (``delta`` is not in their repr)."""
    with db.read() as session:
        return table.load(session)


# --- the work: batches through a pool, then the switch ----------------------------


class _Executor(Protocol):
    def submit(
        self, fn: Callable[[bytes], tuple[bytes, tuple[int, ...]]], values: bytes, /
    ) -> Future[tuple[bytes, tuple[int, ...]]]: ...


class _InProcess:
    """``workers=0``: multiply here, when submitted. (``fn``, the workers' ``multiply``,
    takes δ from its process; here δ is given directly.)"""

    def __init__(self, delta: bytes) -> None:
        self._delta = delta

    def submit(
        self, fn: Callable[[bytes], tuple[bytes, tuple[int, ...]]], values: bytes, /
    ) -> Future[tuple[bytes, tuple[int, ...]]]:
        done: Future[tuple[bytes, tuple[int, ...]]] = Future()
        done.set_result(arithmetic.multiply_by(self._delta, values))
        return done


@contextmanager
def _pool(workers: int, delta: bytes) -> Iterator[_Executor]:
    """Worker processes that each hold δ. Spawned, not forked: this process has
    database connections and threads that a forked child must not inherit."""
    if workers == 0:
        yield _InProcess(delta)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(delta, os.getpid())
    ) as pool:
        yield pool


def _init_worker(delta: bytes, parent: int) -> None:
    """A worker ends with the rekey that spawned it: killed with ``kill -9``, the rekey
    cannot shut its pool down, and a worker left behind would hold δ (and its memory)
    for good. Linux: the kernel kills it when its parent dies (``PR_SET_PDEATHSIG``);
    elsewhere a thread checks every second whether the parent is still there."""
    if not _kill_with_parent():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the rekey died before the request took effect
        os._exit(1)
    arithmetic.init_worker(delta)


_PR_SET_PDEATHSIG = 1


def _kill_with_parent() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


@dataclass(frozen=True, slots=True)
class _Batch:
    """Rows of one table (``keys`` key columns, then the live values), and their live
    values packed for the workers: row i's value j at position ``i * width + j``, a NULL
    value as 32 zero bytes (which ``multiply`` passes over; the identity is never a
    stored pseudonym)."""

    part: Shadowed
    rows: list[Row]
    keys: int
    packed: bytes


_NULL = bytes(ELEMENT_BYTES)


def _pack(part: Shadowed, rows: list[Row], keys: int) -> _Batch:
    packed = b"".join(v or _NULL for row in rows for v in row[keys:])
    return _Batch(part, rows, keys, packed)


class _Job:
    def __init__(
        self,
        db: Database,
        from_epoch: int,
        incoming: EpochRecord,
        batch: int,
        progress: Progress | None,
        max_batches: int | None,
    ) -> None:
        assert incoming.delta is not None
        self._db = db
        self._epoch = incoming.epoch
        self._delta = incoming.delta
        self._batch = batch
        self._progress = progress
        self._max_batches = max_batches
        self._invalid: set[tuple[str, Row]] = set()
        self._done: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self.stopped = False
        labels = [label for part in PLAN for label in part.labels]
        self.result = RekeyResult(
            from_epoch,
            incoming.epoch,
            converted=dict.fromkeys(labels, 0),
            invalid=dict.fromkeys(labels, 0),
        )

    # -- passes before the switch --

    def fill(self, pool: _Executor, depth: int) -> None:
        """Passes over every table until one finds little, or ``max_batches`` is reached;
        each batch multiplied in ``pool`` while the next are read and the last written
        (``depth`` batches in flight)."""
        for _ in range(MAX_PASSES):
            found = 0
            head = self._audit_head()
            inflight: collections.deque[tuple[_Batch, Future[tuple[bytes, tuple[int, ...]]]]]
            inflight = collections.deque()
            for batch in self._batches():
                found += len(batch.rows)
                inflight.append((batch, pool.submit(arithmetic.multiply, batch.packed)))
                if len(inflight) >= depth:
                    self._store(*inflight.popleft())
                if self.stopped:
                    break
            while inflight:
                self._store(*inflight.popleft())
            if self.stopped or found <= self._batch:
                return
            if self._audit_head() == head:
                # Nothing was written during the pass (whatever stores a pseudonym also
                # writes an audit entry): no arrivals to look for. Only an optimisation:
                # the switch converts whatever is left all the same.
                return

    def _batches(self) -> Iterator[_Batch]:
        submitted = 0
        for part in PLAN:
            with self._db.read() as session:
                self._totals[part.name] = shadows.count_todo(session, part)
                keys = shadows.key_width(session, part)
            self._done[part.name] = 0
            after: shadows.Key | None = None
            while True:
                if self._max_batches is not None and submitted >= self._max_batches:
                    self.stopped = True
                    return
                with self._db.read() as session:
                    rows = shadows.read_todo(session, part, after, self._batch)
                if not rows:
                    break
                after = rows[-1][:keys]
                if self._invalid:
                    rows = [r for r in rows if (part.name, r[:keys]) not in self._invalid]
                if rows:
                    submitted += 1
                    yield _pack(part, rows, keys)
                if len(rows) < self._batch:
                    break

    def _store(self, batch: _Batch, future: Future[tuple[bytes, tuple[int, ...]]]) -> None:
        products, failed = future.result()
        done = self._converted(batch, products, failed)
        # Alone: in a write group's savepoint, SQLite would first copy each of the
        # batch's pages (a few hundred) to a sub-journal.
        with self._db.write(alone=True) as session:
            if not self._still_incoming(session):
                self.stopped = self.result.superseded = True
                return
            shadows.write_shadows(session, batch.part, done)
        self.result.batches += 1
        self._count(batch.part, done)
        name = batch.part.name
        self._done[name] += len(batch.rows)
        if self._progress is not None:
            total = max(self._totals.get(name, 0), self._done[name])
            self._progress(name, self._done[name], total)

    def _converted(self, batch: _Batch, products: bytes, failed: Sequence[int]) -> list[Row]:
        """``(*shadows, *row)`` of every row whose values all converted (what
        ``write_shadows`` takes); the others are counted invalid, and skipped by later
        passes."""
        size, keys, rows = ELEMENT_BYTES, batch.keys, batch.rows
        width = len(batch.part.live)
        # Slices of a bytearray: Python's sqlite3 binds a bytearray directly, but adapts
        # each bytes value first (an adapter looked up, and an AttributeError raised and
        # cleared, per value): millions of values.
        whole = bytearray(products)
        chunks = [whole[at : at + size] for at in range(0, len(whole), size)]
        bad = {position // width for position in failed}
        # A row's key holds no zero element where its values hold none (it is a rowid,
        # an id, or a pseudonym of the row itself): the whole row is searched, unsliced.
        bad |= {i for i, row in enumerate(rows) if _NULL in row}
        # The common cases, kept lean: millions of rows.
        if width == 1 and not bad:
            return [(chunk, *row) for chunk, row in zip(chunks, rows, strict=True)]
        if width == 2 and not bad:
            pairs = iter(chunks)
            return [
                (
                    None if row[keys] is None else first,
                    None if row[keys + 1] is None else second,
                    *row,
                )
                for first, second, row in zip(pairs, pairs, rows, strict=True)
            ]
        done = []
        for i, row in enumerate(rows):
            if i in bad:
                self._refuse(batch, row, failed, i * width)
                continue
            values = row[keys:]
            first = i * width
            converted = tuple(
                None if values[j] is None else chunks[first + j] for j in range(width)
            )
            done.append((*converted, *row))
        return done

    def _refuse(self, batch: _Batch, row: Row, failed: Sequence[int], first: int) -> None:
        self._invalid.add((batch.part.name, row[: batch.keys]))
        for j, value in enumerate(row[batch.keys :]):
            if value == _NULL or first + j in failed:
                self.result.invalid[batch.part.labels[j]] += 1

    def _count(self, part: Shadowed, done: Sequence[Row]) -> None:
        for j, label in enumerate(part.labels):
            self.result.converted[label] += sum(1 for row in done if row[j] is not None)

    def _audit_head(self) -> tuple[int | None, int | None]:
        """Where the audit log stands: its chain's head and the newest staged entry."""
        with self._db.read() as session:
            return (
                session.scalar(select(func.max(AuditEntryRow.seq))),
                session.scalar(select(func.max(AuditStagedRow.id))),
            )

    def _still_incoming(self, session: Session) -> bool:
        incoming = table.incoming(table.load(session))
        return (
            incoming is not None
            and incoming.epoch == self._epoch
            and _same(incoming.delta, self._delta)
        )

    # -- the switch --

    def switch(self, pool: _Executor, now: dt.datetime, grace: dt.timedelta) -> None:
        """One write transaction: convert what is left, move every shadow into place,
        make the incoming epoch current and the old one previous until now + grace."""
        retire_after = now + grace
        began = time.monotonic()
        with self._db.write(exclusive=True) as session:
            if not self._still_incoming(session):
                self.stopped = self.result.superseded = True  # switched by another run
                return
            for part in PLAN:
                self._finish_part(session, part, pool)
            blocked = {k: v for k, v in self.result.invalid.items() if v}
            if blocked:
                raise RekeyBlocked(
                    "stored values that are not valid elements cannot be rekeyed: "
                    + ", ".join(f"{label}: {n}" for label, n in sorted(blocked.items()))
                    + " (vir db check counts them; remove them, then run again)"
                )
            self.result.swapped = shadows.swap_all(session, self._epoch)
            from_epoch = self.result.from_epoch
            assert from_epoch is not None
            table.switch(session, from_epoch, self._epoch, now, retire_after)
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.KEY_REKEY_SWITCHED,
                    Outcome.SUCCESS,
                    now,
                    actor=ACTOR,
                    objects={
                        "from_epoch": from_epoch,
                        "to_epoch": self._epoch,
                        "retire_after": audit_log.rfc3339(retire_after),
                        "rows": sum(self.result.swapped.values()),
                    },
                ),
            )
        self.result.switched = True
        self.result.retire_after = retire_after
        self.result.switch_seconds = time.monotonic() - began

    def _finish_part(self, session: Session, part: Shadowed, pool: _Executor) -> None:
        """Convert, inside the switch's transaction, every row of ``part`` still without
        shadows (arrived since the last pass): nothing can arrive meanwhile."""
        self._invalid = {k for k in self._invalid if k[0] != part.name}
        for label in part.labels:
            self.result.invalid[label] = 0  # counted again, from what is stored now
        keys = shadows.key_width(session, part)
        after: shadows.Key | None = None
        while True:
            rows = shadows.read_todo(session, part, after, self._batch)
            if not rows:
                return
            after = rows[-1][:keys]
            batch = _pack(part, rows, keys)
            products, failed = pool.submit(arithmetic.multiply, batch.packed).result()
            done = self._converted(batch, products, failed)
            shadows.write_shadows(session, part, done)
            self._count(part, done)
            if len(rows) < self._batch:
                return
