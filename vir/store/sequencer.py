"""The integrator: staged audit events into the hash chain, notifications numbered.

Writers run in parallel (docs/concurrency.md), so neither the audit chain's ``seq``
nor a notification's position can be drawn by a writer: two writers would chain
onto the same head, and a position drawn by a transaction that commits late could
be passed by a cursor. Writers stage instead, and one integrator at a time, in
its own short transaction, takes what is committed:

- audit events from ``audit_staged`` in id order: it gives each the next ``seq``,
  chains and hashes it onto the head, writes it and its ``audit_refs`` rows, and
  deletes it from the staging table, all in one transaction, so an event is
  either staged or in the chain, never both and never neither;
- notifications without a position, in ``seq`` order: each gets the next position
  among its organisation's own (``notification_counters``). Readers see numbered
  notifications only, and positions are given in the integrator's commits, so
  once a reader sees position n, every position below n is visible too.

One integrator at a time: on PostgreSQL a transaction-scoped advisory lock
(``INTEGRATOR_LOCK``) elects the one that runs; the others skip (``wait=False``,
the background loop) or wait for it (``wait=True``: a reader that needs the whole
log, such as a checkpoint or an access request). On SQLite every write transaction
is alone anyway. An event that commits while a batch runs is simply in the next.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)

from vir.audit.chain import GENESIS, chain_hash
from vir.store.tables import (
    AuditEntryRow,
    AuditRefRow,
    AuditStagedRow,
    NotificationCounterRow,
    NotificationRow,
)

# "vir-intg" in ASCII: the integrator's lock in PostgreSQL's advisory-lock space.
INTEGRATOR_LOCK = 0x7669_722D_696E_7467
_LOCK = text(f"SELECT pg_advisory_xact_lock({INTEGRATOR_LOCK})")
_TRY_LOCK = text(f"SELECT pg_try_advisory_xact_lock({INTEGRATOR_LOCK})")
# Rows per statement, and batches per transaction: a busy log is integrated in
# transactions of bounded size, each committing what it moved.
BATCH = 5000
MAX_BATCHES = 20
# SQLite's page cache while integrating (KiB): what a transaction of MAX_BATCHES
# batches touches of the indexes, instead of SQLite's default 2 MiB.
_SQLITE_CACHE_KIB = 32 * 1024

_STAGED = cast(Table, AuditStagedRow.__table__)
_ENTRIES = cast(Table, AuditEntryRow.__table__)
_REFS = cast(Table, AuditRefRow.__table__)
_NOTIFICATIONS = cast(Table, NotificationRow.__table__)
_COUNTERS = cast(Table, NotificationCounterRow.__table__)

_HEAD = select(_ENTRIES.c.seq, _ENTRIES.c.entry_hash).order_by(_ENTRIES.c.seq.desc()).limit(1)

# The audit events move through the database driver itself, rows as plain tuples:
# through SQLAlchemy's statement and type machinery a row cost several times what the
# database spends on it, and the integrator moves hundreds of thousands of entries
# after a lifecycle run.

# A staged event as taken: (id, event_id, occurred_at, organisation, action, outcome,
# body, refs, staged_at); an entry as written: (seq, event_id, occurred_at,
# organisation, action, outcome, body, prev_hash, entry_hash).
_ID, _BODY, _REF_LIST, _STAGED_AT = 0, 6, 7, 8

# SQLite: the oldest staged events, then their rows deleted by id range. The
# integrator's transaction holds SQLite's write lock (BEGIN IMMEDIATE), so nothing can
# be staged behind its back: every staged id in the range is one it took. The deleted
# rows are counted anyway.
_SQLITE_TAKE = (
    "SELECT id, event_id, occurred_at, organisation, action, outcome, body, refs, staged_at"
    " FROM audit_staged ORDER BY id LIMIT ?"
)
_SQLITE_UNSTAGE = "DELETE FROM audit_staged WHERE id BETWEEN ? AND ?"
_SQLITE_ENTRIES = (
    "INSERT INTO audit_entries (seq, event_id, occurred_at, organisation, action, outcome,"
    " body, prev_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_REFS = "INSERT INTO audit_refs (ref, seq) VALUES (?, ?)"
# PostgreSQL: writers stage while the integrator runs, and an id drawn before another
# may commit after it, so a range read in one statement and deleted in the next could
# delete an event committed in between, never integrated. One statement takes the
# oldest staged events and returns exactly the rows it deleted: those its snapshot
# sees; an event committed meanwhile stays staged for the next batch. (A range, not
# ``id IN (...)``: on a large backlog PostgreSQL would plan that as a scan of the table.)
# RETURNING gives no order: the rows are sorted here.
_POSTGRESQL_TAKE = (
    "DELETE FROM audit_staged WHERE id <="
    " (SELECT max(id) FROM (SELECT id FROM audit_staged ORDER BY id LIMIT %s) AS batch)"
    " RETURNING id, event_id, occurred_at, organisation, action, outcome, body, refs, staged_at"
)


@dataclass(frozen=True, slots=True)
class _Copy:
    """``COPY`` into a table in PostgreSQL's binary format, the fastest way in. It needs
    every column's type: taken from the table's definition."""

    statement: str
    types: tuple[str, ...]

    @classmethod
    def into(cls, table: Table, *columns: str) -> _Copy:
        statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        return cls(statement, tuple(_postgresql_type(table.c[name].type) for name in columns))

    def write(self, cursor: Any, rows: Sequence[tuple[object, ...]]) -> None:
        with cursor.copy(self.statement) as copy:
            copy.set_types(self.types)
            for row in rows:
                copy.write_row(row)


def _postgresql_type(kind: object) -> str:
    for general, name in (
        (BigInteger, "int8"),
        (Integer, "int4"),
        (LargeBinary, "bytea"),
        (Text, "text"),
        (String, "varchar"),
        (Float, "float8"),
    ):
        if isinstance(kind, general):
            return name
    raise TypeError(f"no PostgreSQL type known for {kind!r}")


_COPY_ENTRIES = _Copy.into(
    _ENTRIES,
    *("seq", "event_id", "occurred_at", "organisation", "action", "outcome", "body"),
    *("prev_hash", "entry_hash"),
)
_COPY_REFS = _Copy.into(_REFS, "ref", "seq")

# SKIP LOCKED (PostgreSQL; SQLite has one writer and no row locks): a notification a
# writer is deleting right now (retention) is left for the next integration instead of
# waited for, so the integrator never waits for a writer's row lock and the two can
# never deadlock (a writer deleting several notifications in another order than the
# integrator numbering them would otherwise be aborted by PostgreSQL).
_UNNUMBERED = (
    select(_NOTIFICATIONS.c.seq, _NOTIFICATIONS.c.oin)
    .where(_NOTIFICATIONS.c.position.is_(None))
    .order_by(_NOTIFICATIONS.c.seq)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True)
)
_COUNTERS_OF = select(_COUNTERS.c.oin, _COUNTERS.c.last).where(
    _COUNTERS.c.oin.in_(bindparam("oins", expanding=True))
)
_ADVANCE = (
    update(_COUNTERS).where(_COUNTERS.c.oin == bindparam("b_oin")).values(last=bindparam("b_last"))
)
_NUMBER = (
    update(_NOTIFICATIONS)
    .where(_NOTIFICATIONS.c.seq == bindparam("b_seq"))
    .values(position=bindparam("b_position"))
)


@dataclass(slots=True)
class Integrated:
    """What one integration did: entries chained, notifications numbered, and for each
    entry the seconds from staging to integration."""

    entries: int = 0
    notifications: int = 0
    delays: list[float] = field(default_factory=list)


def integrate(connection: Connection, *, wait: bool = True) -> Integrated | None:
    """Integrate what is staged, in the transaction on ``connection`` (the caller commits).

    Takes the integrator's lock for the rest of that transaction; with ``wait=False``
    returns None at once when another integrator holds it. On SQLite the transaction
    must hold the write lock (``Database.write``).
    """
    if connection.dialect.name == "postgresql":
        if wait:
            connection.execute(_LOCK)
        elif not connection.execute(_TRY_LOCK).scalar():
            return None
    done = Integrated()
    _chain(connection, done)
    _number(connection, done)
    return done


def _chain(connection: Connection, done: Integrated) -> None:
    head = connection.execute(_HEAD).first()
    seq, previous = (int(head[0]), bytes(head[1])) if head else (0, GENESIS)
    postgresql = connection.dialect.name == "postgresql"
    cursor = connection.connection.cursor()  # the driver's, in the same transaction
    cache = None
    if not postgresql:
        # A batch touches pages all over the staging table's and the log's indexes
        # (event ids are random): with SQLite's default cache (2 MiB) most of them are
        # read back in again and again. Restored afterwards: the connection is pooled.
        cache = cursor.execute("PRAGMA cache_size").fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = {-_SQLITE_CACHE_KIB}")
    try:
        for _ in range(MAX_BATCHES):
            staged = _take(cursor, postgresql, BATCH)
            if not staged:
                return
            now = time.time()
            entries = []
            refs = []
            for row in staged:
                seq += 1
                body = row[_BODY]
                digest = chain_hash(previous, body)
                entries.append((seq, *row[1:_BODY], body, previous, digest))
                previous = digest
                refs += [(ref, seq) for ref in row[_REF_LIST].split()]
            done.delays += [max(0.0, now - row[_STAGED_AT]) for row in staged]
            # In index order: the index pages fill one after the other instead of at random.
            refs.sort()
            _write(cursor, postgresql, entries, refs)
            done.entries += len(entries)
            if len(staged) < BATCH:
                return
    finally:
        if cache is not None:
            cursor.execute(f"PRAGMA cache_size = {int(cache)}")
        cursor.close()


def _take(cursor: Any, postgresql: bool, limit: int) -> list[tuple[Any, ...]]:
    """The oldest ``limit`` staged events, in id order, deleted from the staging table."""
    if postgresql:
        cursor.execute(_POSTGRESQL_TAKE, (limit,))
        return sorted(cursor.fetchall(), key=itemgetter(_ID))
    cursor.execute(_SQLITE_TAKE, (limit,))
    staged = list(cursor.fetchall())
    if staged:
        first, last = staged[0][_ID], staged[-1][_ID]
        cursor.execute(_SQLITE_UNSTAGE, (first, last))
        if cursor.rowcount != len(staged):  # cannot happen under the write lock
            raise RuntimeError(f"staged ids {first}..{last} changed while integrating")
    return staged


def _write(
    cursor: Any,
    postgresql: bool,
    entries: Sequence[tuple[object, ...]],
    refs: Sequence[tuple[str, int]],
) -> None:
    """Insert one batch's entries into the chain, and their ``audit_refs`` rows."""
    if postgresql:
        _COPY_ENTRIES.write(cursor, entries)
        if refs:
            _COPY_REFS.write(cursor, refs)
    else:
        cursor.executemany(_SQLITE_ENTRIES, entries)
        if refs:
            cursor.executemany(_SQLITE_REFS, refs)


