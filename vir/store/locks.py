"""Transaction-scoped locks on what a write touches, taken in one global order.

A write that reads something to decide what to write (matching reads a group and
stores the difference; a registration checks that its ``local_ref`` and its young
person are free) locks what it read first, so that a writer touching the same
thing waits and one touching something else does not (docs/concurrency.md).

Every lock has a kind and a name. Its id is the first 8 bytes of
SHA-256(kind, name), a signed 64-bit PostgreSQL advisory-lock key, so no
pseudonym reaches the lock table (``pg_locks`` shows the hash only). Two names
whose ids collide share a lock: they wait for each other, nothing worse.

No deadlock: locks are taken in one global order, by kind (``Kind``: organisation
names first, then young persons, parents, addresses) and then by id. A
transaction may lock in several rounds (a withdrawal reads its signal's person,
then the groups the person's parents make), but each round may only add locks
ordered after every lock it already holds; ``take`` raises ``LockOrderViolation``
otherwise, on SQLite as on PostgreSQL, so a test catches the mistake.

On PostgreSQL a lock is ``pg_advisory_xact_lock``: the server queues the waiters
and releases it at commit or rollback, also when the client dies. On SQLite
every write transaction already holds the database's single write lock
(``BEGIN IMMEDIATE``), so a lock here only checks the order.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from vir.domain.matching import GroupKey, Via
from vir.store.db import driver_errors


class Kind(enum.IntEnum):
    """Lock kinds in the order in which a transaction must take them."""

    NAME = 0  # an organisation's own name for something: a local_ref, a bucket, a minute
    PERSON = 1
    PARENT = 2
    ADDRESS = 3


_OF_VIA = {Via.PERSON: Kind.PERSON, Via.PARENT: Kind.PARENT, Via.ADDRESS: Kind.ADDRESS}


# SHA-256 of each kind's name, to go on from: a lock's id hashes the kind, then the name.
_HASHED_KIND = {kind: hashlib.sha256(kind.name.encode()) for kind in Kind}


class Lock(NamedTuple):
    """A lock of ``kind`` on the name hashed to ``id``; locks order by kind, then id (a
    tuple's order: compared, hashed and sorted without Python code, as a write sorts
    and checks every lock it takes)."""

    kind: Kind
    id: int

    @classmethod
    def of(cls, kind: Kind, *name: str | bytes) -> Lock:
        digest = _HASHED_KIND[kind].copy()
        for part in name:
            raw = part.encode() if isinstance(part, str) else part
            digest.update(len(raw).to_bytes(4, "big") + raw)
        return cls(kind, int.from_bytes(digest.digest()[:8], "big", signed=True))

    @classmethod
    def named(cls, *name: str) -> Lock:
        """A lock on a name (an organisation's local_ref, a rate-limit bucket, ...)."""
        return cls.of(Kind.NAME, *name)

    @classmethod
    def group(cls, key: GroupKey) -> Lock:
        """The lock on a matching group: a young person, a parent, an address."""
        return cls.of(_OF_VIA[key.via], key.key)

    @classmethod
    def person(cls, person: bytes) -> Lock:
        return cls.group(GroupKey(Via.PERSON, person))

    def __repr__(self) -> str:  # the id is a hash of a pseudonym at most; still not shown
        return f"Lock({self.kind.name})"


class LockOrderViolation(RuntimeError):
    """A transaction asked for a lock ordered before one it holds: a programming error
    that could deadlock two writers; nothing is locked."""


_HELD = "vir_locks_held"
_TAKE = "SELECT pg_advisory_xact_lock(k) FROM unnest(%(keys)s::bigint[]) AS k"


class Then(NamedTuple):
    """A read to send with a round of locks (``take``): PostgreSQL's SQL, with psycopg's
    ``%(name)s`` placeholders, and its parameters."""

    sql: str
    params: Mapping[str, Any]


def take(
    session: Session, locks: Iterable[Lock], *, then: Then | None = None
) -> list[tuple[Any, ...]] | None:
    """Lock ``locks`` for the rest of the caller's write transaction, in order.

    Locks already held are skipped; every new one must be ordered after the last one
    held. Call it before reading what the locks protect: on PostgreSQL (READ
    COMMITTED) every statement after it sees what earlier holders committed.

    ``then``: on PostgreSQL, a read to send in the same round trip, as the statement
    after the locks (psycopg's pipeline mode: each statement its own snapshot, taken
    when the locks before it are held); its rows. None on SQLite, where the caller
    reads as usual (no round trip to save).
    """
    held: set[Lock] = session.info.setdefault(_HELD, set())
    new = sorted(set(locks) - held)
    if held and new and new[0] < max(held):
        raise LockOrderViolation(
            f"a {new[0].kind.name} lock after a {max(held).kind.name} lock: "
            "take every lock of a transaction in one round, or in rounds of later kinds"
        )
    found = None
    if session.get_bind().dialect.name == "postgresql":
        keys = [lock.id for lock in new]
        statements = [Then(_TAKE, {"keys": keys})] if keys else []
        if then is not None:
            statements.append(then)
        if statements:
            answers = together(session.connection(), statements)
            found = answers[-1] if then is not None else None
    held.update(new)
    return found


def together(
    connection: Connection, statements: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """Run ``statements`` (psycopg placeholders) in order in the transaction on
    ``connection`` (PostgreSQL), in one round trip; the rows of each. A failing one
    fails the transaction (psycopg aborts the rest of the pipeline)."""
    raw: Any = connection.connection.driver_connection
    with driver_errors(connection, "; ".join(sql for sql, _params in statements)):
        with raw.pipeline():
            cursors = [raw.execute(sql, params) for sql, params in statements]
        return [cursor.fetchall() for cursor in cursors]


def holds(session: Session, lock: Lock) -> bool:
    return lock in session.info.get(_HELD, ())
