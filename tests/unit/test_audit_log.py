"""Staging an audit event (vir/store/audit_log.py) and integrating it
(vir/store/sequencer.py) keep every column of it: rows go through the database driver
as plain tuples, so a column out of place would be stored without complaint. Runs on
SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from support.instore import T0, Store, fresh_store, template

from vir.audit.actions import Action
from vir.audit.chain import GENESIS, Outcome, chain_hash
from vir.store import audit_log, multirow
from vir.store.tables import AuditEntryRow, AuditRefRow, AuditStagedRow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        store.db.integrate_after_commit = False  # these tests integrate themselves
        yield store


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = [
        audit_log.new_event(Action.REPORT_GENERATED, "success", T0).event_id for _ in range(2000)
    ]
    assert len(set(ids)) == len(ids)
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id  # lower case, hyphens in place
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # Every bit that is not the version's or the variant's varies.
    fixed = (1 << 128) - 1
    for event_id in ids[1:]:
        fixed &= ~(uuid.UUID(event_id).int ^ uuid.UUID(ids[0]).int)
    assert fixed == (0xF << 76) | (0x3 << 62)


def test_a_staged_event_keeps_every_column_into_the_chain(store: Store) -> None:
    signal, match = str(uuid.uuid4()), str(uuid.uuid4())
    event = audit_log.new_event(
        Action.SIGNAL_REGISTERED,
        Outcome.SUCCESS,
        T0,
        organisation="00000009000000000002",
        certificate="ab" * 32,
        role="system",
        objects={"signal": signal, "match": match, "count": 2},
    )
    with store.db.write() as session:
        audit_log.append(session, event)
    with store.db.read() as session:
        staged = session.scalars(select(AuditStagedRow)).one()
        assert (
            staged.event_id,
            staged.occurred_at,
            staged.organisation,
            staged.action,
            staged.outcome,
            bytes(staged.body),
            sorted(staged.refs.split()),
        ) == (
            event.event_id,
            event.occurred_at,
            "00000009000000000002",
            "signal.registered",
            "success",
            event.encode(),
            sorted([signal, match]),
        )
        assert isinstance(staged.staged_at, float)
        head = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq.desc())).first()
    seq, previous = (head.seq, bytes(head.entry_hash)) if head else (0, GENESIS)

    store.db.integrate()
    with store.db.read() as session:
        entry = session.get(AuditEntryRow, seq + 1)
        assert entry is not None
        assert (
            entry.event_id,
            entry.occurred_at,
            entry.organisation,
            entry.action,
            entry.outcome,
            bytes(entry.body),
            bytes(entry.prev_hash),
            bytes(entry.entry_hash),
        ) == (
            event.event_id,
            event.occurred_at,
            "00000009000000000002",
            "signal.registered",
            "success",
            event.encode(),
            previous,
            chain_hash(previous, event.encode()),
        )
        refs = session.execute(
            select(AuditRefRow.ref, AuditRefRow.seq).where(AuditRefRow.seq == seq + 1)
        ).all()
        assert sorted(refs) == sorted([(signal, seq + 1), (match, seq + 1)])
        assert session.scalars(select(AuditStagedRow)).all() == []


def test_many_events_of_one_transaction_are_staged_and_chained_in_order(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multirow, "ROWS_PER_STATEMENT", 7)  # PostgreSQL: statements of 7 rows
    with store.db.write() as session:
        events = [
            audit_log.new_event(Action.REPORT_GENERATED, Outcome.SUCCESS, T0, objects={"n": i})
            for i in range(20)
        ]
        for event in events:
            audit_log.append(session, event)
    with store.db.read() as session:
        staged = session.scalars(select(AuditStagedRow.event_id).order_by(AuditStagedRow.id))
        assert staged.all() == [e.event_id for e in events]
    store.db.integrate()
    with store.db.read() as session:
        chained = session.scalars(select(AuditEntryRow.event_id).order_by(AuditEntryRow.seq))
        assert chained.all()[-20:] == [e.event_id for e in events]
