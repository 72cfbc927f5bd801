"""The scale-out figure (``bench/scaleout.py``) is measured against a drifting host and
says what bounds it.

The process counts take turns, in rotation, and a ratio is the median of the ratios of
turns measured side by side (``turn_order``, ``ratios``, ``combined``): measured one
after the other, the first count got one host and the last another. And ``bound``: the
cores every process kept busy with one ``vir serve`` process, and the cores 1.3 times
that throughput would need at the same CPU a registration; a ratio target the machine
has no cores for is shown as such, next to the ratio."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import harness
import scaleout


def _setting(processes: int, concurrency: int, per_second: float, *cpu: float) -> dict[str, Any]:
    names = ("vir_serve", "keyholder", "postgres", "client")
    return {
        "processes": processes,
        "concurrency": concurrency,
        "per_second": per_second,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "cpu_ms_per_operation": dict(zip(names, cpu, strict=True)),
        "peak_rss_mb": {"vir_serve": 1, "keyholder": 1, "postgres": 1, "client": 1},
    }


# Stop 48's run at 3db4f19: 357.0/s at 4.19 ms a registration, two processes 314.3/s.
SETTINGS = [
    _setting(1, 16, 357.0, 1.538, 1.025, 0.662, 0.962),
    _setting(2, 16, 314.3, 2.375, 1.25, 1.138, 1.023),
    _setting(1, 32, 400.0, 1.0, 1.0, 0.5, 0.5),
]


def test_the_bound_is_the_cores_one_process_keeps_busy_times_the_target() -> None:
    found = scaleout.bound(SETTINGS, cores=2)
    at16 = found["by_concurrency"]["16"]
    # 357.0 registrations a second x 4.187 ms = 1.49 cores; 1.3 x that = 1.94
    assert at16["cores_busy_one_process"] == 1.49
    assert at16["cores_needed_for_target"] == 1.94
    assert at16["cpu_ms_per_registration"] == {"1": 4.187, "2": 5.786}
    # a concurrency measured with one process only: no other count to show
    assert found["by_concurrency"]["32"]["cpu_ms_per_registration"] == {"1": 3.0}
    assert found["by_concurrency"]["32"]["cores_needed_for_target"] == 1.56
    assert found["cores"] == 2 and found["target"] == 1.3


def test_no_one_process_setting_no_bound() -> None:
    assert scaleout.bound(SETTINGS[1:2], cores=2)["by_concurrency"] == {}


def test_the_summary_shows_the_bound_beside_the_ratios() -> None:
    found = {
        "settings": SETTINGS,
        "ratios": scaleout.ratios(SETTINGS),
        "never_falls": scaleout.never_falls(SETTINGS),
        "bound": scaleout.bound(SETTINGS, cores=2),
    }
    lines = scaleout.summary(found)
    assert (
        "at 16: one process kept 1.49 of 2 cores busy; 1.3 x its throughput at its CPU a "
        "registration needs 1.94; CPU ms a registration, all processes, by vir serve "
        "processes: 1: 4.187, 2: 5.786"
    ) in lines
    # a report of an older run, without the bound, still reads
    del found["bound"]
    assert not any(line.startswith("at 16:") for line in scaleout.summary(found))


def _turns(processes: int, *rates: float) -> dict[str, Any]:
    found = _setting(processes, 16, statistics.median(rates), 1, 1, 1, 1)
    return {**found, "per_second_turns": list(rates)}


def test_a_ratio_is_the_median_of_the_turns_measured_side_by_side() -> None:
    # The host slowed and sped up: each round's two turns saw the same host.
    one = _turns(1, 100.0, 200.0, 400.0)
    two = _turns(2, 150.0, 180.0, 500.0)
    # round ratios 1.5, 0.9, 1.25: median 1.25 (the medians' ratio, 180 / 200, is 0.9)
    assert scaleout.ratios([one, two]) == {"2/1": {"16": 1.25}}
    # settings measured once each still give their plain ratio
    assert scaleout.ratios(SETTINGS[:2]) == {"2/1": {"16": 0.88}}


def test_every_count_takes_each_place_in_a_round_in_turn() -> None:
    orders = [harness.turn_order([1, 2, 4], turn) for turn in range(3)]
    assert orders == [[1, 2, 4], [2, 4, 1], [4, 1, 2]]
    assert {o[0] for o in orders} == {1, 2, 4} and {o[-1] for o in orders} == {1, 2, 4}


def test_turns_combine_into_one_setting() -> None:
    turns = [
        {**_setting(2, 16, rate, cpu, 1.0, 0.5, 1.0), "operations": 400}
        for rate, cpu in ((180.0, 3.0), (250.0, 2.0), (200.0, 2.5))
    ]
    latencies = [0.001 * i for i in range(1, 101)]  # 1..100 ms over every turn
    found = harness.combined(turns, latencies)
    assert found["per_second"] == 200.0 and found["per_second_turns"] == [180.0, 250.0, 200.0]
    assert found["operations"] == 1200
    assert found["cpu_ms_per_operation"]["vir_serve"] == 2.5
    assert found["p50_ms"] == 51.0 and found["p99_ms"] == 100.0
