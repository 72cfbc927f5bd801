"""Concurrent calls handled together (vir.services.combining)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

from support.world import World, world

from vir.domain.caller import Caller
from vir.domain.errors import Conflict
from vir.domain.intake import SignalRequest
from vir.services.combining import Combiner


class Recorder:
    """A ``handle`` that records its batches; the first one waits for ``release``."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[int]]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, key: str, items: Sequence[int]) -> list[int | BaseException]:
        if not self.batches:
            self.entered.set()
            assert self.release.wait(10)
        self.batches.append((key, list(items)))
        if key == "broken":
            raise RuntimeError("the store is gone")
        return [Conflict("a conflict") if item < 0 else item * 10 for item in items]


def _call(
    combiner: Combiner[str, int, int], key: str, item: int, answers: dict[int, object]
) -> None:
    try:
        answers[item] = combiner(key, item)
    except BaseException as error:  # the caller's own refusal (or interrupt)
        answers[item] = error


def _queued_behind_first(
    recorder: Recorder, combiner: Combiner[str, int, int], calls: list[tuple[str, int]]
) -> dict[int, object]:
    """The first of ``calls`` takes the turn and waits; the others queue meanwhile."""
    answers: dict[int, object] = {}
    first = threading.Thread(target=_call, args=(combiner, *calls[0], answers))
    first.start()
    assert recorder.entered.wait(10)
    others = []
    for key, item in calls[1:]:
        thread = threading.Thread(target=_call, args=(combiner, key, item, answers))
        thread.start()
        others.append(thread)
        while combiner.waiting() < len(others):  # queued in this order
            threading.Event().wait(0.001)
    recorder.release.set()
    for thread in (first, *others):
        thread.join(10)
        assert not thread.is_alive(), "a caller still waits"
    return answers


def test_a_call_alone_is_a_batch_of_one() -> None:
    recorder = Recorder()
    recorder.release.set()
    combiner = Combiner(recorder, most=32)
    assert combiner("a", 4) == 40
    assert recorder.batches == [("a", [4])]


def test_calls_that_arrive_meanwhile_are_one_batch_in_arrival_order() -> None:
    recorder = Recorder()
    combiner = Combiner(recorder, most=32)
    answers = _queued_behind_first(recorder, combiner, [("a", 1), ("a", 2), ("a", 3), ("a", 4)])
    assert recorder.batches == [("a", [1]), ("a", [2, 3, 4])]
    assert answers == {1: 10, 2: 20, 3: 30, 4: 40}


def test_a_refusal_is_raised_in_its_own_callers_thread_only() -> None:
    recorder = Recorder()
    combiner = Combiner(recorder, most=32)
    answers = _queued_behind_first(recorder, combiner, [("a", 1), ("a", 2), ("a", -3), ("a", 4)])
    assert isinstance(answers.pop(-3), Conflict)
    assert answers == {1: 10, 2: 20, 4: 40}


class BlocksA(Recorder):
    """Key "a"'s first batch waits for ``release``; every other batch is answered."""

    def __call__(self, key: str, items: Sequence[int]) -> list[int | BaseException]:
        if key == "a" and not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(10)
        self.batches.append((key, list(items)))
        if key == "broken":
            raise RuntimeError("the store is gone")
        return [item * 10 for item in items]


def test_another_keys_batch_does_not_wait_for_a_waiting_one() -> None:
    """Found by a review in stop 42: one busy flag for every key, so a batch that waited
    (on PostgreSQL for a lock held elsewhere, up to the 30 s lock timeout) held up every
    other caller of the process. Other keys' batches run meanwhile; a broken one
    refuses only its own."""
    recorder = BlocksA()
    combiner = Combiner(recorder, most=32)
    answers: dict[int, object] = {}
    first = threading.Thread(target=_call, args=(combiner, "a", 1, answers))
    first.start()
    assert recorder.entered.wait(10)  # a's batch waits
    queued = threading.Thread(target=_call, args=(combiner, "a", 4, answers))
    queued.start()
    while combiner.waiting() < 1:
        threading.Event().wait(0.001)
    for key, item in (("b", 2), ("broken", 3), ("b", 5)):
        _call(combiner, key, item, answers)  # answered while a's batch still waits
    assert 1 not in answers and 4 not in answers
    assert isinstance(answers.pop(3), RuntimeError)
    recorder.release.set()
    for thread in (first, queued):
        thread.join(10)
    assert recorder.batches == [("b", [2]), ("broken", [3]), ("b", [5]), ("a", [1]), ("a", [4])]
    assert answers == {1: 10, 2: 20, 4: 40, 5: 50}


