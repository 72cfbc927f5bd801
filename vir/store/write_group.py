"""What a write group (``vir.store.db``, "Group commit") shares with the store's modules.

A module that keeps state across the writers of one group (the audit log's chain
head and unwritten rows, the rate-limit buckets) finds the group in a writer's
``session.info[GROUP]``, and gives ``Database`` a ``WriterHooks`` to be told when a
writer's savepoint committed or rolled back. ``Database`` registers those hooks
when it is made; importing a module registers nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

# Key in a write session's info: the WriteGroup it runs in.
GROUP = "vir_write_group"


@dataclass(frozen=True, slots=True)
class FirstRead:
    """A read a PostgreSQL writer sends in the message that begins its transaction,
    after BEGIN and the write lock: one round trip for all of them instead of one each
    (``Database.write(first=...)``; on SQLite, where a statement costs no round trip,
    nothing is read ahead). Its answer stands for the whole transaction, so only for
    what nothing can change meanwhile: a table changed only under the write lock taken
    exclusively (the key epochs), or rows the read itself locks (``FOR SHARE``).

    ``sql``: one statement, ``{}`` where each of ``values`` goes, quoted by psycopg as a
    literal (a message of several statements takes no parameters)."""

    sql: str
    values: tuple[str, ...] = ()


def first_read(session: Session, read: FirstRead) -> list[tuple[Any, ...]] | None:
    """The rows ``read`` found when the writer's transaction began (text values as
    psycopg loads them, not through SQLAlchemy's column types); None when it was not
    read ahead, and the caller reads it itself."""
    group = session.info.get(GROUP)
    return None if group is None else group.first_reads.get(read)


class WriteGroup:
    """One database transaction shared by consecutive writers, committed once.

    ``shared`` holds state a module keeps across the group's writers, and
    ``before_commit`` the callables that write it out, on the group's connection,
    just before the commit (``vir.store.audit_log`` buffers the chain there).
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.opened = time.monotonic()
        self.members = 0
        self.shared: dict[str, Any] = {}
        self.before_commit: list[Callable[[Connection], None]] = []
        # Run after ``before_commit``, as the last statements before the commit: writes
        # that lock a row other transactions wait for (a shared rate-limit bucket), so
        # that the lock is held for as short a time as possible.
        self.last_before_commit: list[Callable[[Connection], None]] = []
        self.first_reads: dict[FirstRead, list[tuple[Any, ...]]] = {}
        self.events: list[Any] = []  # the audit events of members whose savepoint committed
        self.committed = threading.Event()
        self.failure: BaseException | None = None
        self.gated = False  # holds the writers' gate across processes (SQLite)


@dataclass(frozen=True, slots=True)
class WriterHooks:
    """Called with a writer's session once its block succeeded (its savepoint, if it sent
    any statement, released: ``committed``) or failed (rolled back: ``rolled_back``)."""

    committed: Callable[[Session], None]
    rolled_back: Callable[[Session], None]


_BEFORE_COMMIT = "vir_before_commit"


def before_commit(session: Session, write_out: Callable[[Connection], None]) -> None:
    """Run ``write_out(connection)`` just before the writer's transaction commits, if
    the writer's block succeeds; nothing of it when the block fails. On PostgreSQL it
    runs in the one round trip of everything written out then (``vir.store.db``), so it
    must talk to psycopg itself; nothing in the transaction may read what it writes."""
    if GROUP not in session.info:
        raise RuntimeError("write-outs are registered inside Database.write()")
    session.info.setdefault(_BEFORE_COMMIT, []).append(write_out)


def _hand_to_group(session: Session) -> None:
    group: WriteGroup = session.info[GROUP]
    group.before_commit.extend(session.info.pop(_BEFORE_COMMIT, ()))


def _drop(session: Session) -> None:
    session.info.pop(_BEFORE_COMMIT, None)


# Registered by every Database (``vir.store.db.STORE_HOOKS``).
BEFORE_COMMIT_HOOKS = WriterHooks(committed=_hand_to_group, rolled_back=_drop)
