"""Hostile input to the workers' /metrics exchange (vir.api.metrics_workers): a peer on
a worker's socket, a fake sibling that sends junk or too much, and the scrape that
meets it (503 problem+json, no partial sum, nothing of the peer's answer echoed)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inapp import in_app

from vir.api.metrics import Metrics
from vir.api.metrics_workers import MAX_SNAPSHOT_BYTES, Siblings, SiblingsUnavailable, checked


def _worker(requests: int) -> Metrics:
    metrics = Metrics(lambda: None, process=False)
    for _ in range(requests):
        metrics.observe_request("GET", "/health", 200, 0.004)
    return metrics


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    private = tmp_path / "siblings"
    private.mkdir(mode=0o700)
    yield private


def _fake_sibling(folder: Path, index: int, answer: bytes) -> socket.socket:
    """A socket where sibling ``index`` would be, answering ``answer`` to everyone."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(folder / f"worker-{index}.sock"))
    listener.listen(4)

    def run() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(answer)

    threading.Thread(target=run, daemon=True).start()
    return listener


GOOD_FAMILY = {"name": "vir_x_total", "type": "counter", "help": "x", "samples": []}
NOT_SNAPSHOTS = {
    "not json": b"\xff\xfe",
    "not a list": b'{"a": 1}',
    "a family without samples": json.dumps([{"name": "x", "type": "counter", "help": ""}]).encode(),
    "an extra key": json.dumps([GOOD_FAMILY | {"extra": 1}]).encode(),
    "a name with a space": json.dumps([GOOD_FAMILY | {"name": "vir x"}]).encode(),
    "an unknown type": json.dumps([GOOD_FAMILY | {"type": "bogus"}]).encode(),
    "a label that is a number": json.dumps(
        [GOOD_FAMILY | {"samples": [["vir_x_total", {"a": 1}, 1.0]]}]
    ).encode(),
    "a label name with a brace": json.dumps(
        [GOOD_FAMILY | {"samples": [["vir_x_total", {"a}": "b"}, 1.0]]}]
    ).encode(),
    "a value that is text": json.dumps(
        [GOOD_FAMILY | {"samples": [["vir_x_total", {}, "1"]]}]
    ).encode(),
    "a value that is true": json.dumps(
        [GOOD_FAMILY | {"samples": [["vir_x_total", {}, True]]}]
    ).encode(),
    "NaN": b'[{"name": "vir_x_total", "type": "counter", "help": "", '
    b'"samples": [["vir_x_total", {}, NaN]]}]',
    "a sample of two": json.dumps([GOOD_FAMILY | {"samples": [["vir_x_total", {}]]}]).encode(),
}


@pytest.mark.parametrize("name", sorted(NOT_SNAPSHOTS))
def test_what_is_not_a_snapshot_is_refused(name: str) -> None:
    with pytest.raises(SiblingsUnavailable, match="could not be read"):
        checked(NOT_SNAPSHOTS[name])


def test_a_sibling_that_sends_junk_or_too_much_fails_the_scrape(folder: Path) -> None:
    metrics = _worker(1)
    own = Siblings(folder, 0, 2)
    metrics.share_with(own)
    try:
        fake = _fake_sibling(folder, 1, b"not json")
        with pytest.raises(SiblingsUnavailable, match="could not be read"):
            metrics.render()
        fake.close()
        (folder / "worker-1.sock").unlink()
        fake = _fake_sibling(folder, 1, b"[" + b" " * MAX_SNAPSHOT_BYTES + b"]")
        with pytest.raises(SiblingsUnavailable, match="sent too much"):
            metrics.render()
        fake.close()
    finally:
        own.close()


def test_what_a_connection_sends_the_worker_is_not_read(folder: Path) -> None:
    """A worker's socket only ever writes its figures: whatever a peer sends is never
    read (the peer may see its connection reset), and the worker goes on answering."""
    metrics = _worker(2)
    own = Siblings(folder, 0, 2)
    metrics.share_with(own)
    try:
        for _ in range(3):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
                peer.connect(str(folder / "worker-0.sock"))
                with contextlib.suppress(ConnectionError):  # reset, or a broken pipe
                    peer.sendall(b"GET /secrets\r\n" * 1000)
                    while peer.recv(65536):
                        pass
        assert Siblings(folder, 1, 2).gather() == [metrics.figures()]
    finally:
        own.close()


def test_a_scrape_that_meets_a_bad_sibling_is_a_503_problem(tmp_path: Path, folder: Path) -> None:
    with in_app(tmp_path) as app:
        own = Siblings(folder, 0, 2)
        app.app.state.metrics.share_with(own)
        try:
            fake = _fake_sibling(folder, 1, b'{"secret": "vir_leak_marker"}')
            refused = app.scrape("/metrics", peer="127.0.0.1")
            fake.close()
        finally:
            own.close()
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:vir:problem:metrics-unavailable"
    assert "vir_leak_marker" not in refused.text


def test_a_worker_whose_figures_fail_once_answers_again(folder: Path) -> None:
    """A failure to collect (a collector raising) fails that scrape only: the worker's
    socket goes on answering."""
    metrics = _worker(1)
    calls = {"n": 0}
    figures = metrics.figures

    def failing_once() -> list[dict[str, object]]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("collector failed")
        return figures()

    own = Siblings(folder, 0, 2)
    own.serve(failing_once)
    try:
        asker = Siblings(folder, 1, 2)
        with pytest.raises(SiblingsUnavailable):
            asker.gather()
        assert asker.gather() == [metrics.figures()]
    finally:
        own.close()