def test_a_batch_holds_at_most_most_and_the_rest_follow() -> None:
    recorder = Recorder()
    combiner = Combiner(recorder, most=2)
    answers = _queued_behind_first(recorder, combiner, [("a", i) for i in range(1, 7)])
    assert [items for _key, items in recorder.batches] == [[1], [2, 3], [4, 5], [6]]
    assert answers == {i: 10 * i for i in range(1, 7)}


class Interrupted(Recorder):
    """The first batch waits for ``release``; every later one is interrupted."""

    def __call__(self, key: str, items: Sequence[int]) -> list[int | BaseException]:
        if self.batches:
            self.batches.append((key, list(items)))
            raise KeyboardInterrupt
        return super().__call__(key, items)


def test_an_interrupt_leaves_no_caller_waiting() -> None:
    """Whatever stops the thread that handles a batch, every caller whose item it took
    gets the interrupt as its answer: none waits forever."""
    recorder = Interrupted()
    combiner = Combiner(recorder, most=32)
    answers = _queued_behind_first(recorder, combiner, [("a", 1), ("a", 2), ("a", 3)])
    assert recorder.batches == [("a", [1]), ("a", [2, 3])]
    assert answers[1] == 10
    assert isinstance(answers[2], KeyboardInterrupt) and isinstance(answers[3], KeyboardInterrupt)


