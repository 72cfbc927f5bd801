"""What an error no command foresaw prints: its class and where, never its text.

A database's exception quotes the statement and its values (pseudonyms among them);
others quote input. Found by a privacy audit: on PostgreSQL an integrity or data
error in a command printed Python's traceback with ``[parameters: ...]``, and ``vir
worker`` printed each failed job's traceback with its SQL (it set up no logging).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy.exc
from support.clirun import run_vir
from support.instore import fresh_store, template

from vir import cli

SECRET = "c2VjcmV0LXBzZXVkb255bQ"  # stands in for a pseudonym in a statement's values


def _failing(*_args: object) -> int:
    raise sqlalchemy.exc.IntegrityError(
        "INSERT INTO signals (person) VALUES (?)", {"person": SECRET}, Exception("UNIQUE")
    )


def test_a_database_error_is_one_line_without_its_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "cmd_address_list", _failing)
    monkeypatch.delenv(cli.TRACEBACK_SETTING, raising=False)
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        ran = run_vir(store.db, "address", "list")
    assert ran.code == 70
    (line,) = ran.err.splitlines()
    assert line.startswith("vir: the command stopped on an unexpected error: IntegrityError at ")
    assert "VIR_TRACEBACK=1" in line
    for secret in (SECRET, "INSERT", "UNIQUE", "Traceback"):
        assert secret not in ran.err + ran.out


def test_the_traceback_is_there_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "cmd_address_list", _failing)
    monkeypatch.setenv(cli.TRACEBACK_SETTING, "1")
    with (
        fresh_store(template(tmp_path), tmp_path / "store.db") as store,
        pytest.raises(sqlalchemy.exc.IntegrityError),
    ):
        run_vir(store.db, "address", "list")


@pytest.mark.sqlite_only("the table is renamed in the SQLite file under the worker")
def test_vir_worker_logs_a_failed_job_as_one_json_line(tmp_path: Path) -> None:
    database = tmp_path / "vir.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    env |= {"VIR_DATABASE_URL": f"sqlite:///{database}", "VIR_KEYS_DIR": str(tmp_path / "k")}
    subprocess.run(
        [sys.executable, "-m", "vir.cli", "db", "upgrade"], env=env, check=True, timeout=120
    )
    with sqlite3.connect(database) as connection:
        connection.execute("ALTER TABLE deliveries RENAME TO deliveries_gone")
    worker = subprocess.Popen(
        [sys.executable, "-m", "vir.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    assert "delivery worker running" in out
    assert '"event":"job.failed"' in err
    for raw in ("Traceback", "[SQL:", "[parameters:", "OperationalError: no such table"):
        assert raw not in err


def test_an_oserror_says_its_errno(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``vir serve`` with several workers binds its port itself: a port in use was "an
    unexpected error: OSError", without why."""

    def in_use(*_args: object) -> int:
        raise OSError(98, "[Errno 98] error while attempting to bind on ('127.0.0.1', 8443)")

    monkeypatch.setattr(cli, "cmd_address_list", in_use)
    monkeypatch.delenv(cli.TRACEBACK_SETTING, raising=False)
    with fresh_store(template(tmp_path), tmp_path / "store.db") as store:
        ran = run_vir(store.db, "address", "list")
    assert ran.code == 70
    assert "OSError EADDRINUSE (Address already in use) at " in ran.err
    assert "8443" not in ran.err
