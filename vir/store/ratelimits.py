"""Rate-limit buckets in the database, shared by every app instance on it.

One token bucket per (kind, organisation) in ``rate_limits`` (the arithmetic is
``vir.domain.ratelimit``). A bucket is read and updated inside the write transaction
of the action it limits (``Database.write``), and costs no commit of its own. A
refused action raises ``RateLimited`` inside that transaction, which then stores
nothing of it. On SQLite writers take turns, so the read-modify-write cannot race.
On PostgreSQL writers run side by side: the bucket read at the take only refuses
early; as the last statement before the commit, the database refills the row as it
is then and takes the transaction's tokens from it in one statement, locking it to the
commit (``_GroupBuckets._settle``), so the limit holds across instances and writers of
one organisation wait for each other's commit only, not for each other's work.

Like the audit log, a write group (``vir.store.db``, "Group commit") carries the
buckets its writers changed and writes them in one statement per bucket just before
the group commits; a writer that rolls back leaves the group's buckets as they were.
A bucket is read from the table once per group.

Bucket time is the service clock (seconds since the epoch): the instances' clocks
are assumed synchronised (NTP); a clock behind the stored time refills nothing.

Each instance also remembers the last state it saw of every bucket, refilled to that
moment and before its own take. Other instances only take tokens from a bucket, so
that state refilled to now is an upper bound on the bucket: when even the upper bound
cannot pay, ``precheck`` refuses without touching the database (and before any work,
such as an OPRF evaluation). When it might pay, the database decides.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Float, Table, bindparam, func, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from vir.domain.errors import RateLimited
from vir.domain.ratelimit import Bucket, Limit, LimitKind, take
from vir.store.tables import RateLimitRow
from vir.store.write_group import GROUP, WriteGroup, WriterHooks

_Key = tuple[str, str]  # (kind, oin)
_TABLE = cast(Table, RateLimitRow.__table__)
_PENDING_KEY = "vir_ratelimits_pending"  # session.info: this writer's buckets, not committed
_TAKES_KEY = "vir_ratelimits_takes"  # session.info: this writer's takes, in order


@dataclass(slots=True)
class _Stored:
    bucket: Bucket | None  # as the group now has it (None: no row, a full bucket)
    exists: bool  # whether the table has a row for it
    dirty: bool = False  # changed by a committed writer of the group, not written yet
    # The takes of the group's committed writers: (limit, cost, seconds), replayed on
    # the row as it is at commit on PostgreSQL, where other writers run meanwhile.
    takes: list[tuple[Limit, float, float]] = field(default_factory=list)


class _GroupBuckets:
    """The buckets a write group has read or changed, written out before it commits."""

    def __init__(self) -> None:
        self.buckets: dict[_Key, _Stored] = {}

    def write(self, connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            self._settle(connection)
            return
        updates: list[dict[str, object]] = []
        inserts: list[dict[str, object]] = []
        for (kind, oin), stored in self.buckets.items():
            if not stored.dirty or stored.bucket is None:
                continue
            values = {
                "b_kind": kind,
                "b_oin": oin,
                "tokens": stored.bucket.tokens,
                "updated_at": _moment(stored.bucket.updated),
            }
            (updates if stored.exists else inserts).append(values)
            stored.exists, stored.dirty = True, False
        if updates:
            connection.execute(_UPDATE, updates)
        if inserts:
            connection.execute(_INSERT, inserts)

    def _settle(self, connection: Connection) -> None:
        """PostgreSQL: other writers take from the same buckets meanwhile. As the last
        statements before the commit, each bucket pays this transaction's takes as it
        is now, refilled and checked by the database in one statement (``_PAY``), which
        locks its row to the commit: one round trip, so the lock is held for the
        commit alone, not while this process gets back to it. When the bucket can no
        longer pay, ``RateLimited`` is raised and nothing of the transaction is stored.

        Takes at the same moment of the same limit are paid at once (granted together
        exactly when each would be in turn, as refilling to the same moment twice adds
        nothing); the others one statement each. Straight to psycopg: it runs in the
        pipeline of the writes before the commit (``vir.store.db``), where SQLAlchemy
        would read no answer."""
        raw: Any = connection.connection.driver_connection
        for (kind, oin), stored in sorted(self.buckets.items()):
            paid: Bucket | None = None
            for limit, cost, seconds in _merged(stored.takes):
                params = {
                    "b_kind": kind,
                    "b_oin": oin,
                    "rate": limit.rate,
                    "burst": limit.burst,
                    "cost": cost,
                    "now": seconds,
                }
                row = _execute(raw, _PAY, params)
                if row is None:
                    now = _execute(raw, _SELECT, {"kind": kind, "oin": oin})
                    current = Bucket(float(now[0]), _seconds(now[1])) if now else None
                    _after, wait = take(current, limit, cost, seconds)
                    raise RateLimited(max(1, wait))
                paid = Bucket(float(row[0]), float(row[1]))
            if paid is not None:
                stored.bucket, stored.exists, stored.dirty, stored.takes = paid, True, False, []


def _merged(takes: list[tuple[Limit, float, float]]) -> list[tuple[Limit, float, float]]:
    """Consecutive takes of one limit at one moment, as one take of their total cost."""
    merged: list[tuple[Limit, float, float]] = []
    for limit, cost, seconds in takes:
        if merged and merged[-1][0] == limit and merged[-1][2] == seconds:
            merged[-1] = (limit, merged[-1][1] + cost, seconds)
        else:
            merged.append((limit, cost, seconds))
    return merged


# A bucket pays ``cost`` at ``now`` (seconds): refilled at ``rate`` up to ``burst`` for
# the time since it was updated (a clock behind it refills nothing), as
# vir.domain.ratelimit.take does, and only when it then holds ``cost``; no row is a
# full bucket. No row comes back when it cannot pay.
_NOW = bindparam("now", type_=Float)
_RATE, _BURST, _COST = (bindparam(name, type_=Float) for name in ("rate", "burst", "cost"))
_UPDATED = sql_cast(func.extract("epoch", _TABLE.c.updated_at), Float)
_REFILLED = func.least(_BURST, _TABLE.c.tokens + func.greatest(0.0, _NOW - _UPDATED) * _RATE)
_PAY = (
    postgresql.insert(_TABLE)
    .values(
        kind=bindparam("b_kind"),
        oin=bindparam("b_oin"),
        tokens=_BURST - _COST,
        updated_at=func.to_timestamp(_NOW),
    )
    .on_conflict_do_update(
        index_elements=[_TABLE.c.kind, _TABLE.c.oin],
        set_={
            "tokens": _REFILLED - _COST,
            "updated_at": func.greatest(func.to_timestamp(_NOW), _TABLE.c.updated_at),
        },
        where=_REFILLED >= _COST,
    )
    .returning(_TABLE.c.tokens, _UPDATED)
)


@functools.cache
def _postgresql(statement: Any) -> tuple[str, Mapping[str, Any]]:
    """``statement`` compiled once for psycopg (``%(name)s`` placeholders), and the
    values of the parameters it holds itself (its literals)."""
    from sqlalchemy.dialects.postgresql import psycopg

    compiled = statement.compile(dialect=psycopg.dialect())  # type: ignore[no-untyped-call]
    return str(compiled), {k: v for k, v in compiled.params.items() if v is not None}


def _execute(raw: Any, statement: Any, params: Mapping[str, Any]) -> Any:
    """The first row ``statement`` returns, run through psycopg's connection ``raw``."""
    sql, own = _postgresql(statement)
    return raw.execute(sql, {**own, **params}).fetchone()


