"""The batched registration figure pays one evaluation a batch of registrations
(``bench/harness.py``: ``vir_worker``), however the figure splits its registrations over
threads and turns, and its warm-up leaves no pseudonymised signal for the timed part.

When each worker kept its own batch and its warm-up filled it, turns of 300 over 16
threads (19 registrations a thread) found every signal pseudonymised before the clock
started: the figure measured registrations without their evaluations (session 49).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import harness


class _Client:
    """Counts what the worker asks of the client."""

    evaluations: ClassVar[list[int]] = []
    registered: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def pseudonymise(self, inputs: list[str]) -> Any:
        _Client.evaluations.append(len(inputs))
        return SimpleNamespace(epoch=1, pseudonyms=[f"p{i}" for i in range(len(inputs))])

    def register_signal(self, signal: dict[str, Any]) -> None:
        _Client.registered.append(signal)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> type[_Client]:
    monkeypatch.setattr(harness, "VirClient", _Client)
    _Client.evaluations.clear()
    _Client.registered.clear()
    return _Client


SERVICE = SimpleNamespace(
    org=lambda _category: SimpleNamespace(cert="c", key="k"),
    url="https://index",
    ca="ca",
    keyholder_urls=["https://holder"],
)


def test_turns_of_many_threads_pay_one_evaluation_a_batch(client: type[_Client]) -> None:
    factory = harness.vir_worker(SERVICE, "gp", batch=32)
    timed = 0
    for _turn in range(3):  # as harness.drive: new workers each turn, each warmed up first
        workers = [factory() for _ in range(16)]
        for worker in workers:
            worker(-1)
        warmups = len(client.evaluations)
        for i in range(300):
            workers[i % 16](i)
        timed += len(client.evaluations) - warmups
        client.evaluations[:] = []
    # 900 registrations, 32 a batch: 29 evaluations (28 full, one begun), none for free
    assert timed == 29
    assert len(client.registered) == 3 * (16 + 300)


def test_a_warm_up_pseudonymises_its_own_signal_alone(client: type[_Client]) -> None:
    worker = harness.vir_worker(SERVICE, "gp", batch=32)()
    worker(-1)
    assert client.evaluations == [2]  # a child and a parent
    worker(0)
    assert client.evaluations == [2, 64]  # the first timed call evaluates a whole batch


def test_one_at_a_time_evaluates_each_registration(client: type[_Client]) -> None:
    worker = harness.vir_worker(SERVICE, "education")()
    for i in range(5):
        worker(i)
    assert client.evaluations == [2] * 5
