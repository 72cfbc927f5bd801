"""The app's lifespan: periodic jobs while the service runs (audit checkpoints, the
signal lifecycle), each on its own interval; 0 switches a job off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from vir.domain.errors import LogInconsistent

_log = logging.getLogger("vir.jobs")


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
            _log.error("%s_refused: the log contradicts a signed checkpoint", job.name)
        except Exception:  # a busy database must not end the job for good
            _log.exception("%s_failed: will try again at the next interval", job.name)
