"""The long audit commands (checkpoint, export, verify of the database or of an export)
draw a progress bar on a terminal that ends at every entry (or byte), and none with
--quiet or when standard error is not a terminal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audit_tiles import append_events
from support.clirun import run_vir
from support.instore import fresh_store, template

from vir.crypto.signing import init_signing_key
from vir.domain.progress import told
from vir.store.db import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        append_events(store.db, 12_000)
        yield store.db


def _bars(err: str) -> list[tuple[int, int]]:
    return [(int(d), int(t)) for d, t in re.findall(r"\r\[[#.]{30}\] (\d+)/(\d+)", err)]


def test_checkpoint_export_and_verify_draw_a_bar_to_the_end(db: Database, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    export = tmp_path / "audit.export"
    ran = {
        "checkpoint": run_vir(db, "audit", "checkpoint", keys_dir=str(keys), tty=True),
        "export": run_vir(
            db, "audit", "export", "--out", str(export), keys_dir=str(keys), tty=True
        ),
        "verify": run_vir(db, "audit", "verify", keys_dir=str(keys), tty=True),
        "verify file": run_vir(
            db, "audit", "verify", str(export), "--verifier-key", _published(db, keys), tty=True
        ),
    }
    for name, result in ran.items():
        assert result.code == 0, (name, result.err)
        bars = _bars(result.err)
        assert len(bars) >= 3, (name, result.err[-300:])
        assert bars[0][0] == 0 and bars[-1][0] == bars[-1][1] > 0, (name, bars)
        assert [d for d, _ in bars] == sorted(d for d, _ in bars), (name, bars)
        assert result.err.endswith("\n"), name
    entries = _bars(ran["verify"].err)[-1][1]
    assert entries >= 12_000
    assert _bars(ran["verify file"].err)[-1][1] == export.stat().st_size


@pytest.mark.parametrize("quiet", [True, False])
def test_no_bar_with_quiet_or_off_a_terminal(db: Database, tmp_path: Path, quiet: bool) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    args = ("audit", "checkpoint", *(["--quiet"] if quiet else []))
    result = run_vir(db, *args, keys_dir=str(keys), tty=quiet)
    assert result.code == 0, result.err
    assert "[" not in result.err and "\r" not in result.err


def test_told_counts_items_or_their_size_and_ends_at_the_total() -> None:
    seen: list[tuple[int, int]] = []
    assert list(told(range(12), 12, lambda d, t: seen.append((d, t)), every=5)) == list(range(12))
    assert seen == [(0, 12), (5, 12), (10, 12), (12, 12)]
    seen.clear()
    chunks = [b"ab", b"cde", b"f"]
    assert list(told(chunks, 6, lambda d, t: seen.append((d, t)), every=3, size=len)) == chunks
    assert seen == [(0, 6), (5, 6), (6, 6)]
    seen.clear()
    list(told(range(4), 2, lambda d, t: seen.append((d, t)), every=3))  # more than expected
    assert seen == [(0, 2), (3, 3), (4, 4)]
    assert list(told(range(3), 3, None)) == [0, 1, 2]


def _published(db: Database, keys: Path) -> str:
    """The log's published verifier key, as ``vir audit key`` prints it."""
    printed = run_vir(db, "audit", "key", keys_dir=str(keys))
    assert printed.code == 0, printed.err
    return printed.out.strip()
