"""``vir dev init --dev-dir DIR`` keeps its key holders beside DIR, by absolute paths.

Before: ``VIR_DEV_THRESHOLD=2-of-3 vir dev init --dev-dir /tmp/x/dev`` wrote
``VIR_KEYHOLDER_CLIENT_CA=<cwd>/.vir/dev/ca.crt`` (a file that does not exist) into
keyholders.json, and gave holder 1 the relative ``sqlite:///.vir/keyholder/keyholder.db``
and its keys under the working directory: holder 1 started elsewhere found neither.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url


@pytest.mark.sqlite_only(reason="the key holders' default databases are SQLite files")
def test_every_key_holder_path_follows_the_dev_dir(tmp_path: Path) -> None:
    work, dev = tmp_path / "work", tmp_path / "x" / "dev"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    env["VIR_DEV_THRESHOLD"] = "2-of-3"
    subprocess.run(
        [sys.executable, "-m", "vir.cli", "dev", "init", "--dev-dir", str(dev)],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    listing = json.loads((dev / "keyholders.json").read_text(encoding="utf-8"))
    assert len(listing) == 3
    inside = tmp_path / "x"
    for holder in listing:
        found = holder["env"]
        paths = {
            name: Path(value)
            for name, value in found.items()
            if name.endswith(("_DIR", "_CERT", "_KEY", "_CA", "_CRL"))
        }
        database = make_url(found["VIR_KEYHOLDER_DATABASE_URL"]).database
        assert database is not None
        paths["database"] = Path(database)
        for name, path in paths.items():
            assert path.is_absolute(), (holder["number"], name, path)
            assert path.is_relative_to(inside), (holder["number"], name, path)
            assert path.exists(), (holder["number"], name, path)
        assert found["VIR_KEYHOLDER_CLIENT_CA"] == str(dev / "ca.crt")
    assert not (work / ".vir" / "keyholder").exists()


@pytest.mark.sqlite_only(reason="the key holders' default databases are SQLite files")
def test_a_plain_init_after_a_threshold_one_keeps_it(tmp_path: Path) -> None:
    """``make run`` after ``make run-threshold`` (no VIR_DEV_THRESHOLD): the set-up it finds
    is kept. It once wrote one key holder and threshold 1 into endpoints.json over three
    holders' shares, and ``vir dev run`` then failed. A threshold asked for that differs
    from the keys' is refused, naming what to do, and changes nothing."""
    dev = tmp_path / "dev"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}

    def init(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vir.cli", "dev", "init", "--dev-dir", str(dev), *extra],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert init("--threshold", "2-of-3").returncode == 0
    written = {p: p.read_bytes() for p in (dev / "endpoints.json", dev / "keyholders.json")}
    again = init()
    assert again.returncode == 0, again.stderr
    assert "threshold 2-of-3" in again.stdout
    assert {p: p.read_bytes() for p in written} == written
    refused = init("--threshold", "1-of-1")
    assert refused.returncode != 0
    assert "another threshold" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert {p: p.read_bytes() for p in written} == written
