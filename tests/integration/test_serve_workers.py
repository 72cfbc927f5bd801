"""``VIR_WORKERS``: the index served by several processes on one port
(vir.server.workers), each an instance of its own on the one database, as vir@PORT
instances are: a signal registered through one is matched by one registered through
another; /metrics answers the sum of every worker's figures, whichever takes the
scrape; and SIGTERM stops them all cleanly."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.https import request
from support.service import RunningService, start_service
from support.signal_body import signal_body

from vir.client.canonical import nl_bsn
from vir.client.connection import VirClient
from vir.client.demo import made_up_bsn

pytestmark = pytest.mark.integration

WORKERS = 2


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    running = start_service(tmp_path / "workers", VIR_WORKERS=str(WORKERS))
    yield running
    running.stop()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _started(service: RunningService) -> int:
    return service.log().count("Application startup complete")


def _all_started(service: RunningService) -> None:
    deadline = time.monotonic() + 30  # the port answered once the first was up
    while _started(service) < WORKERS:
        assert time.monotonic() < deadline, "a worker did not start"
        time.sleep(0.1)


def test_signals_through_different_workers_match(service: RunningService) -> None:
    assert len(_children(service.process.pid)) == WORKERS
    _all_started(service)
    # Each pair on fresh connections, which the kernel hands to either worker: over
    # eight pairs, both workers serve some (the match is in the database either way).
    for n in range(8):
        child = nl_bsn(made_up_bsn())
        with VirClient.from_dev("education", service.dev) as school:
            made = school.pseudonymise([child])
            first = school.register_signal(
                signal_body(f"w-school-{n}", made.pseudonyms[0], made.epoch)
            )
            assert first["matches"] == []
        with VirClient.from_dev("gp", service.dev) as gp:
            made = gp.pseudonymise([child])
            second = gp.register_signal(signal_body(f"w-gp-{n}", made.pseudonyms[0], made.epoch))
        assert [(m["kind"], m["via"]) for m in second["matches"]] == [("person", "person")]


HEALTH = 'vir_http_requests_total{method="GET",route="/health",status="200"} '


def _health_count(service: RunningService) -> float:
    scraped = request(service.port, service.ca, "GET", "/metrics", cert=service.monitor())
    assert scraped.status == 200, scraped.body
    (line,) = [x for x in scraped.body.decode().splitlines() if x.startswith(HEALTH)]
    return float(line.removeprefix(HEALTH))


def test_metrics_count_the_requests_of_every_worker(service: RunningService) -> None:
    """Twenty requests on fresh connections, which the kernel spreads over the workers
    (all twenty on one has odds of one in half a million): every scrape, whichever
    worker takes it, counts all twenty, on top of what start_service's probes made."""
    _all_started(service)
    before = _health_count(service)
    for _ in range(20):
        assert request(service.port, service.ca, "GET", "/health").status == 200
    deadline = time.monotonic() + 10  # a request is counted once its answer is sent
    while _health_count(service) < before + 20:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert [_health_count(service) for _ in range(8)] == [before + 20] * 8


def test_sigterm_stops_every_worker_of_the_index(service: RunningService) -> None:
    workers = _children(service.process.pid)
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=20) == 0
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
