"""A request has one reading (``vir.api.strict``), and an answer repeats nothing the
client named that is not a field's name (``vir.api.errors``).

A JSON object with a key twice, or a query parameter given twice, could be read
otherwise by a proxy, a log or a client library than by vir (Python keeps the last):
both are refused, nothing is stored or changed, and the refusal is accounted for. An
unknown key is named in the answer only if it has the shape of a field name (a key
"bsn 999999990" or a pseudonym is not echoed), and at most 20 fields are named.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.inapp import InApp, in_app, in_keyholder, signal_body

from vir.crypto import oprf
from vir.domain.encoding import b64url_encode
from vir.store.tables import AuditEntryRow, SignalRow

JSON = {"content-type": "application/json"}
BSN_KEY = "bsn 999999990"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as made:
        made.as_caller(0)
        yield made


def _stored(app: InApp) -> int:
    with app.app.state.services.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(SignalRow)) or 0)


def _refusals(app: InApp) -> list[str]:
    app.app.state.services.refusals.flush(final=True)
    with app.app.state.services.db.read() as session:
        bodies = [json.loads(bytes(b)) for b in session.scalars(select(AuditEntryRow.body))]
    return [b["reason"] for b in bodies if b["action"] == "request.refused"]


def _problem(reply: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    found: dict[str, Any] = reply.json()
    assert found["type"] == f"urn:vir:problem:{slug}", found
    return found


def _with_twice(body: dict[str, Any], key: str, second: str) -> str:
    """``body`` as JSON text with ``key`` given once more at the end of its object."""
    return json.dumps(body)[:-1] + f", {json.dumps(key)}: {second}}}"


@pytest.mark.parametrize("key", ["local_ref", "person", "epoch"])
def test_a_key_given_twice_is_refused_and_nothing_is_stored(app: InApp, key: str) -> None:
    body = signal_body("ref-1", "child", app.epoch)
    second = {"local_ref": '"ref-2"', "person": json.dumps(body["person"]), "epoch": "1"}[key]
    reply = app.request("POST", "/v1/signals", content=_with_twice(body, key, second), headers=JSON)
    found = _problem(reply, 400, "malformed-json")
    assert f'"{key}" is given twice' in found["detail"]
    assert _stored(app) == 0
    assert _refusals(app) == ["invalid_input"]


def test_a_key_twice_in_a_nested_object_is_refused(app: InApp) -> None:
    body = signal_body("ref-1", "child", app.epoch)
    text = json.dumps(body).replace('"name": ', '"name": "Karim Bouali", "name": ', 1)
    reply = app.request("POST", "/v1/signals", content=text, headers=JSON)
    _problem(reply, 400, "malformed-json")
    assert _stored(app) == 0


def test_a_key_that_is_no_field_name_is_not_repeated_when_given_twice(app: InApp) -> None:
    text = _with_twice({BSN_KEY: 1}, BSN_KEY, "2")
    reply = app.request("POST", "/v1/signals", content=text, headers=JSON)
    found = _problem(reply, 400, "malformed-json")
    assert "999999990" not in reply.text
    assert "given twice" in found["detail"]


def test_a_number_too_long_to_read_is_malformed_json(app: InApp) -> None:
    reply = app.request(
        "POST", "/v1/signals", content='{"epoch": ' + "1" * 5000 + "}", headers=JSON
    )
    _problem(reply, 400, "malformed-json")
    assert _refusals(app) == ["invalid_input"]


def test_a_query_parameter_given_twice_is_refused_and_nothing_changes(app: InApp) -> None:
    """``reason=risk_ended&reason=unjustified`` withdrew with the last (an erasure) where
    the first asked for archiving."""
    created = app.request("POST", "/v1/signals", json=signal_body("ref-1", "child", app.epoch))
    assert created.status_code == 201, created.text
    reply = app.request("DELETE", "/v1/signals/ref-1?reason=risk_ended&reason=unjustified")
    found = _problem(reply, 422, "invalid-input")
    assert found["errors"] == [
        {"field": "reason", "message": "given more than once: one value only"}
    ]
    assert app.request("GET", "/v1/signals/ref-1").status_code == 200  # still active
    assert app.request("DELETE", "/v1/signals/ref-1?reason=risk_ended").status_code == 204


def test_unknown_keys_are_named_only_when_they_look_like_field_names(app: InApp) -> None:
    element = b64url_encode(oprf.hash_to_group(b"some person"))
    body = signal_body("ref-1", "child", app.epoch) | {BSN_KEY: 1, element: 2, "remarks": "x"}
    reply = app.request("POST", "/v1/signals", json=body)
    found = _problem(reply, 422, "invalid-input")
    assert "999999990" not in reply.text and element not in reply.text
    assert sorted(e["field"] for e in found["errors"]) == ["?", "?", "remarks"]


def test_at_most_20_fields_are_named_in_one_answer(app: InApp) -> None:
    body = signal_body("ref-1", "child", app.epoch) | {f"x{i}": 0 for i in range(3000)}
    reply = app.request("POST", "/v1/signals", json=body)
    found = _problem(reply, 422, "invalid-input")
    assert len(found["errors"]) == 20
    assert found["detail"].endswith("and 2980 more")
    assert len(reply.content) < 4096


def test_the_key_holder_reads_one_blinded_elements(tmp_path: Path) -> None:
    with in_keyholder(tmp_path) as holder:
        holder.as_caller(0)
        one = json.dumps(b64url_encode(oprf.blind(b"nl-bsn:123456782")[1]))
        text = f'{{"blinded_elements": [{one}], "blinded_elements": [{one}]}}'
        reply = holder.request("POST", "/v1/oprf/evaluate", content=text, headers=JSON)
        _problem(reply, 400, "malformed-json")
        twice = holder.request("GET", "/v1/oprf/epochs?a=1&a=2")
        _problem(twice, 422, "invalid-input")


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"epoch": ' + "1" * 5000 + "}", '{"a": 1, "a": 2}'],
    ids=["malformed", "long number", "key twice"],
)
def test_without_a_certificate_the_body_is_not_read(tmp_path: Path, content: str) -> None:
    """401 before the body is read: an anonymous client learns nothing of how a route
    reads its input; at the key holder's evaluate, which takes a token too, neither a
    certificate nor a token is 401 the same way."""
    with in_app(tmp_path) as app:
        reply = app.request("POST", "/v1/signals", content=content, headers=JSON)
        _problem(reply, 401, "client-certificate-required")
        assert _refusals(app) == ["no_client_certificate"]
    with in_keyholder(tmp_path / "holder") as holder:
        reply = holder.request("POST", "/v1/oprf/evaluate", content=content, headers=JSON)
        _problem(reply, 401, "client-certificate-required")
        # With a token, the token is verified before the body is read (docs/api.md).
        bearer = {**JSON, "authorization": "Bearer not-a-token"}
        refused = holder.request("POST", "/v1/oprf/evaluate", content=content, headers=bearer)
        _problem(refused, 401, "invalid-token")
