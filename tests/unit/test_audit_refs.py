"""The audit_refs index: object id -> the entries naming it (vir/store/audit_log.py).

Derived from the entry bodies, kept with every append (also through group commit),
filled for an existing log by migration 0006, used by access requests, and checked
by ``vir audit verify`` like the other indexed columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, insert, select, update
from sqlalchemy.orm import Session
from support.instore import T0, Store, fresh_store, template

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome, verify_chain
from vir.store import audit_log
from vir.store.db import Database
from vir.store.migrate import upgrade
from vir.store.tables import AuditEntryRow, AuditRefRow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        yield store


def _event(**objects: str | int) -> AuditEvent:
    return audit_log.new_event(Action.REPORT_GENERATED, Outcome.SUCCESS, T0, objects=objects)


def _ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


def _fill(db: Database) -> tuple[list[str], dict[str, list[int]]]:
    """Entries naming signals and matches in several transactions; returns the ids and,
    per id, the seqs of the entries naming it (given when they are integrated)."""
    signals, matches = _ids(3), _ids(2)
    named: dict[str, list[str]] = {i: [] for i in signals + matches}

    def append(session: Session, event: AuditEvent, *ids: str) -> None:
        audit_log.append(session, event)
        for i in ids:
            named[i].append(event.event_id)

    with db.write() as session:
        for s in signals:
            append(session, _event(signal=s, remove_on="2027-01-01"), s)
    with db.write() as session:
        append(
            session, _event(match=matches[0], signal=signals[0], count=2), *matches[:1], signals[0]
        )
        audit_log.append(session, _event(elements=5, epoch=1))  # names no id
    with db.write() as session:
        append(session, _event(match=matches[1], other=signals[2]), matches[1], signals[2])
    db.integrate()
    with db.read() as session:
        seq_of = dict(session.execute(select(AuditEntryRow.event_id, AuditEntryRow.seq)).all())
    return signals + matches, {i: [seq_of[e] for e in events] for i, events in named.items()}


def _verify(db: Database) -> tuple[int | None, str | None]:
    with db.read() as session:
        report = verify_chain(audit_log.stored_entries(session, with_refs=True))
    return report.first_broken, report.problem


def test_refs_are_the_uuids_among_the_objects() -> None:
    s, m = _ids(2)
    event = _event(signal=s, match=m, remove_on="2027-01-01", count=3, via="person")
    assert event.refs == sorted([s, m])
    assert _event(signal=s, archived_signal=s).refs == [s]  # once per entry
    assert _event(signal=s.upper(), request="not-an-id").refs == []


def test_every_append_is_indexed_and_access_finds_entries_through_it(store: Store) -> None:
    ids, named = _fill(store.db)
    with store.db.read() as session:
        indexed = session.execute(select(AuditRefRow.ref, AuditRefRow.seq)).all()
        assert sorted(indexed) == sorted((i, seq) for i, seqs in named.items() for seq in seqs)
        for i in ids:
            assert [seq for seq, _e in audit_log.entries_mentioning(session, {i})] == named[i]
        both = audit_log.entries_mentioning(session, {ids[0], ids[3]})
        assert [seq for seq, _e in both] == sorted(set(named[ids[0]] + named[ids[3]]))
        assert audit_log.entries_mentioning(session, {str(uuid.uuid4())}) == []
    assert _verify(store.db) == (None, None)


def test_verify_names_the_entry_whose_index_rows_were_edited(store: Store) -> None:
    ids, named = _fill(store.db)
    target = named[ids[0]][-1]
    stray = str(uuid.uuid4())
    with store.db.read() as session:
        last = session.scalar(select(AuditEntryRow.seq).order_by(AuditEntryRow.seq.desc()))
    assert last is not None
    edits = [
        # an entry hidden from access requests
        (delete(AuditRefRow).where(AuditRefRow.ref == ids[0], AuditRefRow.seq == target), target),
        # an entry pointed at another object
        (
            update(AuditRefRow)
            .where(AuditRefRow.ref == ids[0], AuditRefRow.seq == target)
            .values(ref=stray),
            target,
        ),
        # an entry said to name an object it does not name
        (insert(AuditRefRow).values(ref=stray, seq=1), 1),
        # a row for an entry that does not exist (shows at the last entry)
        (insert(AuditRefRow).values(ref=stray, seq=last + 5), last),
    ]
    for edit, where in edits:
        with store.db.engine.begin() as connection:  # behind the service's back
            saved = connection.execute(select(AuditRefRow.ref, AuditRefRow.seq)).all()
            connection.execute(edit)
        assert _verify(store.db) == (where, "column 'refs' differs from the hashed content")
        with store.db.engine.begin() as connection:
            connection.execute(delete(AuditRefRow))
            connection.execute(insert(AuditRefRow), [{"ref": r, "seq": s} for r, s in saved])
        assert _verify(store.db) == (None, None)


def test_migration_0006_indexes_the_entries_already_in_the_log(tmp_path: Path) -> None:
    current = f"sqlite:///{tmp_path / 'current.db'}"
    upgrade(current)
    db = Database.connect(current, durable=False)
    _fill(db)
    with db.read() as session:
        entries = [
            {c.name: getattr(row, c.key) for c in AuditEntryRow.__table__.columns}
            for row in session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.seq))
        ]
        expected = sorted(session.execute(select(AuditRefRow.ref, AuditRefRow.seq)).all())
    db.dispose()
    assert expected

    older = f"sqlite:///{tmp_path / 'older.db'}"
    upgrade(older, "0005")
    engine = create_engine(older)
    with engine.begin() as connection:  # the same log, written before the index existed
        connection.execute(insert(AuditEntryRow.__table__), entries)
    upgrade(older)
    with engine.connect() as connection:
        assert sorted(connection.execute(select(AuditRefRow.ref, AuditRefRow.seq)).all()) == (
            expected
        )
    engine.dispose()
