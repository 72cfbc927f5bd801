"""The app's lifespan: periodic jobs while the service runs (audit checkpoints, the
signal lifecycle, refusal counts), each on its own interval (0 switches a job off),
and jobs run once when the service starts and once when it stops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vir import logs
from vir.domain.errors import LogInconsistent


@dataclass(frozen=True)
class Periodic:
    name: str  # an event id for the logs, e.g. "audit.checkpoint"
    interval: float  # seconds; 0: never
    run: Callable[[], object]  # blocking; runs in a worker thread


@dataclass(frozen=True)
class Once:
    name: str  # an event id for the logs, e.g. "refusals.flush"
    run: Callable[[], object]  # blocking; runs in a worker thread


def periodic_lifespan(
    jobs: list[Periodic],
    at_start: Sequence[Once] = (),
    at_stop: Sequence[Once] = (),
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        for job in at_start:
            await _run(job.name, job.run)
        tasks = [asyncio.create_task(_every(job)) for job in jobs if job.interval > 0]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for job in at_stop:
                await _run(job.name, job.run)

    return lifespan


async def _every(job: Periodic) -> None:
    while True:
        await asyncio.sleep(job.interval)
        await _run(job.name, job.run)


async def _run(name: str, run: Callable[[], object]) -> None:
    try:
        await asyncio.to_thread(run)
    except LogInconsistent:
        # Reported by event id only, no details from entries; nothing is signed.
        logs.emit(logs.JOB_REFUSED, job=name)
    except Exception:  # a busy database must not end the job for good, nor the service
        logs.emit(logs.JOB_FAILED, job=name, exc_info=True)