def _group_buckets(session: Session) -> _GroupBuckets:
    group: WriteGroup | None = session.info.get(GROUP)
    if group is None:
        raise RuntimeError("rate limits are taken inside Database.write()")
    buckets = group.shared.get(__name__)
    if buckets is None:
        buckets = group.shared[__name__] = _GroupBuckets()
        group.last_before_commit.append(buckets.write)
    return cast(_GroupBuckets, buckets)


def _seconds(moment: dt.datetime) -> float:
    return moment.timestamp()


def _moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class RateLimits:
    """The configured limits; a kind without a limit is not limited."""

    def __init__(self, limits: Mapping[LimitKind, Limit]) -> None:
        self._limits = dict(limits)
        self._seen: dict[_Key, Bucket] = {}
        self._lock = threading.Lock()

    def limit(self, kind: LimitKind) -> Limit | None:
        return self._limits.get(kind)

    def precheck(self, kind: LimitKind, oin: str, cost: float, now: dt.datetime) -> None:
        """Raise ``RateLimited`` when the bucket surely cannot pay ``cost`` now, judged from
        what this instance last saw of it (no database access); otherwise return."""
        limit = self._limits.get(kind)
        if limit is None:
            return
        with self._lock:
            seen = self._seen.get((kind.value, oin))
        if seen is None:
            return
        _bucket, wait = take(seen, limit, cost, _seconds(now))
        if wait:
            raise RateLimited(wait)

    def take(
        self, session: Session, kind: LimitKind, oin: str, cost: float, now: dt.datetime
    ) -> None:
        """Take ``cost`` from the organisation's bucket in the caller's write transaction,
        or raise ``RateLimited`` (with the seconds to wait)."""
        limit = self._limits.get(kind)
        if limit is None:
            return
        key = (kind.value, oin)
        group = _group_buckets(session)
        pending: dict[_Key, Bucket] = session.info.setdefault(_PENDING_KEY, {})
        current = pending.get(key)
        if current is None:
            stored = group.buckets.get(key)
            if stored is None:
                connection: Connection = session.info[GROUP].connection
                stored = group.buckets[key] = _read(connection, key)
            current = stored.bucket
        seconds = _seconds(now)
        after, wait = take(current, limit, cost, seconds)
        with self._lock:
            # Refilled, before this take: an upper bound whether or not the take commits.
            self._seen[key] = after if wait else Bucket(after.tokens + cost, after.updated)
        if wait:
            raise RateLimited(wait)
        pending[key] = after
        session.info.setdefault(_TAKES_KEY, []).append((key, limit, cost, seconds))


