"""/metrics of several worker processes on one port (vir.api.metrics_workers): the
scraped worker sums its siblings' figures into its own, over Unix sockets in a private
folder, and refuses the scrape rather than answer a partial sum."""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from test_metrics import parse, value

from vir.api import metrics_workers
from vir.api.metrics import Metrics, _Deliveries
from vir.api.metrics_workers import (
    GAUGES,
    MAX_SOCKET_PATH,
    Siblings,
    SiblingsUnavailable,
    merged,
    private_folder,
    snapshot,
)
from vir.domain.errors import ConfigurationError


def _worker(requests: int, job_at: float | None = None, *, process: bool = True) -> Metrics:
    metrics = Metrics(lambda: None, process=process)
    for _ in range(requests):
        metrics.observe_request("GET", "/health", 200, 0.004)
    metrics.observe_request("POST", "/v1/signals", 201, 0.3)
    if job_at is not None:
        metrics.job_succeeded("lifecycle", at=job_at)
    return metrics


def _text(metrics: Metrics) -> dict[str, dict[str, float]]:
    return parse(metrics.render())


def test_the_sum_of_one_is_what_the_worker_itself_shows() -> None:
    # Without the process's own figures, which move between two readings.
    metrics = _worker(3, job_at=1_700_000_000.0, process=False)
    mine = metrics.figures()
    assert generate_latest(merged([mine])) == generate_latest(metrics.registry)


def test_counters_and_histograms_are_summed_per_label_set() -> None:
    one, two = _worker(3), _worker(5)
    total = parse(generate_latest(merged([one.figures(), two.figures()])).decode())
    health = 'method="GET",route="/health",status="200"'
    assert value(total, "vir_http_requests_total", health) == 8
    signals = 'method="POST",route="/v1/signals",status="201"'
    assert value(total, "vir_http_requests_total", signals) == 2
    assert value(total, "vir_http_request_duration_seconds_count", 'route="/health"') == 8
    assert (
        value(total, "vir_http_request_duration_seconds_bucket", 'le="0.005",route="/health"') == 8
    )
    assert (
        value(total, "vir_http_request_duration_seconds_bucket", 'le="0.25",route="/v1/signals"')
        == 0
    )
    assert (
        value(total, "vir_http_request_duration_seconds_bucket", 'le="0.5",route="/v1/signals"')
        == 2
    )
    assert value(total, "vir_http_request_duration_seconds_sum", 'route="/v1/signals"') == 0.6


def _sample(figures: list[dict[str, Any]], name: str) -> float:
    (found,) = [s[2] for f in figures for s in f["samples"] if s[0] == name and not s[1]]
    return float(found)


def test_gauges_take_their_rule() -> None:
    one, two = _worker(1, job_at=1_700_000_000.0), _worker(1, job_at=1_700_000_500.0)
    first, second = one.figures(), two.figures()
    total = parse(generate_latest(merged([first, second])).decode())
    task = 'task="lifecycle"'
    assert value(total, "vir_job_last_success_timestamp_seconds", task) == 1_700_000_500.0
    memory = "process_resident_memory_bytes"
    assert value(total, memory) == _sample(first, memory) + _sample(second, memory) > 0
    start = "process_start_time_seconds"
    assert value(total, start) == min(_sample(first, start), _sample(second, start))
    cpu = "process_cpu_seconds_total"  # a counter: summed
    assert value(total, cpu) == pytest.approx(_sample(first, cpu) + _sample(second, cpu))


def test_every_gauge_a_server_shows_has_a_rule() -> None:
    """A gauge without one would take the largest value, which is wrong for an amount
    per process: a new gauge must say how its workers add up."""
    metrics = _worker(1, job_at=1.0)
    metrics.registry.register(_Deliveries(dict))  # no delivery: zeros, still shown
    gauges = {f["name"] for f in metrics.figures() if f["type"] == "gauge"}
    assert "vir_deliveries" in gauges and "process_open_fds" in gauges
    assert gauges <= set(GAUGES)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    private = tmp_path / "siblings"
    private.mkdir(mode=0o700)
    yield private


def test_workers_sum_each_others_figures_over_their_sockets(folder: Path) -> None:
    workers = [_worker(n + 1) for n in range(3)]
    siblings = [Siblings(folder, n, 3) for n in range(3)]
    try:
        for metrics, own in zip(workers, siblings, strict=True):
            metrics.share_with(own)
        health = 'method="GET",route="/health",status="200"'
        for metrics in workers:
            assert value(_text(metrics), "vir_http_requests_total", health) == 1 + 2 + 3
        sockets = sorted(folder.iterdir())
        assert [p.name for p in sockets] == ["worker-0.sock", "worker-1.sock", "worker-2.sock"]
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in sockets)
    finally:
        for own in siblings:
            own.close()
    assert list(folder.iterdir()) == []


def _deep(base: Path, length: int) -> Path:
    """A folder under ``base`` whose path is ``length`` bytes or a little longer."""
    deep = base
    while len(str(deep)) < length:
        deep = deep / "a-rather-long-folder-name"
    deep.mkdir(parents=True)
    return deep


def test_the_workers_folder_is_private_and_in_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made = private_folder(4)
    assert made.parent == tmp_path and made.name.startswith("vir-metrics-")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_a_temporary_folder_too_deep_for_a_socket_path_is_passed_over_for_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deep TMPDIR made every worker's socket path longer than Unix allows, and a
    server of several workers stopped at start. Their folder is then made in /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(_deep(tmp_path, MAX_SOCKET_PATH - 10)))
    made = private_folder(12)
    try:
        assert made.parent == Path("/tmp") and stat.S_IMODE(made.stat().st_mode) == 0o700
        workers = [_worker(n + 1) for n in range(12)]
        siblings = [Siblings(made, n, 12) for n in range(12)]
        for metrics, own in zip(workers, siblings, strict=True):
            metrics.share_with(own)
        health = 'method="GET",route="/health",status="200"'
        assert value(_text(workers[11]), "vir_http_requests_total", health) == sum(range(13))
        for own in siblings:
            own.close()
    finally:
        shutil.rmtree(made)


def test_a_socket_path_too_long_everywhere_is_refused_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = _deep(tmp_path, MAX_SOCKET_PATH)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    monkeypatch.setattr(metrics_workers, "_FALLBACK_TMP", deep)
    with pytest.raises(ConfigurationError, match=r"too long for the sockets of 2 workers.*TMPDIR"):
        private_folder(2)
    assert list(deep.iterdir()) == []


def test_a_sibling_that_does_not_answer_fails_the_scrape(folder: Path) -> None:
    metrics = _worker(1)
    own = Siblings(folder, 0, 2)
    metrics.share_with(own)
    try:
        with pytest.raises(SiblingsUnavailable, match="worker 1 did not answer"):
            metrics.render()
    finally:
        own.close()


def test_a_sibling_that_disagrees_on_a_type_fails_the_scrape() -> None:
    mine = snapshot(_worker(1).registry)
    theirs = [family | {"type": "gauge"} for family in mine if family["type"] == "counter"]
    with pytest.raises(SiblingsUnavailable, match="disagree"):
        merged([mine, theirs])
