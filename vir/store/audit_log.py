"""Appending to and reading the hash-chained audit log.

Writers stage events (``append``); the integrator (``vir.store.sequencer``) chains
them into ``audit_entries``. Readers read ``audit_entries``: what is integrated.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from vir.audit.actions import Action, action_of
from vir.audit.chain import AuditEvent, StoredEntry
from vir.domain.caller import Caller
from vir.store import multirow, sequencer
from vir.store.tables import AuditEntryRow, AuditRefRow
from vir.store.write_group import GROUP, WriteGroup, WriterHooks


class Accessor(TypedDict, total=False):
    """The user and access point of an entry (NEN 7513): organisation, certificate, role;
    for a person signed in to the portal, ``actor`` ``person:<id>`` and no certificate."""

    organisation: str
    certificate: str
    role: str
    actor: str


def by(caller: Caller) -> Accessor:
    if caller.person is not None:
        return {"organisation": caller.oin, "role": caller.role, "actor": f"person:{caller.person}"}
    return {"organisation": caller.oin, "certificate": caller.certificate, "role": caller.role}


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# In place of a removal or destruction date that is the young person's 23rd birthday.
AT_23 = "at_23"


def day(value: dt.date, archive_until: dt.date | None) -> str:
    """A signal's removal or destruction date as its audit entry gives it: the date, or
    ``AT_23`` when it is the 23rd birthday (``archive_until``). The log is append-only
    and exported; a birthday in it would keep a date of birth for good, next to the
    signal and its organisation, after the signal and its archived copy are gone."""
    return AT_23 if value == archive_until else value.isoformat()


def new_event(
    action: Action,
    outcome: str,
    now: dt.datetime,
    *,
    organisation: str | None = None,
    actor: str | None = None,
    certificate: str | None = None,
    objects: Mapping[str, str | int] | None = None,
    reason: str | None = None,
    role: str | None = None,
    purpose: str | None = None,
) -> AuditEvent:
    """An entry to ``append``. ``action`` must be in the catalogue (``vir.audit.actions``):
    anything else raises UnknownAction, so that no emitter can log an action that
    metrics, reports and docs/audit.md do not know."""
    return AuditEvent(
        event_id=str(uuid.uuid4()),
        occurred_at=rfc3339(now),
        action=action_of(action).value,
        outcome=outcome,
        organisation=organisation,
        actor=actor,
        certificate=certificate,
        objects=dict(objects or {}),
        reason=reason,
        role=role,
        purpose=purpose,
    )


# Staged through the database driver itself, a row a plain tuple in the order of the
# statement's columns: the audit log is appended to on every request, and SQLAlchemy's
# statement and type machinery (let alone an ORM insert) cost several times more per
# row than the insert itself.
_STAGE_SQLITE = (
    "INSERT INTO audit_staged (event_id, occurred_at, organisation, action, outcome, body,"
    " refs, staged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# PostgreSQL: one statement for many rows (vir.store.multirow).
_STAGE_COLUMNS = (
    "event_id",
    "occurred_at",
    "organisation",
    "action",
    "outcome",
    "body",
    "refs",
    "staged_at",
)


# An event not staged yet: its row in audit_staged.
Row = tuple[str, str, str | None, str, str, bytes, str, float]


def _row(event: AuditEvent) -> Row:
    return (
        event.event_id,
        event.occurred_at,
        event.organisation,
        event.action,
        event.outcome,
        event.encode(),
        " ".join(event.refs),
        time.time(),
    )


def _stage(connection: Connection, rows: list[Row]) -> None:
    """Insert ``rows`` into ``audit_staged``, in the transaction on ``connection``."""
    if connection.dialect.name == "postgresql":
        multirow.insert(connection, "audit_staged", _STAGE_COLUMNS, rows)
        return
    driver: Any = connection.connection.driver_connection  # in the same transaction
    driver.executemany(_STAGE_SQLITE, rows)


_PENDING_KEY = "vir_audit_pending"
_TAKEN_KEY = "vir_audit_taken"  # the group's rows this transaction staged early
_EVENTS_KEY = "vir_audit_events"  # this writer's events, for the commit observers


class _GroupLog:
    """The events of a write group's committed writers, not staged yet.

    Writers in a group (``vir.store.db``, "Group commit") run one after the other
    inside one database transaction; the rows of all of them are staged in one
    multi-row insert just before the group commits.
    """

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def write(self, connection: Connection) -> None:
        if self.rows:
            _stage(connection, self.rows)
            self.rows = []


def _group_log(session: Session) -> _GroupLog | None:
    """The log of the write group ``session`` writes in; None outside ``Database.write``."""
    group: WriteGroup | None = session.info.get(GROUP)
    if group is None:
        return None
    log = group.shared.get(__name__)
    if log is None:
        log = group.shared[__name__] = _GroupLog()
        group.before_commit.append(log.write)
    return cast(_GroupLog, log)


def append(session: Session, event: AuditEvent) -> None:
    """Stage ``event`` inside the caller's write transaction (``Database.write``).

    The event commits with everything else the transaction does, or not at all; the
    integrator (``vir.store.sequencer``) later chains it into the log, giving it its
    ``seq``. Staging takes no lock: writers append in parallel.

    Rows are staged in one multi-row insert when the write group commits (or when this
    module reads the log in the same transaction): one statement per commit instead
    of one per entry.
    """
    if _group_log(session) is None:
        raise RuntimeError("audit entries are appended inside Database.write()")
    session.info.setdefault(_PENDING_KEY, []).append(_row(event))
    session.info.setdefault(_EVENTS_KEY, []).append(event)


def flush(session: Session, *, wait: bool = True) -> sequencer.Integrated | None:
    """Make the whole log readable in this write transaction: stage what it and its group
    appended so far, then integrate everything staged (``vir.store.sequencer``, taking
    the integrator's lock for the rest of the transaction; ``wait=False``: return None
    at once when another integrator has it). Outside a write transaction it does
    nothing: a reader sees the log as integrated."""
    log = _group_log(session)
    if log is None:
        return None
    rows = session.info.pop(_PENDING_KEY, [])
    if log.rows:
        # Earlier writers' rows, staged inside this writer's savepoint: should it roll
        # back, they go back to the group (_writer_rolled_back).
        session.info.setdefault(_TAKEN_KEY, []).extend(log.rows)
        rows = log.rows + rows
        log.rows = []
    connection = session.connection()
    if rows:
        _stage(connection, rows)
    return sequencer.integrate(connection, wait=wait)


def _writer_committed(session: Session) -> None:
    """The writer's savepoint was released: its rows join the group's, and its events
    the group's, told to the commit observers (metrics) once the group commits, so
    that what rolls back is never counted."""
    log = _group_log(session)
    events = session.info.get(_EVENTS_KEY)
    if log is None or not events:
        return  # appended nothing
    log.rows.extend(session.info.pop(_PENDING_KEY, ()))
    session.info[GROUP].events.extend(events)


def _writer_rolled_back(session: Session) -> None:
    """The writer's savepoint was rolled back: the group's rows it staged early are
    unstaged again, so they go back to the group. Its own events are dropped with
    its session."""
    log = _group_log(session)
    taken = session.info.pop(_TAKEN_KEY, None)
    if taken and log is not None:
        log.rows[:0] = taken


# Registered by every Database (vir.store.db.STORE_HOOKS), not by importing this module.
WRITER_HOOKS = WriterHooks(_writer_committed, _writer_rolled_back)


def as_bytes(value: object) -> bytes:
    """Stored bytes as bytes. SQLite lets an editor store text in a blob column (its
    replace() returns text): such a value is checked like any other, not crashed on."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def stored_entries(
    session: Session, batch: int = 5000, *, with_refs: bool = False, after: int = 0
) -> Iterator[StoredEntry]:
    """Every entry in sequence order (or those after seq ``after``), with its indexed
    columns for cross-checking; ``with_refs``: also its rows in the ``audit_refs`` index
    (the ``refs`` column)."""
    flush(session)
    refs = _IndexedRefs(session, batch, after) if with_refs else None
    query = select(AuditEntryRow).order_by(AuditEntryRow.seq)
    if after:
        query = query.where(AuditEntryRow.seq > after)
    rows = session.execute(query).yield_per(batch)
    for (row,) in rows:
        columns: dict[str, str | list[str] | None] = {
            "event_id": row.event_id,
            "occurred_at": row.occurred_at,
            "organisation": row.organisation,
            "action": row.action,
            "outcome": row.outcome,
        }
        if refs is not None:
            columns["refs"] = refs.up_to(row.seq)
        yield StoredEntry(
            seq=row.seq,
            body=as_bytes(row.body),
            prev_hash=as_bytes(row.prev_hash),
            entry_hash=as_bytes(row.entry_hash),
            columns=columns,
        )


