"""``vir audit export`` as the user meets it: the file is written whole, 0600, or not
at all, and a refusal is one line that says what is wrong."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audit_tiles import append_events, edit_entry
from support.clirun import Ran, run_vir
from support.instore import fresh_store, template

from vir.crypto.signing import init_signing_key
from vir.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        yield store.db


def _one_line(ran: Ran) -> str:
    assert ran.out == ""
    assert ran.err.count("\n") == 1, ran.err
    return ran.err


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    init_signing_key(folder)
    return folder


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _export_to(db: Database, keys: Path, out: Path) -> Ran:
    return run_vir(db, "audit", "export", "--out", str(out), keys_dir=str(keys))


def test_an_export_is_written_for_its_owner_alone(db: Database, keys: Path, tmp_path: Path) -> None:
    append_events(db, 5)
    out = _folder(tmp_path) / "keep.export"
    old = os.umask(0o022)
    try:
        ran = _export_to(db, keys, out)
    finally:
        os.umask(old)
    assert ran.code == 0, ran.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["keep.export"]  # no temporary left


def test_a_failed_export_leaves_the_earlier_one_as_it_was(
    db: Database, keys: Path, tmp_path: Path
) -> None:
    append_events(db, 30)
    out = _folder(tmp_path) / "keep.export"
    assert _export_to(db, keys, out).code == 0
    kept = out.read_bytes()
    edit_entry(db, 20)
    ran = _export_to(db, keys, out)
    assert ran.code == 2
    assert _one_line(ran) == "vir: audit entry 20: content does not match its hash\n"
    assert out.read_bytes() == kept
    assert [p.name for p in out.parent.iterdir()] == ["keep.export"]  # no temporary left


def test_an_export_to_a_folder_that_is_not_there_is_refused_in_one_line(
    db: Database, keys: Path, tmp_path: Path
) -> None:
    append_events(db, 3)
    out = tmp_path / "nodir" / "x.export"
    ran = _export_to(db, keys, out)
    assert ran.code == 1
    assert _one_line(ran) == f"vir: cannot write {out}: no such folder: {out.parent}\n"
    ran = _export_to(db, keys, tmp_path)
    assert ran.code == 1
    assert _one_line(ran) == f"vir: cannot write {tmp_path}: it is a folder\n"
