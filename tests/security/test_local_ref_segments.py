"""``local_ref`` is 1..64 of ``[A-Za-z0-9._:-]`` (API-CONTRACT.md), ``.`` and ``..`` too.

Those two are dot segments: ``/v1/signals/..`` resolves to ``/v1/`` before it reaches
the service (RFC 3986 §5.2.4), in every HTTP client and proxy. Until this test changed,
they were refused at registration (422), which the contract does not allow. Now they
are registered and addressed percent-encoded (``/v1/signals/%2E%2E``): no client or
proxy resolves an encoded dot, and the server decodes it into the route's
``local_ref``. The client encodes them itself; any other character outside the set is
still refused where it enters, naming the field and without echoing it, and the client
never sends a path a reference would change.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support.inapp import in_app, signal_body
from support.service import start_service
from support.signal_body import signal_body as real_signal_body

from vir.client.canonical import nl_bsn
from vir.client.connection import ClientError, ServiceError, VirClient
from vir.client.demo import made_up_bsn

ENCODED = {".": "%2E", "..": "%2E%2E"}


@pytest.mark.parametrize("ref", ["a/b", "a%2Fb", "a b", "a?b", "a#b", "é", "", "x" * 65])
def test_references_outside_the_set_are_refused(tmp_path: Path, ref: str) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        body = signal_body(ref, "Kim", app.epoch)
        answer = app.request("POST", "/v1/signals", json=body)
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert [e["field"] for e in problem["errors"]] == ["local_ref"]
        assert all(set(e) == {"field", "message"} for e in problem["errors"])  # no "input"
        if len(ref) > 2:
            assert ref not in answer.text


@pytest.mark.parametrize("ref", [".", ".."])
def test_dot_references_are_registered_and_addressed_percent_encoded(
    tmp_path: Path, ref: str
) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        made = app.request("POST", "/v1/signals", json=signal_body(ref, "Kim", app.epoch))
        assert made.status_code == 201, made.text
        assert made.json()["local_ref"] == ref
        # The Location header names a URL that reaches the signal, not /v1/ or /v1/signals.
        assert made.headers["location"] == f"/v1/signals/{ENCODED[ref]}"
        read = app.request("GET", made.headers["location"])
        assert (read.status_code, read.json()["local_ref"]) == (200, ref)
        patch = {"professional": {"name": "Kim de Vries", "email": "kim@school.example"}}
        changed = app.request("PATCH", f"/v1/signals/{ENCODED[ref]}", json=patch)
        assert changed.status_code == 200, changed.text
        gone = app.request("DELETE", f"/v1/signals/{ENCODED[ref]}", params={"reason": "risk_ended"})
        assert gone.status_code == 204
        assert app.request("GET", f"/v1/signals/{ENCODED[ref]}").status_code == 404


@pytest.mark.parametrize("ref", ["...", ".x", "..x", "x.", "a..b", "case:2026-01_A"])
def test_other_dotted_references_work_as_they_are(tmp_path: Path, ref: str) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        body = signal_body(ref, "Kim", app.epoch)
        assert app.request("POST", "/v1/signals", json=body).status_code == 201
        assert app.request("GET", f"/v1/signals/{ref}").status_code == 200
        gone = app.request("DELETE", f"/v1/signals/{ref}", params={"reason": "risk_ended"})
        assert gone.status_code == 204


def _offline_client(sent: list[httpx.Request]) -> VirClient:
    client = object.__new__(VirClient)  # no certificate needed: nothing goes out
    client._http = httpx.Client(
        base_url="https://vir.test",
        transport=httpx.MockTransport(lambda r: sent.append(r) or _answer(r)),
    )
    return client


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(204) if request.method == "DELETE" else httpx.Response(200, json={})


@pytest.mark.parametrize("ref", [".", ".."])
def test_the_client_sends_dot_references_percent_encoded(ref: str) -> None:
    sent: list[httpx.Request] = []
    with _offline_client(sent) as client:
        client.withdraw_signal(ref, "risk_ended")
        client.update_signal(ref, {"informed": None})
    assert [r.url.raw_path for r in sent] == [
        f"/v1/signals/{ENCODED[ref]}?reason=risk_ended".encode(),
        f"/v1/signals/{ENCODED[ref]}".encode(),
    ]


@pytest.mark.parametrize("ref", ["../oprf/evaluate", "x/../../health", "a?reason=x", "a/b", ""])
def test_the_client_never_sends_a_path_a_reference_would_change(ref: str) -> None:
    sent: list[httpx.Request] = []
    with _offline_client(sent) as client, pytest.raises(ClientError, match="local_ref") as no:
        client.withdraw_signal(ref, "risk_ended")
    with pytest.raises(ClientError):
        client.update_signal(ref, {"informed": None})
    assert sent == []
    assert len(ref) < 3 or ref not in str(no.value)


@pytest.mark.integration
def test_dot_references_end_to_end_on_a_real_server(tmp_path: Path) -> None:
    """The project's client against ``vir serve`` (uvicorn, TLS): registered, read and
    withdrawn via ``%2E`` and ``%2E%2E``."""
    running = start_service(tmp_path / "dots")
    try:
        with running.client("education") as school:
            for ref in (".", ".."):
                made = school.pseudonymise([nl_bsn(made_up_bsn())])
                body = real_signal_body(ref, made.pseudonyms[0], made.epoch)
                assert school.register_signal(body)["local_ref"] == ref
                read = school.request("GET", f"/v1/signals/{ENCODED[ref]}").json()
                assert read["local_ref"] == ref
                school.withdraw_signal(ref, "risk_ended")
                with pytest.raises(ServiceError) as gone:
                    school.request("GET", f"/v1/signals/{ENCODED[ref]}")
                assert gone.value.status == 404
    finally:
        running.stop()
