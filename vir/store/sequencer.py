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
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, text, update

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

_STAGED = cast(Table, AuditStagedRow.__table__)
_ENTRIES = cast(Table, AuditEntryRow.__table__)
_REFS = cast(Table, AuditRefRow.__table__)
_NOTIFICATIONS = cast(Table, NotificationRow.__table__)
_COUNTERS = cast(Table, NotificationCounterRow.__table__)

_HEAD = select(_ENTRIES.c.seq, _ENTRIES.c.entry_hash).order_by(_ENTRIES.c.seq.desc()).limit(1)
_NEXT_STAGED = select(_STAGED).order_by(_STAGED.c.id).limit(BATCH)
_UNSTAGE = delete(_STAGED).where(_STAGED.c.id.in_(bindparam("ids", expanding=True)))
# SKIP LOCKED (PostgreSQL; SQLite has one writer and no row locks): a notification a
# writer is deleting right now (retention) is left for the next integration instead of
# waited for, so the integrator never waits for a writer's row lock and the two can
# never deadlock (a writer deleting several notifications in another order than the
# integrator numbering them would otherwise be aborted by PostgreSQL).
_UNNUMBERED = (
    select(_NOTIFICATIONS.c.seq, _NOTIFICATIONS.c.oin)
    .where(_NOTIFICATIONS.c.position.is_(None))
    .order_by(_NOTIFICATIONS.c.seq)
    .limit(BATCH)
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
    returns None at once when another integrator holds it.
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
    for _ in range(MAX_BATCHES):
        staged = connection.execute(_NEXT_STAGED).all()
        if not staged:
            return
        now = time.time()
        entries = []
        refs = []
        for row in staged:
            seq += 1
            body = bytes(row.body)
            digest = chain_hash(previous, body)
            entries.append(
                {
                    "seq": seq,
                    "event_id": row.event_id,
                    "occurred_at": row.occurred_at,
                    "organisation": row.organisation,
                    "action": row.action,
                    "outcome": row.outcome,
                    "body": body,
                    "prev_hash": previous,
                    "entry_hash": digest,
                }
            )
            previous = digest
            refs += [{"ref": ref, "seq": seq} for ref in row.refs.split()]
            done.delays.append(max(0.0, now - row.staged_at))
        connection.execute(insert(_ENTRIES), entries)
        if refs:
            connection.execute(insert(_REFS), refs)
        connection.execute(_UNSTAGE, {"ids": [row.id for row in staged]})
        done.entries += len(entries)
        if len(staged) < BATCH:
            return


def _number(connection: Connection, done: Integrated) -> None:
    for _ in range(MAX_BATCHES):
        unnumbered = connection.execute(_UNNUMBERED).all()
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
