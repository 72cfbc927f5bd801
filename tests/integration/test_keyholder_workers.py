"""``VIR_KEYHOLDER_WORKERS``: several key-holder processes on one port (vir.server.workers).

They answer as one key holder (the same key, the same pseudonyms), spend one quota (the
buckets are in the database), and stop together: on SIGTERM cleanly, and when one of
them dies, all of them with a failure status, so a supervisor restarts the whole."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import refclient
from support.https import Reply, request
from support.service import RunningService, start_service

pytestmark = pytest.mark.integration

QUOTA = 64
BATCH = 8
WORKERS = 2


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    running = start_service(
        tmp_path / "workers",
        VIR_KEYHOLDER_WORKERS=str(WORKERS),
        VIR_KEYHOLDER_OPRF_PER_HOUR=str(QUOTA),
    )
    yield running
    running.stop()


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in found]


def _evaluate(service: RunningService, elements: list[bytes]) -> Reply:
    org = service.org("gp")
    body = json.dumps({"blinded_elements": [refclient.b64url_encode(e) for e in elements]})
    return request(
        service.keyholder_port,
        service.ca,
        "POST",
        "/v1/oprf/evaluate",
        body.encode(),
        (org.cert, org.key),
    )


def _wait_exit(process_pid: int, process: object, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code = process.poll()  # type: ignore[attr-defined]
        if code is not None:
            return int(code)
        time.sleep(0.05)
    raise AssertionError(f"process {process_pid} still runs after {seconds} s")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_the_workers_answer_as_one_key_holder_and_spend_one_quota(
    service: RunningService,
) -> None:
    holder = service.keyholders[0]
    workers = _children(holder.pid)
    assert len(workers) == WORKERS
    element = refclient.blind(b"x", 9)
    answers = set()
    # New connection each time: the kernel hands them to whichever worker accepts.
    for n in range(QUOTA // BATCH):
        reply = _evaluate(service, [element] * BATCH)
        assert reply.status == 200, (n, reply.body)
        answers.update(reply.json()["evaluated_elements"])
    assert len(answers) == 1  # one key, whichever worker answered
    refused = _evaluate(service, [element])
    assert refused.status == 429 and refused.json()["type"].endswith("rate-limited")
    entries = [
        json.loads(bytes(body))
        for (body,) in service.keyholder_sql("SELECT body FROM audit_entries ORDER BY seq")
    ]
    counted = [e["objects"]["elements"] for e in entries if e["action"] == "oprf.evaluate"]
    assert sum(counted) == QUOTA
    # Each worker built and started an application of its own.
    deadline = time.monotonic() + 30  # the port answered once the first was up
    while service.keyholder_log().count("Application startup complete") < WORKERS:
        assert time.monotonic() < deadline, "a worker did not start"
        time.sleep(0.1)


def test_sigterm_stops_every_worker_cleanly(service: RunningService) -> None:
    holder = service.keyholders[0]
    workers = _children(holder.pid)
    holder.send_signal(signal.SIGTERM)
    assert _wait_exit(holder.pid, holder) == 0
    assert all(_gone(pid) for pid in workers)


def test_a_worker_that_dies_stops_the_key_holder_with_a_failure(
    service: RunningService,
) -> None:
    holder = service.keyholders[0]
    dead, *others = _children(holder.pid)
    os.kill(dead, signal.SIGKILL)
    assert _wait_exit(holder.pid, holder) != 0
    assert all(_gone(pid) for pid in others)
    assert f"worker {dead} stopped" in service.keyholder_log()


def test_ctrl_c_at_a_terminal_stops_every_worker_cleanly(service: RunningService) -> None:
    """A terminal's Ctrl-C sends SIGINT to every process of the group: each worker
    gets it once from the terminal and a SIGTERM from the parent, and still stops
    gracefully, without a traceback."""
    holder = service.keyholders[0]
    workers = _children(holder.pid)
    for pid in [*workers, holder.pid]:
        os.kill(pid, signal.SIGINT)
    assert _wait_exit(holder.pid, holder) == 0
    assert all(_gone(pid) for pid in workers)
    assert "Traceback" not in service.keyholder_log()
