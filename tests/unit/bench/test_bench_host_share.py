"""The bench says when the host took the machine's CPU while a figure was measured
(``bench/harness.py``: ``HostShare``, ``host_note``): a ratio measured while the
hypervisor stole a tenth of the cores is not a measurement of vir."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import harness


def _ticks(*, busy: int, idle: int, iowait: int = 0, steal: int = 0) -> list[int]:
    # user nice system idle iowait irq softirq steal
    return [busy, 0, 0, idle, iowait, 0, 0, steal]


def test_the_share_is_taken_from_the_difference_of_two_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter(
        [
            _ticks(busy=1000, idle=5000, iowait=10, steal=40),
            _ticks(busy=1700, idle=5200, iowait=30, steal=120),
        ]
    )
    monkeypatch.setattr(harness, "_host_ticks", lambda: next(readings))
    with harness.HostShare() as host:
        pass
    # 700 busy + 200 idle + 20 iowait + 80 steal = 1,000 ticks over the stretch
    assert host.found["steal_percent"] == 8.0
    assert host.found["iowait_percent"] == 2.0
    assert host.found["busy_percent"] == 78.0  # neither idle nor waiting for the disk
    assert "UNRELIABLE" in harness.host_note(host.found)


def test_a_quiet_host_is_noted_without_a_warning() -> None:
    assert harness.host_note({"steal_percent": 0.4}) == " [host steal 0.4%]"
    assert harness.host_note({"steal_percent": harness.STEAL_WARNING_PERCENT}).endswith("%]")
    assert harness.host_note(None) == ""


def test_the_share_of_this_machine_reads_proc_stat() -> None:
    with harness.HostShare() as host:
        deadline = time.process_time() + 0.3
        while time.process_time() < deadline:
            pass
    found = host.found
    assert set(found) == {"steal_percent", "busy_percent", "iowait_percent", "seconds"}
    assert found["busy_percent"] > 0 and 0 <= found["steal_percent"] <= 100
    assert found["seconds"] > 0
