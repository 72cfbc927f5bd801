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

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

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
