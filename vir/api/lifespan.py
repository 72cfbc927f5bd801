"""The app's lifespan: periodic audit checkpoints while the service runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from vir.domain.errors import LogInconsistent
from vir.services.transparency import TransparencyLog

_log = logging.getLogger("vir.audit")


def checkpoint_lifespan(
    log: TransparencyLog, interval: float
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """An ASGI lifespan that signs a checkpoint every ``interval`` seconds (0: never).

    A log that contradicts an earlier checkpoint is reported (event id, no
    details from entries) and not signed; the service keeps serving.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(_every(log, interval)) if interval > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return lifespan


async def _every(log: TransparencyLog, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(log.checkpoint)
        except LogInconsistent:
            _log.error("audit.checkpoint_refused: the log contradicts a signed checkpoint")
        except Exception:  # a busy database must not end checkpointing for good
            _log.exception("audit.checkpoint_failed: will try again at the next interval")
