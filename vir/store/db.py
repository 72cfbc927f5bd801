"""The database: engine, read sessions and serialised write transactions.

SQLite runs in WAL mode with durable commits (``synchronous=FULL``). Readers
use ordinary deferred transactions and never block writers. Every write
transaction starts with ``BEGIN IMMEDIATE``, so it holds SQLite's write lock
from its first statement: two writers can never both read the audit head or a
match and then race. Within one process, writers also queue on a lock before
they begin, so they wait in line instead of in SQLite's sleep-and-retry busy
handler; across processes the busy timeout still applies.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

_IMMEDIATE = "vir_immediate"


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """``durable=False`` (tests only) skips fsync; a crash may then lose recent commits."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # pysqlite's own transaction handling is off; transactions begin in _on_begin.
    engine = create_engine(
        url, connect_args={"isolation_level": None, "timeout": 30}, pool_size=20, max_overflow=20
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._reads = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(
            engine.execution_options(**{_IMMEDIATE: True}), expire_on_commit=False
        )
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, url: str, *, durable: bool = True) -> Database:
        return cls(make_engine(url, durable=durable))

    def read(self) -> Session:
        """A session for reading (``with db.read() as session: ...``)."""
        return self._reads()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on any exception."""
        with self._lock if self._sqlite else nullcontext(), self._writes.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
