"""The app's lifespan: periodic jobs while the service runs (audit checkpoints, the
signal lifecycle), each on its own interval; 0 switches a job off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from vir import logs
from vir.domain.errors import LogInconsistent


@dataclass(frozen=True)
class Periodic:
    name: str  # an event id for the logs, e.g. "audit.checkpoint"
    interval: float  # seconds; 0: never
    run: Callable[[], object]  # blocking; runs in a worker thread


def periodic_lifespan(
    jobs: list[Periodic],
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_every(job)) for job in jobs if job.interval > 0]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return lifespan


async def _every(job: Periodic) -> None:
    while True:
        await asyncio.sleep(job.interval)
        try:
            await asyncio.to_thread(job.run)
        except LogInconsistent:
            # Reported by event id only, no details from entries; nothing is signed.
            logs.emit(logs.JOB_REFUSED, job=job.name)
        except Exception:  # a busy database must not end the job for good
            logs.emit(logs.JOB_FAILED, job=job.name, exc_info=True)
