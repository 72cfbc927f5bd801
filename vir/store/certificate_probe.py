"""A certificate's registry row, read in microseconds on SQLite.

Every request reads its certificate's row, so that a revocation holds from the next
request on (``vir.services.identity``). Through a SQLAlchemy session that read costs
about 130 µs, and the hop to a worker thread it needs as much again: more than the rest
of a key holder's request. On SQLite the same primary-key read on a connection of its
own costs about 3 µs, little enough to run on the event loop.

The connection is read-only (``mode=ro``) and never waits: in WAL mode a reader does not
wait for writers, and in the rare case it would (a checkpoint resetting the log, a file
being recovered) the probe answers ``UNKNOWN`` and the caller reads the row the usual
way. Each thread of each process opens its own connection, lazily (a key holder forks
its workers after the app is built). PostgreSQL is a round trip away: there is no probe,
and the row is read in a worker thread with one core statement (``certificate_state``).
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.engine import Engine

from vir.store.db import driver_errors
from vir.store.tables import CertificateRow, utc


@dataclass(frozen=True)
class CertificateState:
    """What a revocation or a re-registration can change in a certificate's row."""

    oin: str
    role: str
    revoked_at: dt.datetime | None


class _Unknown:
    """The probe could not read the row now; read it the usual way."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()

_INHERITED: list[sqlite3.Connection] = []

_STATE = select(CertificateRow.oin, CertificateRow.role, CertificateRow.revoked_at)


def certificate_state(engine: Engine, fingerprint: str) -> CertificateState | None:
    """The row of ``fingerprint``: a connection from the pool and one statement, without
    a session (about a third of a session's cost); on SQLite through SQLAlchemy's core.
    None when there is none.

    On PostgreSQL in autocommit mode, straight to psycopg: one statement needs no
    transaction of its own (psycopg would send BEGIN before it and ROLLBACK when the
    connection goes back to the pool: three round trips for every request instead of
    one), and SQLAlchemy's statement machinery cost more than the read itself (268
    against 99 us of CPU, session 48)."""
    with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            found = connection.execute(
                _STATE.where(CertificateRow.fingerprint == fingerprint)
            ).first()
            return None if found is None else CertificateState(*found)
        connection.execution_options(isolation_level="AUTOCOMMIT")  # reset when handed back
        raw: Any = connection.connection.driver_connection
        with driver_errors(connection, _SELECT_POSTGRESQL):
            row = raw.execute(_SELECT_POSTGRESQL, (fingerprint,)).fetchone()
    if row is None:
        return None
    oin, role, revoked_at = row
    return CertificateState(oin, role, utc(revoked_at))


_SELECT_POSTGRESQL = "SELECT oin, role, revoked_at FROM certificates WHERE fingerprint = %s"


_SELECT = "SELECT oin, role, revoked_at FROM certificates WHERE fingerprint = ?"


class CertificateProbe:
    """Reads one certificate's row without SQLAlchemy (SQLite files only)."""

    def __init__(self, database: Path, engine: Engine) -> None:
        self._uri = f"file:{quote(str(database.absolute()))}?mode=ro"
        # The column's own conversion, so that the probe's revoked_at equals the ORM's.
        column = CertificateRow.__table__.c.revoked_at.type
        convert = column.dialect_impl(engine.dialect).result_processor(engine.dialect, None)
        self._convert: Any = convert or (lambda value: value)
        self._local = threading.local()

    @classmethod
    def of(cls, engine: Engine) -> CertificateProbe | None:
        """A probe for ``engine``'s database when it is a SQLite file, else None."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        return cls(Path(database), engine)

    def state(self, fingerprint: str) -> CertificateState | _Unknown | None:
        """The row of ``fingerprint`` now; None when there is none; ``UNKNOWN`` when the
        database could not be read without waiting."""
        try:
            row = self._connection().execute(_SELECT, (fingerprint,)).fetchone()
        except sqlite3.Error:
            self._close()  # open another next time
            return UNKNOWN
        if row is None:
            return None
        oin, role, revoked_at = row
        if not isinstance(oin, str) or not isinstance(role, str):
            return UNKNOWN
        try:
            revoked = None if revoked_at is None else self._convert(revoked_at)
        except (TypeError, ValueError):
            return UNKNOWN
        return CertificateState(oin, role, revoked)

    def _close(self) -> None:
        connection = self._local.__dict__.pop("connection", None)
        self._local.__dict__.pop("pid", None)
        if connection is not None:
            connection.close()

    def _connection(self) -> sqlite3.Connection:
        local = self._local.__dict__
        if local.get("pid") != os.getpid():  # a forked worker opens its own
            inherited = local.pop("connection", None)
            if inherited is not None:
                # The parent's: never closed here (closing could touch its file locks).
                _INHERITED.append(inherited)
            opened = sqlite3.connect(
                self._uri, uri=True, timeout=0, isolation_level=None, check_same_thread=True
            )
            opened.execute("PRAGMA query_only=ON")
            local["connection"], local["pid"] = opened, os.getpid()
        connection: sqlite3.Connection = local["connection"]
        return connection
