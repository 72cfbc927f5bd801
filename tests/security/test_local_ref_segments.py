"""``local_ref`` values a URL path would change are refused at registration.

A signal registered as ``.`` or ``..`` could never be withdrawn, read or changed:
``/v1/signals/..`` resolves to ``/v1/`` before it reaches the service (RFC 3986
§5.2.4), in every HTTP client and proxy. So such a reference is refused where it
enters, naming the field and without echoing it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support.inapp import in_app, signal_body

from vir.client.connection import ClientError, VirClient


@pytest.mark.parametrize("ref", [".", "..", "a/b", "a%2Fb", "a b", "a?b", "a#b", "é"])
def test_unaddressable_references_are_refused(tmp_path: Path, ref: str) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        body = signal_body(ref, "Kim", app.epoch)
        answer = app.request("POST", "/v1/signals", json=body)
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert [e["field"] for e in problem["errors"]] == ["local_ref"]
        assert all(set(e) == {"field", "message"} for e in problem["errors"])  # no "input"
        if len(ref) > 2:  # "." and ".." are in any message about a pattern
            assert ref not in answer.text


@pytest.mark.parametrize("ref", ["...", ".x", "..x", "x.", "a..b", "case:2026-01_A"])
def test_dotted_references_that_survive_a_url_path_work_end_to_end(
    tmp_path: Path, ref: str
) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        body = signal_body(ref, "Kim", app.epoch)
        assert app.request("POST", "/v1/signals", json=body).status_code == 201
        assert app.request("GET", f"/v1/signals/{ref}").status_code in (200, 405)
        gone = app.request("DELETE", f"/v1/signals/{ref}", params={"reason": "risk_ended"})
        assert gone.status_code == 204


@pytest.mark.parametrize("ref", ["..", "../oprf/evaluate", "x/../../health", "a?reason=x", "."])
def test_the_client_never_sends_a_path_a_reference_would_change(ref: str) -> None:
    sent: list[httpx.Request] = []
    client = object.__new__(VirClient)  # no certificate needed: nothing may be sent
    client._http = httpx.Client(
        base_url="https://vir.test",
        transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204)),
    )
    with client, pytest.raises(ClientError, match="local_ref") as refused:
        client.withdraw_signal(ref, "risk_ended")
    with pytest.raises(ClientError):
        client.update_signal(ref, {"informed": None})
    assert sent == []
    assert len(ref) < 3 or ref not in str(refused.value)
