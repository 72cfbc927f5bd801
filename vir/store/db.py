"""The database: engine, read sessions and serialised write transactions.

vir runs one write transaction at a time per database, across threads,
processes and app instances; readers never wait for it. Matching (read a
group's stored match, write the difference), the audit hash chain (read the
head, append head + 1) and the notification cursor (``notifications.seq``
grows in commit order) are correct because of that; docs/concurrency.md says why.

SQLite runs in WAL mode with durable commits (``synchronous=FULL``). Readers
use ordinary deferred transactions. Every write transaction starts with
``BEGIN IMMEDIATE``, so it holds SQLite's write lock from its first statement:
two writers can never both read the audit head or a match and then race.

PostgreSQL (``postgresql+psycopg://``, several app instances on one database):
the first statement of every write transaction takes a transaction-scoped
advisory lock, ``pg_advisory_xact_lock(WRITE_LOCK)``, which the server releases
at commit or rollback. Transactions are READ COMMITTED, where every statement
reads a fresh snapshot, so everything a writer reads after taking the lock
includes all that earlier writers committed; REPEATABLE READ or SERIALIZABLE
would read a snapshot taken before the lock was granted, and must not be used.
Commit order is lock order, and so is the order in which ``seq`` values are
drawn. Readers take no lock and see only committed data.

On both, writers in one process first queue on an in-process lock, so they
wait in line instead of in SQLite's sleep-and-retry busy handler, and so a
process keeps at most one pooled connection waiting for the database's lock.
A writer that waits for the database's lock for 30 seconds gives up with an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from vir.domain.errors import ConfigurationError

_IMMEDIATE = "vir_immediate"
# Key in a write session's info: the callables told of each committed transaction's
# audit events (vir.store.audit_log calls them after commit; vir.api.metrics counts).
COMMIT_OBSERVERS = "vir_commit_observers"
LOCK_WAIT_SECONDS = 30

# The id of vir's one write lock in PostgreSQL's advisory-lock space ("vir-writ" in
# ASCII). Fixed: every instance of every version must take the same lock.
WRITE_LOCK = 0x7669_722D_7772_6974
_TAKE_WRITE_LOCK = text(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://...``.

    ``durable=False`` (tests only) skips fsync on SQLite; a crash may then lose
    recent commits. On PostgreSQL durability is the server's configuration.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return _postgresql_engine(parsed)
    if backend != "sqlite":
        raise ConfigurationError(
            f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://..."
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # pysqlite's own transaction handling is off; transactions begin in _on_begin.
    engine = create_engine(
        parsed,
        connect_args={"isolation_level": None, "timeout": LOCK_WAIT_SECONDS},
        pool_size=20,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgresql_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the driver vir depends on
    if url.get_driver_name() != "psycopg":
        raise ConfigurationError(
            f"vir talks to PostgreSQL through psycopg 3: use postgresql+psycopg://, "
            f"not {url.drivername}://"
        )
    # A lock wait longer than this fails, like SQLite's busy timeout; other options
    # given in the URL are kept.
    options = f"-c lock_timeout={LOCK_WAIT_SECONDS}s {url.query.get('options', '')}".strip()
    # READ COMMITTED is PostgreSQL's default, stated here because the write lock
    # depends on it (see the module docstring).
    return create_engine(
        url.update_query_dict({"options": options}),
        isolation_level="READ COMMITTED",
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
    )


def take_write_lock(connection: Connection) -> None:
    """Make the transaction on ``connection`` the database's only writer until it ends.

    On PostgreSQL it must come before the transaction reads anything (it is the
    first statement in ``Database.write`` and in the migrations). On SQLite it
    does nothing: write transactions hold SQLite's lock from ``BEGIN IMMEDIATE``.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_TAKE_WRITE_LOCK)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        self._reads = sessionmaker(engine, expire_on_commit=False)
        writer = engine if self._postgresql else engine.execution_options(**{_IMMEDIATE: True})
        self._observers: list[Callable[[Sequence[Any]], None]] = []
        self._writes = sessionmaker(
            writer, expire_on_commit=False, info={COMMIT_OBSERVERS: self._observers}
        )
        self._lock = threading.Lock()

    def observe_commits(self, observer: Callable[[Sequence[Any]], None]) -> None:
        """Call ``observer`` with the audit events of every committed write transaction
        (after the commit; it must not raise)."""
        self._observers.append(observer)

    @classmethod
    def connect(cls, url: str, *, durable: bool = True) -> Database:
        return cls(make_engine(url, durable=durable))

    def read(self) -> Session:
        """A session for reading (``with db.read() as session: ...``)."""
        return self._reads()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction, alone on the database: commits on success, rolls back
        on any exception."""
        with self._lock, self._writes.begin() as session:
            if self._postgresql:
                take_write_lock(session.connection())
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