def test_registrations_arriving_together_are_registered_together(tmp_path: Path) -> None:
    """Sixteen threads register at once: fewer write transactions than registrations,
    and the same matches as one after the other (every child twice: one match each)."""
    with world(tmp_path) as w:
        sizes: list[int] = []
        combined = w.signals._combined
        handle = combined._handle

        def counted(caller: Caller, requests: Sequence[SignalRequest]) -> Sequence[object]:
            sizes.append(len(requests))
            return handle(caller, requests)

        combined._handle = counted  # type: ignore[assignment]
        children = [f"kind{i}" for i in range(24)]
        threads = [  # two threads an organisation: the second repeats the first's signals
            threading.Thread(target=_registers, args=(w, org, children)) for org in (0, 1, 0, 1)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sum(sizes) == 2 * len(children) * 2  # each org's signal, and its repeat
        assert len(sizes) < sum(sizes)
        created = [n for n in w.notifications() if n["type"] == "match.created"]
        assert len(created) == 2 * len(children)  # one match a child, told to both


def _registers(w: World, org: int, children: list[str]) -> None:
    for child in children:
        w.register(org, child, ref=f"{org}-{child}")


# --- Callers on an event loop (Combiner.submit) ---------------------------------------


async def _submitted(
    recorder: Recorder, combiner: Combiner[str, int, int], calls: list[tuple[str, int]]
) -> dict[int, object]:
    """The first of ``calls`` is handled in a worker thread and waits there; the
    others are submitted meanwhile, in this order, then the first is released."""

    async def call(key: str, item: int) -> None:
        try:
            answers[item] = await combiner.submit(key, item)
        except Exception as error:  # the caller's own refusal
            answers[item] = error

    answers: dict[int, object] = {}
    first = asyncio.create_task(call(*calls[0]))
    assert await asyncio.to_thread(recorder.entered.wait, 10)
    others = [asyncio.create_task(call(key, item)) for key, item in calls[1:]]
    await asyncio.sleep(0)  # each has queued its item
    recorder.release.set()
    await asyncio.wait_for(asyncio.gather(first, *others), 10)
    return answers


def test_a_submitted_call_alone_is_a_batch_of_one() -> None:
    recorder = Recorder()
    recorder.release.set()
    combiner = Combiner(recorder, most=32)
    assert asyncio.run(combiner.submit("a", 4)) == 40
    assert recorder.batches == [("a", [4])]


def test_submitted_calls_that_arrive_meanwhile_are_one_batch_in_arrival_order() -> None:
    recorder = Recorder()
    combiner = Combiner(recorder, most=32)
    answers = asyncio.run(_submitted(recorder, combiner, [("a", 1), ("a", 2), ("a", -3), ("a", 4)]))
    assert recorder.batches == [("a", [1]), ("a", [2, -3, 4])]
    assert isinstance(answers.pop(-3), Conflict)  # its own caller's refusal only
    assert answers == {1: 10, 2: 20, 4: 40}


def test_a_submitted_batch_holds_at_most_most_and_other_keys_do_not_wait() -> None:
    recorder = BlocksA()
    combiner = Combiner(recorder, most=2)

    async def scenario() -> dict[int, object]:
        answers: dict[int, object] = {}

        async def call(key: str, item: int) -> None:
            try:
                answers[item] = await combiner.submit(key, item)
            except Exception as error:
                answers[item] = error

        first = asyncio.create_task(call("a", 1))
        assert await asyncio.to_thread(recorder.entered.wait, 10)  # a's batch waits
        queued = [asyncio.create_task(call("a", i)) for i in (4, 5, 6)]
        for key, item in (("b", 2), ("broken", 3), ("b", 7)):
            await call(key, item)  # answered while a's batch still waits
        assert not {1, 4, 5, 6} & answers.keys()
        recorder.release.set()
        await asyncio.wait_for(asyncio.gather(first, *queued), 10)
        return answers

    answers = asyncio.run(scenario())
    assert isinstance(answers.pop(3), RuntimeError)  # a broken batch refuses its own
    assert answers == {1: 10, 2: 20, 4: 40, 5: 50, 6: 60, 7: 70}
    assert [batch for batch in recorder.batches if batch[0] == "a"] == [
        ("a", [1]),
        ("a", [4, 5]),
        ("a", [6]),
    ]


def test_a_caller_that_stops_waiting_leaves_the_batch_and_the_others_answered() -> None:
    """A request whose client went away is cancelled; its item, already taken into a
    batch, is still handled (as a thread's would be), and the others get their answers."""
    recorder = Recorder()
    combiner = Combiner(recorder, most=32)

    async def scenario() -> tuple[list[object], bool]:
        first = asyncio.create_task(combiner.submit("a", 1))
        assert await asyncio.to_thread(recorder.entered.wait, 10)
        gone = asyncio.create_task(combiner.submit("a", 2))
        stays = asyncio.create_task(combiner.submit("a", 3))
        await asyncio.sleep(0)
        gone.cancel()
        recorder.release.set()
        answers = await asyncio.wait_for(asyncio.gather(first, stays), 10)
        return list(answers), gone.cancelled()

    answers, cancelled = asyncio.run(scenario())
    assert answers == [10, 30] and cancelled
    assert recorder.batches == [("a", [1]), ("a", [2, 3])]


def test_a_stopped_batch_leaves_no_submitted_caller_waiting() -> None:
    """The loop stopping the batch's driver (a shutdown): every caller whose item it
    took, or that queued behind it, is answered with the cancellation; none waits."""
    recorder = Recorder()
    combiner = Combiner(recorder, most=32)

    async def scenario() -> list[BaseException | int]:
        first = asyncio.create_task(combiner.submit("a", 1))
        assert await asyncio.to_thread(recorder.entered.wait, 10)
        queued = asyncio.create_task(combiner.submit("a", 2))
        await asyncio.sleep(0)
        for driver in list(combiner._drivers):
            driver.cancel()
        outcomes = await asyncio.wait_for(asyncio.gather(first, queued, return_exceptions=True), 10)
        recorder.release.set()
        return list(outcomes)

    outcomes = asyncio.run(scenario())
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    assert combiner._waiting_on_loop == {}
