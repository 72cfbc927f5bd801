"""Group-commit hooks are registered where the database is made, not by an import."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from support.instore import Store, fresh_store, template

from vir.store import audit_log, ratelimits
from vir.store.db import STORE_HOOKS, Database
from vir.store.write_group import BEFORE_COMMIT_HOOKS, WriterHooks, before_commit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "s.sqlite") as store:
        yield store


def test_every_database_has_the_store_hooks() -> None:
    assert audit_log.WRITER_HOOKS in STORE_HOOKS
    assert ratelimits.WRITER_HOOKS in STORE_HOOKS
    assert BEFORE_COMMIT_HOOKS in STORE_HOOKS


def test_importing_the_store_registers_nothing() -> None:
    """No module-level registry of hooks is left for an import to append to."""
    code = (
        "import vir.store.db as db, vir.store.audit_log, vir.store.ratelimits\n"
        "print([n for n in vars(db) if n.startswith('ON_WRITER')])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_hooks_given_to_a_database_see_each_writer(store: Store) -> None:
    seen: list[str] = []
    hooks = WriterHooks(lambda _s: seen.append("committed"), lambda _s: seen.append("rolled back"))
    db = Database(store.db.engine, hooks=[hooks])

    def fail(session: Session) -> None:
        session.execute(text("SELECT 1"))
        raise RuntimeError("refused")

    with db.write() as session:
        session.execute(text("SELECT 1"))
    with pytest.raises(RuntimeError), db.write() as session:
        fail(session)
    assert seen == ["committed", "rolled back"]


def test_a_write_out_runs_only_when_the_writers_block_succeeds(store: Store) -> None:
    written: list[str] = []

    class Refused(Exception):
        pass

    with pytest.raises(Refused), store.db.write() as session:
        before_commit(session, lambda _connection: written.append("refused"))
        raise Refused
    with store.db.write() as session:
        before_commit(session, lambda _connection: written.append("stored"))
        assert written == []  # not yet: just before the commit
    assert written == ["stored"]
    with pytest.raises(RuntimeError), store.db.read() as session:
        before_commit(session, lambda _connection: None)