_SELECT = select(_TABLE.c.tokens, _TABLE.c.updated_at).where(
    _TABLE.c.kind == bindparam("kind"), _TABLE.c.oin == bindparam("oin")
)
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.kind == bindparam("b_kind"), _TABLE.c.oin == bindparam("b_oin"))
    .values(tokens=bindparam("tokens"), updated_at=bindparam("updated_at"))
)
_INSERT = insert(_TABLE).values(
    kind=bindparam("b_kind"),
    oin=bindparam("b_oin"),
    tokens=bindparam("tokens"),
    updated_at=bindparam("updated_at"),
)


def _read(connection: Connection, key: _Key) -> _Stored:
    """The stored bucket, read on the group's connection: inside its transaction (so
    under the write lock) but not through the writer's session, so that it opens no
    savepoint for a writer that otherwise only appends to the audit log (a read needs
    no savepoint: there is nothing of it to roll back)."""
    row = connection.execute(_SELECT, {"kind": key[0], "oin": key[1]}).first()
    if row is None:
        return _Stored(None, exists=False)
    return _Stored(Bucket(float(row[0]), _seconds(row[1])), exists=True)


def _writer_committed(session: Session) -> None:
    """The writer's savepoint was released: its buckets become the group's."""
    pending: dict[_Key, Bucket] | None = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    group = _group_buckets(session)
    for key, bucket in pending.items():
        stored = group.buckets[key]
        stored.bucket = bucket
        stored.dirty = True
    for key, limit, cost, seconds in session.info.pop(_TAKES_KEY, ()):
        group.buckets[key].takes.append((limit, cost, seconds))


def _writer_rolled_back(session: Session) -> None:
    """The writer's savepoint was rolled back: what it took is given back."""
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_TAKES_KEY, None)


# Registered by every Database (vir.store.db.STORE_HOOKS), not by importing this module.
WRITER_HOOKS = WriterHooks(_writer_committed, _writer_rolled_back)
