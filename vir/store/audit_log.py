"""Appending to and reading the hash-chained audit table."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterator, Mapping
from typing import TypedDict, cast

from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy.orm import Session

from vir.audit.actions import Action, action_of
from vir.audit.chain import GENESIS, AuditEvent, StoredEntry, chain_hash
from vir.domain.caller import Caller
from vir.store.tables import AuditEntryRow, AuditRefRow
from vir.store.write_group import GROUP, WriteGroup, WriterHooks


class Accessor(TypedDict):
    """The user and access point of an entry (NEN 7513): organisation, certificate, role."""

    organisation: str
    certificate: str
    role: str


def by(caller: Caller) -> Accessor:
    return {"organisation": caller.oin, "certificate": caller.certificate, "role": caller.role}


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


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


_HEAD = (
    select(AuditEntryRow.seq, AuditEntryRow.entry_hash).order_by(AuditEntryRow.seq.desc()).limit(1)
)
# The Core table, not the mapped class: an ORM-enabled insert costs several times more
# per row, and the audit log is appended to on every request.
_INSERT = insert(cast(Table, AuditEntryRow.__table__))
_INSERT_REFS = insert(cast(Table, AuditRefRow.__table__))
# An entry not written yet: its row, and its rows in the audit_refs index.
Row = dict[str, object]
_Pending = tuple[Row, list[Row]]


def _write(connection: Connection, pending: list[_Pending]) -> None:
    connection.execute(_INSERT, [row for row, _refs in pending])
    refs = [ref for _row, refs in pending for ref in refs]
    if refs:
        connection.execute(_INSERT_REFS, refs)


_HEAD_KEY = "vir_audit_head"
_PENDING_KEY = "vir_audit_pending"
_TAKEN_KEY = "vir_audit_taken"  # the group's rows this transaction wrote early
_EVENTS_KEY = "vir_audit_events"  # this writer's events, for the commit observers


class _GroupLog:
    """The entries of a write group's committed writers, not written yet.

    Writers in a group (``vir.store.db``, "Group commit") run one after the other
    inside one database transaction; each chains onto the head the previous one
    left here, and the rows of all of them are written in one multi-row insert
    just before the group commits. A writer that only appends to the log thus
    sends no statement to the database at all.
    """

    def __init__(self) -> None:
        self.head: tuple[int, bytes] | None = None
        self.rows: list[_Pending] = []

    def write(self, connection: Connection) -> None:
        if self.rows:
            _write(connection, self.rows)
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


def _head(session: Session, log: _GroupLog) -> tuple[int, bytes]:
    head = session.info.get(_HEAD_KEY) or log.head
    if head is None:  # rows a group holds always come with its head: the table's is current
        row = session.execute(_HEAD).first()
        head = (row[0], row[1]) if row else (0, GENESIS)
    return cast(tuple[int, bytes], head)


def append(session: Session, event: AuditEvent) -> int:
    """Chain ``event`` onto the head, inside the caller's write transaction
    (``Database.write``).

    The head is read once per write group and then carried along: a write
    transaction holds the database's write lock, so nobody else can append
    meanwhile. ``seq`` is the primary key, so should two writers ever read the
    same head, the loser's transaction fails instead of forking the chain.

    Rows are written in one multi-row insert when the write group commits (or
    when this module reads the log in the same transaction): one statement per
    commit instead of one per entry. They commit with everything else in the
    transaction or not at all.
    """
    log = _group_log(session)
    if log is None:
        raise RuntimeError("audit entries are appended inside Database.write()")
    seq, previous = _head(session, log)
    seq += 1
    body = event.encode()
    digest = chain_hash(previous, body)
    refs: list[Row] = [{"ref": ref, "seq": seq} for ref in event.refs]
    row: Row = {
        "seq": seq,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "organisation": event.organisation,
        "action": event.action,
        "outcome": event.outcome,
        "body": body,
        "prev_hash": previous,
        "entry_hash": digest,
    }
    session.info.setdefault(_PENDING_KEY, []).append((row, refs))
    session.info[_HEAD_KEY] = (seq, digest)
    session.info.setdefault(_EVENTS_KEY, []).append(event)
    return seq


def flush(session: Session) -> None:
    """Write the entries appended so far that are not written yet, so that this
    transaction can read the whole log (outside a write there are none)."""
    log = _group_log(session)
    if log is None:
        return
    rows = session.info.pop(_PENDING_KEY, [])
    if log.rows:
        # Earlier writers' rows, written inside this writer's savepoint: should it roll
        # back, they go back to the group (_writer_rolled_back).
        session.info.setdefault(_TAKEN_KEY, []).extend(log.rows)
        rows = log.rows + rows
        log.rows = []
    if rows:
        _write(session.connection(), rows)


def _writer_committed(session: Session) -> None:
    """The writer's savepoint was released: its rows join the group's, and its events
    the group's, told to the commit observers (metrics) once the group commits, so
    that what rolls back is never counted."""
    log = _group_log(session)
    if log is None or _HEAD_KEY not in session.info:
        return  # appended nothing
    log.rows.extend(session.info.pop(_PENDING_KEY, ()))
    log.head = session.info[_HEAD_KEY]
    session.info[GROUP].events.extend(session.info[_EVENTS_KEY])


def _writer_rolled_back(session: Session) -> None:
    """The writer's savepoint was rolled back: the group's rows it wrote early are
    unwritten again, so they go back to the group. Its own entries are dropped with
    its session."""
    log = _group_log(session)
    taken = session.info.pop(_TAKEN_KEY, None)
    if taken and log is not None:
        log.rows[:0] = taken


# Registered by every Database (vir.store.db.STORE_HOOKS), not by importing this module.
WRITER_HOOKS = WriterHooks(_writer_committed, _writer_rolled_back)


def _as_bytes(value: object) -> bytes:
    """Stored bytes as bytes. SQLite lets an editor store text in a blob column (its
    replace() returns text): such a value is checked like any other, not crashed on."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def stored_entries(
    session: Session, batch: int = 5000, *, with_refs: bool = False
) -> Iterator[StoredEntry]:
    """Every entry in sequence order, with its indexed columns for cross-checking;
    ``with_refs``: also its rows in the ``audit_refs`` index (the ``refs`` column)."""
    flush(session)
    refs = _IndexedRefs(session, batch) if with_refs else None
    rows = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).yield_per(batch)
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
            body=_as_bytes(row.body),
            prev_hash=_as_bytes(row.prev_hash),
            entry_hash=_as_bytes(row.entry_hash),
            columns=columns,
        )


class _IndexedRefs:
    """The ``audit_refs`` rows, handed out entry by entry in sequence order. Rows for a
    seq that has no entry go with the next entry (or the last), so that a stray index
    row shows up as a mismatch there instead of going unnoticed."""

    def __init__(self, session: Session, batch: int) -> None:
        self._last = session.scalar(select(func.max(AuditEntryRow.seq))) or 0
        query = select(AuditRefRow.seq, AuditRefRow.ref).order_by(AuditRefRow.seq, AuditRefRow.ref)
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
        event = AuditEvent.decode(_as_bytes(body))
        if any(str(v) in ids for v in event.objects.values()):
            found.append((seq, event))
    return found
