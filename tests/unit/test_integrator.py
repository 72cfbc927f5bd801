"""The integrator (vir/store/sequencer.py): staged audit events become the hash chain,
notifications get their positions, and a crash in the middle loses and repeats
nothing. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.instore import T0, Store, fresh_store, template

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome, verify_chain
from vir.services.integrator import Integrator
from vir.store import audit_log, sequencer
from vir.store.db import Database
from vir.store.tables import AuditEntryRow, AuditStagedRow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        store.db.integrate_after_commit = False  # these tests integrate themselves
        yield store


def _stage(db: Database, names: list[str]) -> None:
    with db.write() as session:
        for name in names:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.REPORT_GENERATED, Outcome.SUCCESS, T0, objects={"name": name}
                ),
            )


def _log(db: Database) -> tuple[list[str], bool]:
    with db.read() as session:
        entries = list(audit_log.stored_entries(session))
    names = [
        str(AuditEvent.decode(e.body).objects.get("name"))
        for e in entries
        if AuditEvent.decode(e.body).action == Action.REPORT_GENERATED
    ]
    return names, verify_chain(entries).intact


def _staged(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuditStagedRow)) or 0)


def test_staged_events_are_chained_in_order_and_leave_the_staging_table(store: Store) -> None:
    _stage(store.db, ["a", "b"])
    _stage(store.db, ["c"])
    assert _log(store.db) == ([], True)  # committed, not integrated yet
    assert _staged(store.db) == 3
    done = store.db.integrate()
    assert done is not None and done.entries >= 3 and len(done.delays) == done.entries
    assert _log(store.db) == (["a", "b", "c"], True)
    assert _staged(store.db) == 0
    assert store.db.integrate() is not None  # nothing left: nothing done
    assert _log(store.db) == (["a", "b", "c"], True)


def test_integration_runs_in_batches_and_continues_the_chain(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sequencer, "BATCH", 7)
    _stage(store.db, [f"n{i}" for i in range(30)])
    store.db.integrate()
    _stage(store.db, ["last"])
    store.db.integrate()
    assert _log(store.db) == ([f"n{i}" for i in range(30)] + ["last"], True)


def test_the_thread_integrates_what_writers_commit(store: Store) -> None:
    seen: list[int] = []
    integrator = Integrator(store.db, lambda done: seen.append(done.entries), poll=0.05)
    integrator.start()
    try:
        writers = [
            threading.Thread(target=_stage, args=(store.db, [f"t{w}.{i}" for i in range(5)]))
            for w in range(8)
        ]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(30)
        deadline = time.monotonic() + 10
        while _staged(store.db) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        integrator.stop()
    names, intact = _log(store.db)
    assert intact and sorted(names) == sorted(f"t{w}.{i}" for w in range(8) for i in range(5))
    for w in range(8):  # each writer's entries in its own order
        assert [n for n in names if n.startswith(f"t{w}.")] == [f"t{w}.{i}" for i in range(5)]
    assert sum(seen) >= 40
    assert store.db.integrate_after_commit  # the service stopped: writers integrate again


_KILLER = """
import os, signal, sys
from vir.store import sequencer
from vir.store.db import Database

db = Database.connect(sys.argv[1])
sequencer.BATCH = 10
batches = []
real_write = sequencer._write

def write(*args):
    batches.append(1)
    if len(batches) == 3:  # two batches written, the third taken from staging: die
        sys.stdout.write("dying\\n"); sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_write(*args)

sequencer._write = write
db.integrate()
"""


def test_an_integrator_killed_mid_batch_loses_and_repeats_nothing(
    store: Store, tmp_path: Path
) -> None:
    names = [f"k{i}" for i in range(45)]
    _stage(store.db, names)
    url = store.db.engine.url.render_as_string(hide_password=False)
    died = subprocess.run(
        [sys.executable, "-c", _KILLER, url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert "dying" in died.stdout
    assert _log(store.db) == ([], True)  # its transaction died with it
    assert _staged(store.db) == 45
    store.db.integrate()  # the next integrator: everything, once, chained
    logged, intact = _log(store.db)
    assert intact and logged == names
    with store.db.read() as session:
        ids = session.scalars(select(AuditEntryRow.event_id)).all()
    assert len(ids) == len(set(ids))
    assert _staged(store.db) == 0


@pytest.mark.postgresql_only("writers and the integrator run at once on PostgreSQL only")
def test_an_event_staged_earlier_but_committed_later_is_integrated_once(store: Store) -> None:
    # A writer draws its staging id, then another writer stages and commits behind it:
    # the integrator takes the later event while the earlier one is invisible to it, and
    # leaves the earlier one staged, for the next integration to chain after it.
    early = store.db.engine.connect()
    transaction = early.begin()
    try:
        event = audit_log.new_event(
            Action.REPORT_GENERATED, Outcome.SUCCESS, T0, objects={"name": "early"}
        )
        audit_log._stage(early, [audit_log._row(event)])
        _stage(store.db, ["late"])
        store.db.integrate()
        assert _log(store.db) == (["late"], True)
        transaction.commit()
    finally:
        early.close()
    assert _staged(store.db) == 1
    store.db.integrate()
    assert _log(store.db) == (["late", "early"], True)
    assert _staged(store.db) == 0


@pytest.mark.sqlite_only("SQLite's page cache")
def test_integrating_leaves_the_pooled_connections_page_cache_as_it_was(store: Store) -> None:
    _stage(store.db, ["a"])
    with store.db.engine.connect() as connection, connection.begin():
        before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        done = sequencer.integrate(connection)
        assert done is not None and done.entries == 1
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == before
