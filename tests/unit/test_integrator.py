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
    monkeypatch.setattr(sequencer, "_NEXT_STAGED", sequencer._NEXT_STAGED.limit(7))
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
sequencer._NEXT_STAGED = sequencer._NEXT_STAGED.limit(10)
chain = sequencer._chain
batches = []
real_insert = sequencer.insert

def insert(table):
    if table is sequencer._ENTRIES:
        batches.append(1)
        if len(batches) == 3:  # two batches written, the third under way: die
            sys.stdout.write("dying\\n"); sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    return real_insert(table)

sequencer.insert = insert
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