def _number(connection: Connection, done: Integrated) -> None:
    for _ in range(MAX_BATCHES):
        unnumbered = connection.execute(_UNNUMBERED, {"batch": BATCH}).all()
        if not unnumbered:
            return
        counts = Counter(oin for _seq, oin in unnumbered)
        last = dict(connection.execute(_COUNTERS_OF, {"oins": sorted(counts)}).all())
        new = [{"oin": oin, "last": 0} for oin in sorted(counts) if oin not in last]
        if new:
            connection.execute(insert(_COUNTERS), new)
        drawn = {oin: int(last.get(oin, 0)) for oin in counts}
        numbered = []
        for seq, oin in unnumbered:
            drawn[oin] += 1
            numbered.append({"b_seq": seq, "b_position": drawn[oin]})
        connection.execute(_NUMBER, numbered)
        connection.execute(
            _ADVANCE, [{"b_oin": oin, "b_last": drawn[oin]} for oin in sorted(drawn)]
        )
        done.notifications += len(numbered)
        if len(unnumbered) < BATCH:
            return


def pending(connection: Connection) -> tuple[int, int]:
    """Staged audit events and unnumbered notifications now (for metrics and verify)."""
    events = connection.execute(select(func.count()).select_from(_STAGED)).scalar_one()
    notifications = connection.execute(
        select(func.count()).select_from(_NOTIFICATIONS).where(_NOTIFICATIONS.c.position.is_(None))
    ).scalar_one()
    return int(events), int(notifications)
