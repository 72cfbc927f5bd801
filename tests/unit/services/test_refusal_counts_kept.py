"""How long ``refusal_counts`` rows stay (docs/privacy/README.md): until their minute is
over and written to the audit log, also on a quiet system where nothing is due."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select
from support.instore import fresh_store, template
from support.world import Clock

from vir.services.identity import Presented
from vir.services.refusals import Recorded, RefusalRecorder
from vir.store.db import Database
from vir.store.tables import AuditEntryRow, RefusalCountRow

MINUTE = dt.timedelta(minutes=1)


def _rows(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(RefusalCountRow)) or 0)


def _entries(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntryRow)) or 0)


def test_a_minute_written_at_once_is_forgotten_at_the_next_flush(tmp_path: Path) -> None:
    clock = Clock()
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        recorder = RefusalRecorder(store.db, clock)
        claim = Presented("00000001003214345000", "ab" * 32)
        # One refusal per key: each an audit entry at once, nothing left due.
        assert recorder.record(claim, "/v1/signals", "not_found", "203.0.113.7") is (
            Recorded.AUDITED
        )
        assert recorder.record(claim, "/v1/matches", "not_found", "198.51.100.1") is (
            Recorded.AUDITED
        )
        store.db.integrate()
        entries = _entries(store.db)
        assert _rows(store.db) == 2
        assert recorder.flush() == 0  # the minute is not over: its rows hold the cap
        assert _rows(store.db) == 2
        clock.now += MINUTE
        assert recorder.flush() == 0  # nothing to write: the minute is in the log already
        assert _rows(store.db) == 0
        store.db.integrate()
        assert _entries(store.db) == entries  # and no entry was added for it


def test_a_minute_with_counts_due_is_written_then_forgotten(tmp_path: Path) -> None:
    clock = Clock()
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        recorder = RefusalRecorder(store.db, clock)
        claim = Presented(None, None)
        for _ in range(3):
            recorder.record(claim, "/v1/signals", "no_client_certificate", "203.0.113.7")
        clock.now += MINUTE
        assert recorder.flush() == 1
        assert _rows(store.db) == 0
