"""A bench driver of one checkout that imports another checkout's ``vir`` refuses to run:
an A/B comparison whose two arms run the same code measures only noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402


def test_the_same_checkout_passes() -> None:
    harness.check_own_vir(ROOT, ROOT / "vir" / "__init__.py")


def test_another_checkout_s_vir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="PYTHONPATH="):
        harness.check_own_vir(tmp_path, ROOT / "vir" / "__init__.py")


def test_a_copy_of_the_bench_importing_this_vir_stops(tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "bench").mkdir(parents=True)
    (other / "bench" / "harness.py").write_text(
        (ROOT / "bench" / "harness.py").read_text("utf-8"), "utf-8"
    )
    (other / "tests").symlink_to(ROOT / "tests")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path[:0] = [{str(other / 'bench')!r}]; import harness",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"imports vir from {ROOT}" in done.stderr
