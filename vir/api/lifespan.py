"""The app's lifespan: periodic jobs while the service runs (audit checkpoints, the
signal lifecycle, refusal counts), each on its own interval (0 switches a job off),
and jobs run once when the service starts and once when it stops.

Each successful run of a periodic job is told to a ``JobObserver`` (the app's
metrics: ``vir_job_last_success_timestamp_seconds``), so that an operator can alert
on a job that stopped succeeding; a failed run is logged (``job.failed``,
``job.refused``). A job run once at start or stop is told only when it is also a
periodic job switched on (``refusals.flush`` at start): starting a thread is not a
job, and a gauge that never moves again after start would look like a stuck job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vir import logs
from vir.domain.errors import LogInconsistent
from vir.services.integrator import Integrator


class Background(Protocol):
    """A thread a service runs from start to stop (the delivery worker)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class JobObserver(Protocol):
    def job_scheduled(self, job: str) -> None: ...

    def job_succeeded(self, job: str, at: float | None = None) -> None: ...


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
    *,
    observer: JobObserver | None = None,
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """``observer``: told of each successful run; None: the app's metrics
    (``app.state.metrics``), when it has them."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        told = observer if observer is not None else _metrics_of(app)
        scheduled = {periodic.name for periodic in jobs if periodic.interval > 0}
        for name in scheduled:
            if told is not None:
                told.job_scheduled(name)
        for job in at_start:
            await _run(job.name, job.run, told if job.name in scheduled else None)
        tasks = [asyncio.create_task(_every(p, told)) for p in jobs if p.interval > 0]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for job in at_stop:
                await _run(job.name, job.run, told if job.name in scheduled else None)

    return lifespan


def _metrics_of(app: Any) -> JobObserver | None:
    metrics = getattr(getattr(app, "state", None), "metrics", None)
    return metrics if hasattr(metrics, "job_succeeded") else None


async def _every(job: Periodic, observer: JobObserver | None) -> None:
    while True:
        await asyncio.sleep(job.interval)
        await _run(job.name, job.run, observer)


async def _run(name: str, run: Callable[[], object], observer: JobObserver | None) -> None:
    try:
        await asyncio.to_thread(run)
    except LogInconsistent:
        # Reported by event id only, no details from entries; nothing is signed.
        logs.emit(logs.JOB_REFUSED, job=name)
    except Exception:  # a busy database must not end the job for good, nor the service
        logs.emit(logs.JOB_FAILED, job=name, exc_info=True)
    else:
        if observer is not None:
            observer.job_succeeded(name, time.time())


def service_lifespan(
    integrator: Integrator,
    checkpoint: Callable[[], object],
    checkpoint_interval: float,
    flush_refusals: Callable[..., object],
    refusal_interval: float,
    *extra: Periodic,
    delivery: Background | None = None,
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """What every vir service runs beside its requests: the audit integrator (a thread,
    from start to stop), signing audit checkpoints and writing refusal counts, each on
    its interval, and ``extra`` jobs; with ``delivery``, the delivery worker's thread
    (``vir.delivery.worker``), started after the integrator and stopped before it, so
    that its audit entries are integrated. Refusal counts left by an instance that
    stopped or crashed are written at start; this one's at stop
    (``flush_refusals(final=True)``), after which the integrator integrates what is left."""
    jobs = [
        Periodic("audit.checkpoint", checkpoint_interval, checkpoint),
        *extra,
        Periodic("refusals.flush", refusal_interval, flush_refusals),
    ]
    at_start = [Once("audit.integrate", integrator.start), Once("refusals.flush", flush_refusals)]
    at_stop = [
        Once("refusals.flush", functools.partial(flush_refusals, final=True)),
        Once("audit.integrate", integrator.stop),
    ]
    if delivery is not None:
        at_start.append(Once("delivery.start", delivery.start))
        at_stop.insert(0, Once("delivery.stop", delivery.stop))
    return periodic_lifespan(jobs, at_start, at_stop)