def count_entries(session: Session, after: int = 0) -> int:
    """How many entries are integrated (after seq ``after``)."""
    query = select(func.count()).select_from(AuditEntryRow)
    if after:
        query = query.where(AuditEntryRow.seq > after)
    return int(session.scalar(query) or 0)


class _IndexedRefs:
    """The ``audit_refs`` rows, handed out entry by entry in sequence order. Rows for a
    seq that has no entry go with the next entry (or the last), so that a stray index
    row shows up as a mismatch there instead of going unnoticed."""

    def __init__(self, session: Session, batch: int, after: int = 0) -> None:
        self._last = session.scalar(select(func.max(AuditEntryRow.seq))) or 0
        query = (
            select(AuditRefRow.seq, AuditRefRow.ref)
            .where(AuditRefRow.seq > after)
            .order_by(AuditRefRow.seq, AuditRefRow.ref)
        )
        self._rows = iter(session.execute(query).yield_per(batch))
        self._next = next(self._rows, None)

    def up_to(self, seq: int) -> list[str]:
        found: list[str] = []
        while self._next is not None and (self._next[0] <= seq or seq >= self._last):
            found.append(self._next[1])
            self._next = next(self._rows, None)
        return found


def entries_mentioning(session: Session, ids: Collection[str]) -> list[tuple[int, AuditEvent]]:
    """Entries whose objects name any of ``ids`` (signal or match ids), in sequence order.

    Found through the ``audit_refs`` index: the log holds ids, never pseudonyms, so
    ids are the only way back from a person to their entries, and that way ends once
    their signals are purged. Used for data-subject access.
    """
    if not ids:
        return []
    flush(session)
    named = select(AuditRefRow.seq).where(AuditRefRow.ref.in_(sorted(ids)))
    rows = session.execute(
        select(AuditEntryRow.seq, AuditEntryRow.body)
        .where(AuditEntryRow.seq.in_(named))
        .order_by(AuditEntryRow.seq)
    )
    found = []
    for seq, body in rows:
        event = AuditEvent.decode(as_bytes(body))
        if any(str(v) in ids for v in event.objects.values()):
            found.append((seq, event))
    return found
