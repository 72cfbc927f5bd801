"""Endpoints whose work blocks (the database, a file, another server), run in a worker
thread without a second one.

FastAPI runs a plain ``def`` endpoint in a worker thread, which is right for work that
blocks; but it then validates the endpoint's answer against the response model in a
worker thread too, a second trip from the event loop to a thread and back (a task, a
queue, a wake-up, the interpreter lock handed over twice). That trip cost about a tenth
of a registration's CPU in the index (docs/benchmarks.md, "Endpoints that block,
registrations combined"). An
endpoint declared ``@blocking`` is an ``async`` endpoint that runs the same body in a
worker thread once, and its answer is validated on the event loop, where that costs
microseconds.

FastAPI reads the parameters, their annotations (resolved in the endpoint's own
module) and the return annotation through ``functools.wraps``' ``__wrapped__``, so the
dependencies, the validation and the OpenAPI description are the endpoint's own.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
R = TypeVar("R")


def blocking(endpoint: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``endpoint`` as an async endpoint that runs it in a worker thread."""

    @functools.wraps(endpoint)
    async def in_worker_thread(*args: P.args, **kwargs: P.kwargs) -> R:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return in_worker_thread
