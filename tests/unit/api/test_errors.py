"""Every error class maps to a problem+json answer; messages never carry input."""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi import FastAPI

from vir.api import errors as api_errors
from vir.domain import errors


def _all_subclasses(klass: type) -> set[type]:
    found = set()
    for sub in klass.__subclasses__():
        found |= {sub} | _all_subclasses(sub)
    return found


def test_every_error_class_has_its_own_row() -> None:
    for klass in _all_subclasses(errors.VirError) | {errors.VirError}:
        assert klass in api_errors.PROBLEMS, klass.__name__


def test_statuses_are_client_errors_except_server_state() -> None:
    for klass, kind in api_errors.PROBLEMS.items():
        if klass in (errors.ConfigurationError, errors.LogInconsistent, errors.VirError):
            assert kind.status == 500
        elif klass is errors.WriteNotCommitted:
            assert kind.status == 503  # the database's state, not the request: try again
        else:
            assert 400 <= kind.status < 500, klass.__name__


def test_a_write_that_did_not_commit_says_try_again() -> None:
    response = api_errors.vir_error_response(errors.WriteNotCommitted())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert json.loads(response.body)["detail"] == (
        "the write was not committed: nothing was stored, try again"
    )


def test_problem_body_shape_and_retry_after() -> None:
    response = api_errors.vir_error_response(errors.RateLimited(7))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.media_type == "application/problem+json"
    body = json.loads(response.body)
    assert set(body) == {"type", "title", "status", "detail"}


def test_input_error_names_the_field() -> None:
    body = json.loads(
        api_errors.vir_error_response(errors.InvalidElement("blinded_elements[3]")).body
    )
    assert body["errors"] == [
        {
            "field": "blinded_elements[3]",
            "message": "not a canonical, non-identity ristretto255 element",
        }
    ]
    assert body["detail"].startswith("blinded_elements[3]")


def test_an_unexpected_exception_is_still_problem_json() -> None:
    app = FastAPI()
    api_errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail that must not leak")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/boom")

    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:vir:problem:internal"
    assert "secret" not in response.text


def test_a_database_that_does_not_answer_is_503_with_retry_after() -> None:
    """The operator's walk: with PostgreSQL stopped, requests answered 500 internal, so
    clients were not told to try again. The driver's text (it may quote values) is not
    in the answer."""
    import sqlalchemy.exc

    app = FastAPI()
    api_errors.install(app)
    refused = ConnectionRefusedError("connection to server at 10.0.0.5 port 5432 refused")

    @app.get("/down")
    def down() -> None:
        raise sqlalchemy.exc.OperationalError("SELECT ... WHERE person = ?", ("AAAA",), refused)

    @app.get("/constraint")
    def constraint() -> None:
        raise sqlalchemy.exc.IntegrityError("INSERT ...", ("AAAA",), ValueError("duplicate"))

    async def call(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    response = asyncio.run(call("/down"))
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["type"] == "urn:vir:problem:database-unavailable"
    assert "AAAA" not in response.text and "10.0.0.5" not in response.text
    assert asyncio.run(call("/constraint")).status_code == 500  # a bug, not the database's state
