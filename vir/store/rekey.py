"""The rekey's work on the tables: shadow columns filled batch by batch, then swapped in.

Every pseudonym column (``vir.store.integrity.PSEUDONYM_COLUMNS``) has a shadow
column (``person`` → ``person_next``, ...; migration 0012), NULL except while a
rekey from epoch e to e + 1 runs. The rekey reads rows whose shadow is NULL, has
δ·N computed, and writes it into the shadow; at the end one transaction moves every
shadow into place and makes e + 1 current (``vir.services.rekey``). What the rest of
vir reads and matches on, the live columns, is therefore always of one epoch.

The invariant that makes this safe to stop at any point and run again: **a shadow is
NULL or δ times the live value of its row**. It holds because

- a shadow is only ever written as ``SET shadow = δ·v WHERE <row> AND live = v``: the
  condition is on the very value that was multiplied, so a row that changed between
  the read (outside the write lock) and the write is left alone, and whichever row
  the key finds, what is written is right for it;
- live values change only by insertion (shadow NULL), deletion (the shadow goes with
  the row), or by being cleared (``end_match`` clears the shadow too); and
- nothing multiplies a shadow or writes a live value from one until the swap, which is
  one transaction: before it commits every live value is of epoch e, after it of e + 1.

So a batch computed twice writes the same values again (nothing is multiplied twice:
δ is always applied to the untouched live value), and a row never written keeps a
NULL shadow, which the next pass finds (nothing is skipped). Rows inserted during the
run (registrations, archiving, new matches) arrive with a NULL shadow and are found
by a later pass, or by the final one that runs inside the switch's transaction.

Rows are walked in key order (SQLite's rowid, PostgreSQL's primary key or, for
``signal_parents``, its unique index), so a pass is a keyset scan with flat memory.
No value leaves this module except to be multiplied.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql.psycopg import dialect as postgresql_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vir.domain.errors import Conflict
from vir.store.tables import (
    ArchivedSignalRow,
    ExcludedAddressRow,
    MatchRow,
    SignalParentRow,
    SignalRow,
)

Key = tuple[Any, ...]
# A row to convert as ``read_todo`` gives it: its key (``key_width`` columns), then its
# live values in ``Shadowed.live`` order; plain driver tuples, as there are millions.
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Shadowed:
    """A table's pseudonym columns and their shadows. The first live column is set on
    every row that has anything to convert (a match's key is NULL once it ended)."""

    table: Table
    live: tuple[str, ...]
    shadow: tuple[str, ...]
    # The table's ``epoch`` column, moved on at the swap (signals: the epoch its
    # pseudonyms are in).
    stamps_epoch: bool = False

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def labels(self) -> tuple[str, ...]:
        """``table.column`` of every live column, as ``vir db check`` names them."""
        return tuple(f"{self.table.name}.{c}" for c in self.live)


def _table(row: type[Any]) -> Table:
    return cast(Table, row.__table__)


PLAN: tuple[Shadowed, ...] = (
    Shadowed(_table(SignalRow), ("person", "address"), ("person_next", "address_next"), True),
    Shadowed(_table(SignalParentRow), ("parent",), ("parent_next",)),
    Shadowed(_table(ArchivedSignalRow), ("person",), ("person_next",)),
    Shadowed(_table(ExcludedAddressRow), ("address",), ("address_next",)),
    Shadowed(_table(MatchRow), ("key",), ("key_next",)),
)


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def row_key(table: Table) -> list[ColumnElement[Any]]:
    """What identifies a row of ``table``: its primary key, or where there is none its
    first unique index (``signal_parents``, migration 0024)."""
    if table.primary_key.columns:
        return list(table.primary_key.columns)
    unique = sorted((i for i in table.indexes if i.unique), key=lambda i: str(i.name))
    return list(unique[0].columns)


def _keys(part: Shadowed, postgresql: bool) -> list[ColumnElement[Any]]:
    """SQLite walks rowids (in storage order, no index lookup); PostgreSQL the row key
    (a row's ctid moves with every update)."""
    if not postgresql:
        return [literal_column("rowid")]
    return row_key(part.table)


@dataclass(frozen=True)
class _Statement:
    """A statement compiled to the driver's SQL with positional parameters: ``order``
    says, per parameter, which of the values given it takes (None: its fixed value
    in ``fixed``, such as the OFFSET 0 SQLite renders after a LIMIT)."""

    sql: str
    order: tuple[int | None, ...]
    fixed: tuple[Any, ...]

    @property
    def in_order(self) -> bool:
        """Whether it takes the values as given, in that order."""
        return self.order == tuple(range(len(self.order)))

    def parameters(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.in_order:
            return values
        return tuple(
            values[i] if i is not None else f for i, f in zip(self.order, self.fixed, strict=True)
        )


@dataclass(frozen=True)
class _Statements:
    first: _Statement  # the first batch of rows to do: (limit)
    after: _Statement  # the next batch: (*key, limit)
    write: _Statement  # the shadows of one row: (*shadows, *key, *live values)


@functools.cache
def _statements(part: Shadowed, postgresql: bool) -> _Statements:
    """The batch statements compiled once, run on the driver's cursor: a batch is
    thousands of rows, and SQLAlchemy's per-row parameter handling would cost more
    than the database's own work."""
    t = part.table.c
    keys = _keys(part, postgresql)
    todo = and_(t[part.live[0]].is_not(None), t[part.shadow[0]].is_(None))
    key_names = [f"k{i}" for i in range(len(keys))]
    reading = (
        select(*keys, *(t[c] for c in part.live))
        .select_from(part.table)
        .where(todo)
        .order_by(*keys)
        .limit(bindparam("n", type_=Integer))
    )
    later = tuple_(*keys) > tuple_(*(bindparam(k) for k in key_names))
    # The first live column is set on every row to do; the others may be NULL.
    same = [t[part.live[0]] == bindparam("v0")] + [
        t[c].is_not_distinct_from(bindparam(f"v{i}", type_=t[c].type))
        for i, c in enumerate(part.live)
        if i > 0
    ]
    writing = (
        update(part.table)
        .where(*(k == bindparam(n) for k, n in zip(keys, key_names, strict=True)), *same)
        .values({s: bindparam(f"s{i}", type_=t[s].type) for i, s in enumerate(part.shadow)})
    )
    dialects: dict[bool, Callable[[], Any]] = {
        True: lambda: cast(Any, postgresql_dialect)(paramstyle="format"),
        False: sqlite_dialect,
    }
    dialect = dialects[postgresql]()
    shadows = [f"s{i}" for i in range(len(part.shadow))]
    values = [f"v{i}" for i in range(len(part.live))]
    return _Statements(
        first=_compile(reading, dialect, ["n"]),
        after=_compile(reading.where(later), dialect, [*key_names, "n"]),
        write=_compile(writing, dialect, [*shadows, *key_names, *values]),
    )


def _compile(statement: Any, dialect: Any, names: list[str]) -> _Statement:
    compiled = statement.compile(dialect=dialect)
    positions = list(compiled.positiontup)
    order = tuple(names.index(n) if n in names else None for n in positions)
    fixed = tuple(None if n in names else compiled.binds[n].value for n in positions)
    return _Statement(compiled.string, order, fixed)


def _cursor(session: Session) -> Any:
    """A DB-API cursor inside the session's transaction."""
    return session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def count_rows(session: Session, part: Shadowed) -> int:
    """Rows of ``part`` with something to convert."""
    live = part.table.c[part.live[0]]
    query = select(func.count()).select_from(part.table).where(live.is_not(None))
    return int(session.scalar(query) or 0)


def count_todo(session: Session, part: Shadowed) -> int:
    """Rows of ``part`` whose shadows are still to be written."""
    t = part.table.c
    todo = and_(t[part.live[0]].is_not(None), t[part.shadow[0]].is_(None))
    return int(session.scalar(select(func.count()).select_from(part.table).where(todo)) or 0)


def key_width(session: Session, part: Shadowed) -> int:
    """How many of a ``read_todo`` row's leading columns are its key."""
    return len(_keys(part, _postgresql(session)))


def read_todo(session: Session, part: Shadowed, after: Key | None, limit: int) -> list[Row]:
    """Up to ``limit`` rows after the key ``after`` (None: from the start), in key
    order, whose shadows are still NULL."""
    statements = _statements(part, _postgresql(session))
    cursor = _cursor(session)
    try:
        if after is None:
            cursor.execute(statements.first.sql, statements.first.parameters((limit,)))
        else:
            statement = statements.after
            cursor.execute(statement.sql, statement.parameters((*after, limit)))
        rows: list[Row] = cursor.fetchall()  # both drivers give BLOB/bytea as bytes
    finally:
        cursor.close()
    return rows


def write_shadows(session: Session, part: Shadowed, rows: Sequence[Row]) -> None:
    """Write shadows where a row's live values are still the ones converted (see the
    module docstring). Each of ``rows`` is ``(*shadows, *row)``: the converted values,
    then the row as ``read_todo`` gave it."""
    if not rows:
        return
    statement = _statements(part, _postgresql(session)).write
    cursor = _cursor(session)
    try:
        if statement.in_order:
            cursor.executemany(statement.sql, rows)
        else:
            cursor.executemany(statement.sql, [statement.parameters(row) for row in rows])
    finally:
        cursor.close()


def swap_all(session: Session, to_epoch: int) -> dict[str, int]:
    """Move every shadow into place and clear it, in every table; rows moved per table.
    Only inside the switch's transaction, once every shadow is written.

    This rewrites every index entry on a pseudonym, which is most of the switch's time
    (and the write lock is held meanwhile). On SQLite every index on a pseudonym column
    (``Table.indexes``: plain ones, and the unique ``uq_signals_oin_person`` and
    ``uq_matches_active_key``) is therefore dropped first and built again after, by
    sorting, several times faster than updating it row by row. A unique index built
    again checks its rows as it is built: as δ is a bijection, no two rows can collide
    on good data; if they do, Conflict (naming the index, never a value). What cannot
    be dropped, the primary key of the (small) ``excluded_addresses``, is updated in
    place, with the page cache enlarged for it.
    All of it is transactional: a switch that fails leaves the tables, the shadows and
    the indexes as they were. On PostgreSQL an update adds index entries without
    removing the old ones (MVCC), and dropping an index would lock out readers until
    the switch commits: nothing is done there.
    """
    if _postgresql(session):
        with _refusing_duplicates("the swap"):
            return {part.name: _swap(session, part, to_epoch) for part in PLAN}
    connection = session.connection()
    indexes = [
        index
        for part in PLAN
        for index in part.table.indexes
        if any(c.name in part.live for c in index.columns)
    ]
    cursor = _cursor(session)
    cursor.execute("PRAGMA cache_size")
    (cache,) = cursor.fetchone()
    cursor.execute("PRAGMA secure_delete")
    (secure,) = cursor.fetchone()
    cursor.execute("PRAGMA threads")
    (threads,) = cursor.fetchone()
    try:
        cursor.execute(f"PRAGMA cache_size = {-SWAP_CACHE_KIB:d}")
        # Freed pages are not zeroed one by one (a write of every page of every index
        # dropped): the new indexes take most of them again, and what they leave is
        # zeroed after.
        cursor.execute("PRAGMA secure_delete = FAST")
        for index in indexes:
            index.drop(connection)
        with _refusing_duplicates("the swap"):
            moved = {part.name: _swap(session, part, to_epoch) for part in PLAN}
        # Each index is built by sorting its entries. With a cache of BUILD_CACHE_KIB,
        # the sorter sorts runs of that size on worker threads, one per core, and merges
        # them; with the large cache it sorted everything in one run on one thread.
        cursor.execute(f"PRAGMA cache_size = {-BUILD_CACHE_KIB:d}")
        cursor.execute(f"PRAGMA threads = {min(os.cpu_count() or 1, MAX_SORT_THREADS):d}")
        for index in indexes:
            with _refusing_duplicates(f"building the index {index.name} again"):
                index.create(connection)
        cursor.execute("PRAGMA secure_delete = ON")
        _zero_free_pages(cursor)
    finally:
        cursor.execute(f"PRAGMA threads = {int(threads):d}")
        cursor.execute(f"PRAGMA secure_delete = {int(secure):d}")
        cursor.execute(f"PRAGMA cache_size = {int(cache):d}")
        cursor.close()
    return moved


def _zero_free_pages(cursor: Any) -> None:
    """Overwrite with zeros every free page of the SQLite file (pages of the old indexes
    that the new ones did not take again hold old pseudonyms): a blob as large as the
    free pages takes them (and zeros them), and dropping its table, with secure_delete
    on, frees them zeroed. Inside the caller's transaction."""
    cursor.execute("PRAGMA freelist_count")
    (free,) = cursor.fetchone()
    if not free:
        return
    cursor.execute("PRAGMA page_size")
    (page,) = cursor.fetchone()
    cursor.execute("CREATE TABLE rekey_zeroed_pages (b BLOB)")
    # An overflow page holds page - 4 bytes of a blob; the table's own page and the
    # freelist's trunk pages are among the free ones too. In blobs of at most
    # ZERO_BLOB_BYTES (SQLite refuses one over SQLITE_MAX_LENGTH, 1e9 by default).
    left = free * (page - 4)
    while left > 0:
        size = min(left, ZERO_BLOB_BYTES)
        cursor.execute("INSERT INTO rekey_zeroed_pages VALUES (zeroblob(?))", (size,))
        left -= size
    cursor.execute("DROP TABLE rekey_zeroed_pages")


ZERO_BLOB_BYTES = 64 * 2**20


@contextmanager
def _refusing_duplicates(step: str) -> Iterator[None]:
    """An IntegrityError in ``step`` (two rows with the same value where a unique index
    or key forbids it) as a Conflict; on a sound database it cannot happen, as δ is a
    bijection and each shadow is δ times its own row's value. The driver's message is
    not kept: PostgreSQL's names the duplicate values, pseudonyms."""
    try:
        yield
    except IntegrityError:
        raise Conflict(
            f"the rekey's switch stopped: {step} found two rows with the same value "
            "where a unique index or key forbids it, which δ·N cannot make from distinct "
            "stored values (a shadow column holds a wrong value). Nothing is switched: "
            "the switch's transaction is rolled back, and the current epoch, the stored "
            "pseudonyms and their shadows stay as they were."
        ) from None


# SQLite's page cache while the switch moves the pseudonyms (and updates the primary
# key of ``excluded_addresses`` in place, in random order, where a miss costs a read).
# Released when it ends.
SWAP_CACHE_KIB = 128 * 1024
# The page cache while the indexes are built again, which is also the size of the runs
# SQLite's sorter sorts on its worker threads (at most MAX_SORT_THREADS: SQLite's own
# limit is 8). At a million signals, 2 threads and 16 MiB built the three large indexes
# in 6.3-7.4 s where one thread and the 128 MiB cache took 8.0-9.6 s (docs/benchmarks.md).
BUILD_CACHE_KIB = 16 * 1024
MAX_SORT_THREADS = 8


def _swap(session: Session, part: Shadowed, to_epoch: int) -> int:
    t = part.table.c
    moved: dict[str, Any] = {
        live: t[shadow] for live, shadow in zip(part.live, part.shadow, strict=True)
    }
    moved |= {shadow: None for shadow in part.shadow}
    if part.stamps_epoch:
        moved["epoch"] = to_epoch
    # OR FAIL: a constraint it broke (a NOT NULL live column from a missing shadow)
    # stops it without undoing its own rows, so SQLite keeps no statement journal, a
    # copy of every page it changes (nearly all of the table); the switch's transaction
    # is rolled back whole on the error anyway.
    statement = (
        update(part.table)
        .values(moved)
        .where(t[part.live[0]].is_not(None))
        .prefix_with("OR FAIL", dialect="sqlite")
    )
    result = session.execute(statement)
    # A row without a live value has no shadow (end_match clears both); cleared anyway.
    session.execute(
        update(part.table)
        .where(t[part.live[0]].is_(None), t[part.shadow[0]].is_not(None))
        .values({shadow: None for shadow in part.shadow})
    )
    return int(getattr(result, "rowcount", 0) or 0)


def clear_shadows(session: Session) -> None:
    """Empty every shadow column: a new rekey starts from nothing."""
    for part in PLAN:
        t = part.table.c
        session.execute(
            update(part.table)
            .where(t[part.shadow[0]].is_not(None))
            .values({shadow: None for shadow in part.shadow})
        )
