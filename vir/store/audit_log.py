"""Appending to and reading the hash-chained audit table."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.audit.chain import GENESIS, AuditEvent, StoredEntry, chain_hash
from vir.store.tables import AuditEntryRow


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_event(
    action: str,
    outcome: str,
    now: dt.datetime,
    *,
    organisation: str | None = None,
    actor: str | None = None,
    certificate: str | None = None,
    objects: Mapping[str, str | int] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        event_id=str(uuid.uuid4()),
        occurred_at=rfc3339(now),
        action=action,
        outcome=outcome,
        organisation=organisation,
        actor=actor,
        certificate=certificate,
        objects=dict(objects or {}),
        reason=reason,
    )


def append(session: Session, event: AuditEvent) -> int:
    """Chain ``event`` onto the head, inside the caller's transaction. Returns its sequence number.

    ``seq`` is the primary key, so two writers that read the same head cannot both
    commit: the loser's transaction fails instead of forking the chain.
    """
    head = session.execute(
        select(AuditEntryRow.seq, AuditEntryRow.entry_hash)
        .order_by(AuditEntryRow.seq.desc())
        .limit(1)
    ).first()
    seq, previous = (head[0] + 1, head[1]) if head else (1, GENESIS)
    body = event.encode()
    session.add(
        AuditEntryRow(
            seq=seq,
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            organisation=event.organisation,
            action=event.action,
            outcome=event.outcome,
            body=body,
            prev_hash=previous,
            entry_hash=chain_hash(previous, body),
        )
    )
    session.flush()
    return seq


def stored_entries(session: Session, batch: int = 5000) -> Iterator[StoredEntry]:
    """Every entry in sequence order, with its indexed columns for cross-checking."""
    rows = session.execute(select(AuditEntryRow).order_by(AuditEntryRow.seq)).yield_per(batch)
    for (row,) in rows:
        yield StoredEntry(
            seq=row.seq,
            body=row.body,
            prev_hash=row.prev_hash,
            entry_hash=row.entry_hash,
            columns={
                "event_id": row.event_id,
                "occurred_at": row.occurred_at,
                "organisation": row.organisation,
                "action": row.action,
                "outcome": row.outcome,
            },
        )
