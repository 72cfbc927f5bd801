"""How far a long job has come, for a progress bar: ``progress(done, total)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

# (done, in all): told after every batch.
Progress = Callable[[int, int], None]

T = TypeVar("T")


def told(
    items: Iterable[T],
    total: int,
    progress: Progress | None,
    *,
    every: int = 5000,
    size: Callable[[T], int] | None = None,
) -> Iterator[T]:
    """``items`` as they are, telling ``progress`` at the start, after every ``every``
    done (items, or what ``size`` weighs them: bytes, say) and at the end. ``total`` is
    what the caller expects; more done than that is told as the total."""
    if progress is None:
        yield from items
        return
    done = last = 0
    progress(0, total)
    for item in items:
        yield item
        done += 1 if size is None else size(item)
        if done - last >= every:
            progress(done, max(total, done))
            last = done
    progress(done, max(total, done))
