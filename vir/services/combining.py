"""Concurrent calls handled together, in one batch per key (flat combining).

Each calling thread puts its item in its key's queue; when no batch of that key is
being handled, it takes what is queued under the key (its own item and those that
arrived meanwhile, up to ``most``) and hands it to ``handle`` in one go, in arrival
order; each caller then returns its own item's answer or raises its own item's refusal.
When no one else is waiting, a call is a batch of one: nothing waits for company.
Batches of different keys run side by side: a key's batch that waits (for a lock held
elsewhere, up to the lock timeout) holds up only its own key's callers.

This is how a registration costs what a batched one does (``SignalService.register``):
the registrations of one caller that queue while its batch is registered are registered
in one transaction, as ``POST /v1/signals/batch`` would (the same ``register_many``),
instead of one after the other. On SQLite one write transaction runs at a time anyway;
on PostgreSQL a batch saves the process and the server most of their work per
registration (docs/concurrency.md, "Registrations combined").
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


class _Waiting(Generic[T, R]):
    __slots__ = ("answer", "done", "item")

    def __init__(self, item: T) -> None:
        self.item = item
        self.answer: R | BaseException | None = None
        self.done = False


class Combiner(Generic[K, T, R]):
    def __init__(
        self,
        handle: Callable[[K, Sequence[T]], Sequence[R | BaseException]],
        most: int,
    ) -> None:
        """``handle(key, items)``: an answer or a refusal for each item, in order; an
        exception it raises is every item's refusal."""
        self._handle = handle
        self._most = most
        self._queues: dict[K, list[_Waiting[T, R]]] = {}
        # Guards the queues and ``_busy``; a waiting caller sleeps on it until a batch
        # is done (not on a lock of its own turn: each caller woken in turn only to
        # find its item done would let the queue fill one item at a time).
        self._changed = threading.Condition()
        self._busy: set[K] = set()  # keys whose batch a thread is handling
        # ``submit``'s callers, on an event loop: (loop, key) -> queued; touched on that
        # loop only.
        self._waiting_on_loop: dict[tuple[asyncio.AbstractEventLoop, K], list[Any]] = {}
        self._drivers: set[asyncio.Task[None]] = set()

    def waiting(self) -> int:
        """How many calls are queued, not yet taken into a batch."""
        with self._changed:
            return sum(len(queue) for queue in self._queues.values())

    def __call__(self, key: K, item: T) -> R:
        """``item``'s answer, handled with whatever is queued beside it under ``key``."""
        waiting: _Waiting[T, R] = _Waiting(item)
        with self._changed:
            self._queues.setdefault(key, []).append(waiting)
            while not waiting.done:
                if key in self._busy:
                    self._changed.wait()
                    continue
                self._busy.add(key)
                queue = self._queues.pop(key)
                taken, rest = queue[: self._most], queue[self._most :]
                if rest:
                    self._queues[key] = rest
                self._changed.release()
                try:
                    self._handle_batch(key, taken)
                finally:
                    self._changed.acquire()
                    self._busy.discard(key)
                    self._changed.notify_all()
        answer = waiting.answer
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]  # set by _handle_batch

    async def submit(self, key: K, item: T) -> R:
        """``item``'s answer, from a caller on an event loop: as ``__call__``, but the
        caller does not take a thread while it waits. The items of one key that queue
        while a batch of it is handled go to a worker thread in one trip, the next batch;
        a batch's answers come back to the loop in one trip too."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        waiting: _Waiting[T, R] = _Waiting(item)
        future: asyncio.Future[None] = loop.create_future()
        queue = self._waiting_on_loop.get(slot)
        if queue is None:
            queue = self._waiting_on_loop[slot] = [(waiting, future)]
            driving = loop.create_task(self._drive(slot))
            self._drivers.add(driving)  # the loop keeps only a weak reference
            driving.add_done_callback(self._drivers.discard)
        else:
            queue.append((waiting, future))
        await future
        answer = waiting.answer
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]  # set by _handle_batch

    async def _drive(self, slot: tuple[asyncio.AbstractEventLoop, K]) -> None:
        """Hand ``slot``'s queue to a worker thread batch by batch until it is empty."""
        key = slot[1]
        queue = self._waiting_on_loop[slot]
        try:
            while queue:
                taken, queue[:] = queue[: self._most], queue[self._most :]
                try:
                    await run_in_threadpool(self._handle_batch, key, [w for w, _f in taken])
                finally:
                    for waiting, future in taken:
                        if not waiting.done:
                            waiting.answer, waiting.done = asyncio.CancelledError(), True
                        if not future.done():
                            future.set_result(None)
        finally:
            del self._waiting_on_loop[slot]
            for waiting, future in queue:  # cancelled meanwhile: none may wait forever
                waiting.answer, waiting.done = asyncio.CancelledError(), True
                if not future.done():
                    future.set_result(None)

    def _handle_batch(self, key: K, taken: list[_Waiting[T, R]]) -> None:
        try:
            try:
                answers = self._handle(key, [w.item for w in taken])
            except Exception as error:  # the whole batch's refusal, not other keys'
                answers = [error] * len(taken)
            for waiting, answer in zip(taken, answers, strict=True):
                waiting.answer = answer
                waiting.done = True
        except BaseException as stopped:
            # An interrupt: nobody may wait for an item that will never be handled.
            for waiting in taken:
                if not waiting.done:
                    waiting.answer = stopped
                    waiting.done = True
            raise
