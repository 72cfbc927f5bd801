"""The writers' gate across processes (vir.store.writer_gate): SQLite writers of
different processes queue on a ``flock`` instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import multiprocessing
import stat
import statistics
import threading
import time
from pathlib import Path

from sqlalchemy import text

from vir.store.db import Database
from vir.store.migrate import upgrade
from vir.store.writer_gate import WriterGate


def test_the_gate_admits_one_holder_and_gives_up_after_its_patience(tmp_path: Path) -> None:
    database = tmp_path / "vir.db"
    first, second = WriterGate(database, 5.0), WriterGate(database, 0.2)
    try:
        assert first.enter()
        began = time.monotonic()
        assert not second.enter()  # held elsewhere: waits its patience, then goes on
        assert 0.2 <= time.monotonic() - began < 2.0
        first.leave()
        assert second.enter()
        second.leave()
    finally:
        first.close()
        second.close()
    gate = tmp_path / "vir.db-writers"
    assert stat.S_IMODE(gate.stat().st_mode) == 0o600
    assert gate.read_bytes() == b""  # it holds nothing


def test_a_waiting_writer_enters_as_soon_as_the_gate_is_left(tmp_path: Path) -> None:
    """Within milliseconds, where SQLite's busy handler sleeps up to 100 ms between
    tries: the median of five handoffs, so that one late thread wake-up on a loaded
    machine does not decide it."""
    database = tmp_path / "vir.db"
    holder, waiter = WriterGate(database, 5.0), WriterGate(database, 5.0)
    handoffs = []
    try:
        for _ in range(5):
            entered = threading.Event()
            assert holder.enter()

            def wait(entered: threading.Event = entered) -> None:
                waiter.enter()
                entered.set()

            thread = threading.Thread(target=wait)
            thread.start()
            assert not entered.wait(0.1)
            holder.leave()
            left = time.monotonic()
            assert entered.wait(2.0)
            handoffs.append(time.monotonic() - left)
            thread.join()
            waiter.leave()
    finally:
        holder.close()
        waiter.close()
    assert statistics.median(handoffs) < 0.05, handoffs


def _write_rows(url: str, start: int, count: int) -> None:
    db = Database.connect(url)
    try:
        for n in range(start, start + count):
            with db.write() as session:
                session.execute(text("INSERT INTO gate_probe (n) VALUES (:n)"), {"n": n})
    finally:
        db.dispose()


def test_writers_of_several_processes_all_commit_through_the_gate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vir.db'}"
    upgrade(url)
    db = Database.connect(url)
    try:
        with db.write() as session:
            session.execute(text("CREATE TABLE gate_probe (n INTEGER PRIMARY KEY)"))
        context = multiprocessing.get_context("spawn")
        writers = [context.Process(target=_write_rows, args=(url, p * 200, 200)) for p in range(3)]
        for process in writers:
            process.start()
        for process in writers:
            process.join(60)
            assert process.exitcode == 0
        with db.read() as session:
            count = session.execute(text("SELECT count(*) FROM gate_probe")).scalar_one()
        assert count == 600
        # The writers' processes have ended: whatever they held of the gate is free.
        assert db._gate is not None and db._gate.enter()
        db._gate.leave()
    finally:
        db.dispose()
