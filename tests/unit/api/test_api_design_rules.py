"""The Logius API Design Rules the served document and every answer keep (issue 13):
API-Version and security headers, readable operationIds, mutualTLS, problem+json for
every error, no trailing-slash redirect, no CDN-backed docs pages. The document rules
hold for the key holder's document as for the index's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.inapp import InApp, in_app, in_keyholder, signal_body

from vir.api import deps
from vir.api.headers import API_VERSION

SECURITY = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "strict-transport-security": "max-age=31536000",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as running:
        yield running


@pytest.fixture(params=["index", "keyholder"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InApp]:
    """Either vir service: the index, or the key holder."""
    made = in_app(tmp_path) if request.param == "index" else in_keyholder(tmp_path)
    with made as running:
        yield running


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _assert_headers(answer: Any) -> None:
    assert answer.headers["api-version"] == API_VERSION, answer.request.url
    for name, value in SECURITY.items():
        assert answer.headers[name] == value, (answer.request.url, name)


def test_every_answer_carries_api_version_and_the_security_headers(app: InApp) -> None:
    answers = [app.request("GET", "/health"), app.request("GET", "/openapi.json")]
    answers.append(app.request("GET", "/v1/signals"))  # 401: no certificate
    app.as_caller(0)
    epoch = app.epoch
    answers += [
        app.request("POST", "/v1/signals", json=signal_body("case-1", "Kim", epoch)),
        app.request("GET", "/v1/signals"),
        app.request("POST", "/v1/signals", json={}),  # 422
        app.request("GET", "/v1/no/such/path"),  # 404
        app.request("PUT", "/v1/signals"),  # 405
        app.request("POST", "/v1/signals", content=b"x" * 100_000),  # 413
    ]
    assert [a.status_code for a in answers] == [200, 200, 401, 201, 200, 422, 404, 405, 413]
    for answer in answers:
        _assert_headers(answer)


def test_every_key_holder_answer_carries_api_version_and_the_security_headers(
    tmp_path: Path,
) -> None:
    with in_keyholder(tmp_path) as holder:
        answers = [holder.request("GET", "/health"), holder.request("GET", "/openapi.json")]
        answers.append(holder.request("GET", "/v1/oprf/epochs"))  # 401: no certificate
        holder.as_caller(0)
        answers += [
            holder.request("GET", "/v1/oprf/epochs"),
            holder.request("POST", "/v1/oprf/evaluate", json={}),  # 422
            holder.request("GET", "/v1/no/such/path"),  # 404
            holder.request("PUT", "/v1/oprf/evaluate"),  # 405
            holder.request("POST", "/v1/oprf/evaluate", content=b"x" * 100_000),  # 413
        ]
    assert [a.status_code for a in answers] == [200, 200, 401, 200, 422, 404, 405, 413]
    for answer in answers:
        _assert_headers(answer)


def test_an_unexpected_exception_is_a_problem_with_the_headers_too(app: InApp) -> None:
    def broken() -> None:
        raise RuntimeError("a bug")

    app.as_caller(0)
    app.app.dependency_overrides[deps.signal_service] = broken
    answer = app.request("GET", "/v1/signals")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert "a bug" not in answer.text
    _assert_headers(answer)


def test_a_trailing_slash_is_not_found_not_redirected(app: InApp) -> None:
    app.as_caller(0)
    for path in ("/v1/signals/", "/health/", "/v1/notifications/"):
        answer = app.request("GET", path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"
        assert "location" not in answer.headers


def test_no_docs_pages_and_the_document_also_under_v1(served: InApp) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert served.request("GET", path).status_code == 404, path
    assert served.request("GET", "/v1/openapi.json").json() == served.app.openapi()


def test_registration_answers_a_location_and_the_signal_reads_back(app: InApp) -> None:
    app.as_caller(0)
    epoch = app.epoch
    body = signal_body("case-7", "Kim", epoch)
    created = app.request("POST", "/v1/signals", json=body)
    assert created.status_code == 201
    assert created.headers["location"] == "/v1/signals/case-7"
    repeated = app.request("POST", "/v1/signals", json=body)
    assert repeated.status_code == 200
    assert "location" not in repeated.headers
    one = app.request("GET", created.headers["location"])
    assert one.status_code == 200
    assert [one.json()] == app.request("GET", "/v1/signals").json()["items"]
    app.as_caller(1)
    other = app.request("GET", "/v1/signals/case-7")
    assert other.status_code == 404
    assert other.json()["type"] == "urn:vir:problem:not-found"
    assert "case-7" not in other.text


def _operation_ids(app: InApp) -> dict[tuple[str, str], Any]:
    spec = app.app.openapi()
    ids = {(m, p): op.get("operationId") for m, p, op in _operations(spec)}
    assert all(i and re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", i) for i in ids.values()), ids
    assert len(set(ids.values())) == len(ids)
    assert ids[("GET", "/health")] == "getHealth"
    return ids


def test_every_operation_has_a_readable_unique_operation_id(app: InApp) -> None:
    ids = _operation_ids(app)
    assert ids[("POST", "/v1/signals")] == "registerSignal"
    assert ids[("DELETE", "/v1/signals/{local_ref}")] == "withdrawSignal"
    assert ids[("GET", "/v1/signals/{local_ref}")] == "getSignal"
    assert ids[("GET", "/v1/notifications")] == "getNotifications"
    assert ids[("POST", "/v1/address-exclusions")] == "excludeAddress"
    assert ids[("GET", "/v1/address-exclusions")] == "listAddressExclusions"
    assert ids[("DELETE", "/v1/address-exclusions")] == "includeAddress"
    assert not [path for _, path in ids if path.startswith("/v1/oprf")]  # the key holder's


def test_the_key_holders_operations_have_readable_unique_operation_ids(tmp_path: Path) -> None:
    with in_keyholder(tmp_path) as holder:
        ids = _operation_ids(holder)
    assert ids[("POST", "/v1/oprf/evaluate")] == "evaluateOprf"
    assert ids[("GET", "/v1/oprf/epochs")] == "listOprfEpochs"
    # The key holder serves pseudonymisation only: none of the index's routes.
    assert all(path.startswith("/v1/oprf/") for _, path in ids if path.startswith("/v1/"))


def test_the_document_declares_security_servers_contact_and_version(served: InApp) -> None:
    spec = served.app.openapi()
    assert spec["servers"] and spec["info"]["version"] == API_VERSION
    assert {"name", "email", "url"} <= set(spec["info"]["contact"])
    schemes = spec["components"]["securitySchemes"]
    # The key holder's evaluate also takes a person's access token (the portal's page).
    keyholder = "bearerAccessToken" in schemes
    bearer = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes == {
        "mutualTLS": {"type": "mutualTLS", "description": schemes["mutualTLS"]["description"]}
    } | (
        {"bearerAccessToken": bearer | {"description": schemes["bearerAccessToken"]["description"]}}
        if keyholder
        else {}
    )
    for method, path, operation in _operations(spec):
        # /ready too (any certificate of the client CA); /health and the document not.
        expected = [{"mutualTLS": []}] if path.startswith("/v1/") or path == "/ready" else None
        if keyholder and (method, path) == ("POST", "/v1/oprf/evaluate"):
            expected = [{"mutualTLS": []}, {"bearerAccessToken": []}]
        assert operation.get("security") == expected, (method, path)


def test_every_response_declares_its_headers_and_every_error_is_a_problem(
    served: InApp,
) -> None:
    spec = served.app.openapi()
    for method, path, operation in _operations(spec):
        responses = operation["responses"]
        if path.startswith("/v1/"):
            assert {"400", "500", "503"} <= set(responses), (method, path)
        for status, response in responses.items():
            where = (method, path, status)
            assert "API-Version" in response["headers"], where
            if status[0] in "45":
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, where
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"], where
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail"} <= set(problem["required"])


def test_dates_and_timestamps_declare_their_format(app: InApp) -> None:
    schemas = app.app.openapi()["components"]["schemas"]

    def format_of(model: str, field: str) -> set[str]:
        prop = schemas[model]["properties"][field]
        return {p.get("format") for p in prop.get("anyOf", [prop])} - {None}

    assert format_of("SignalOut", "remove_on") == {"date"}
    assert format_of("OwnSignalOut", "registered_at") == {"date-time"}
    assert format_of("OwnSignalOut", "archived_on") == {"date"}
    assert format_of("NotificationOut", "created_at") == {"date-time"}
    assert format_of("ParticipantOut", "since") == {"date-time"}
