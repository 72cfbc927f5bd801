"""Endpoints that block run in a worker thread, once (vir.api.blocking)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Query
from fastapi.routing import APIRoute
from pydantic import BaseModel
from support.inapp import InApp, in_app, in_keyholder

from vir.api.blocking import blocking


class Answer(BaseModel):
    thread: int
    doubled: int


def _app() -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    loop_threads: list[int] = []

    @app.get("/loop")
    async def loop() -> int:
        loop_threads.append(threading.get_ident())
        return 0

    @app.get("/work", response_model=Answer)
    @blocking
    def work(n: Annotated[int, Query(ge=0, le=10)]) -> Answer:
        return Answer(thread=threading.get_ident(), doubled=2 * n)

    @app.get("/wrong", response_model=Answer)
    @blocking
    def wrong() -> dict[str, str]:
        return {"thread": "not a number"}

    return app, loop_threads


def _get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    async def call() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.get(path) for path in paths]

    return asyncio.run(call())


def test_a_blocking_endpoint_runs_in_a_worker_thread() -> None:
    app, loop_threads = _app()
    loop, work = _get(app, "/loop", "/work?n=4")
    assert loop.status_code == 200 and work.status_code == 200
    assert work.json()["doubled"] == 8
    assert work.json()["thread"] != loop_threads[0]


def test_its_parameters_and_answer_are_still_validated() -> None:
    app, _ = _app()
    refused, wrong = _get(app, "/work?n=11", "/wrong")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "n"]
    assert wrong.status_code == 500  # an answer outside its response model is not sent


def test_its_openapi_description_is_the_endpoints_own() -> None:
    app, _ = _app()
    operation = app.openapi()["paths"]["/work"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["n"]
    assert operation["parameters"][0]["schema"]["maximum"] == 10
    assert operation["operationId"].startswith("work")


@pytest.fixture(params=["index", "keyholder"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) if request.param == "index" else in_keyholder(tmp_path) as running:
        yield running


def test_every_endpoint_of_both_services_is_async(served: InApp) -> None:
    """A plain ``def`` endpoint would have FastAPI validate its answer in a second
    worker thread: what blocks is declared ``@blocking``, the rest is ``async``."""
    endpoints = [r.endpoint for r in served.app.routes if isinstance(r, APIRoute)]
    assert endpoints
    plain = [e.__name__ for e in endpoints if not inspect.iscoroutinefunction(e)]
    assert plain == []
