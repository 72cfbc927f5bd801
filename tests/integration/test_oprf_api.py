"""POST /v1/oprf/evaluate at a real key holder (``vir keyholder serve``):
interoperability and bad input. The index has no such endpoint (test_keyholder_service)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import refclient
from support.https import request
from support.service import RunningService, start_service

from vir.client import VirClient, nl_bsn

EVALUATE = "/v1/oprf/evaluate"


def _post(
    service: RunningService, body: bytes, org: str = "gp", headers: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    o = service.org(org)
    return request(
        service.keyholder_port, service.ca, "POST", EVALUATE, body, (o.cert, o.key), headers
    )


def _elements(*elements: bytes) -> bytes:
    return json.dumps({"blinded_elements": [refclient.b64url_encode(e) for e in elements]}).encode()


def test_independent_client_gets_the_same_pseudonym_under_different_blinds(
    service: RunningService,
) -> None:
    org = service.org("gp")
    inputs = [b"nl-bsn:123456782", b"nl-bsn:111222333", b"nl-address:3011AB:12:"]
    holder = service.keyholder_url
    epoch1, first = refclient.pseudonymise(holder, service.ca, org.cert, org.key, inputs)
    epoch2, second = refclient.pseudonymise(holder, service.ca, org.cert, org.key, inputs)
    assert epoch1 == epoch2 == 1
    assert first == second
    assert len(set(first)) == 3


def test_every_organisation_gets_the_same_pseudonym(service: RunningService) -> None:
    results = {
        refclient.pseudonymise(
            service.keyholder_url, service.ca, o.cert, o.key, [b"nl-bsn:123456782"]
        )[1][0]
        for o in service.orgs
    }
    assert len(results) == 1


def test_project_client_agrees_with_the_independent_client(service: RunningService) -> None:
    org = service.org("education")
    ours = VirClient(
        service.url,
        service.dev / "ca.crt",
        Path(org.cert),
        Path(org.key),
        keyholders=[service.keyholder_url],
    )
    with ours:
        result = ours.pseudonymise([nl_bsn("123456782")])
    _, theirs = refclient.pseudonymise(
        service.keyholder_url, service.ca, org.cert, org.key, [b"nl-bsn:123456782"]
    )
    assert refclient.b64url_decode(result.pseudonyms[0]) == theirs[0]


def test_batch_of_64_is_accepted_and_65_refused_naming_the_field(service: RunningService) -> None:
    element = refclient.blind(b"x", 7)
    assert _post(service, _elements(*[element] * 64)).status == 200
    reply = _post(service, _elements(*[element] * 65))
    assert reply.status == 422
    assert reply.json()["errors"][0]["field"] == "blinded_elements"


def test_empty_batch_is_refused(service: RunningService) -> None:
    reply = _post(service, _elements())
    assert reply.status == 422
    assert reply.json()["errors"][0]["field"] == "blinded_elements"


@pytest.mark.parametrize(
    "bad",
    [
        bytes(32),  # the identity
        b"\xff" * 32,  # not a canonical field element
        (2**255 - 19 + 2).to_bytes(32, "little"),  # non-canonical encoding of 2
        refclient.encode(refclient.BASE)[:31] + b"\x81",  # high bit set
    ],
)
def test_invalid_points_are_refused_naming_the_index(service: RunningService, bad: bytes) -> None:
    good = refclient.blind(b"y", 5)
    reply = _post(service, _elements(good, bad))
    assert reply.status == 422
    problem = reply.json()
    assert problem["errors"][0]["field"] == "blinded_elements[1]"
    encoded = refclient.b64url_encode(bad)
    assert encoded not in reply.body.decode()
    assert encoded not in service.keyholder_log()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b'{"blinded_elements": "abc"}', 422, "blinded_elements"),
        (b'{"blinded_elements": [1]}', 422, "blinded_elements[0]"),
        (b'{"blinded_elements": ["short"]}', 422, "blinded_elements[0]"),
        (b'{"blinded_elements": ["' + b"A" * 43 + b'"], "reason": "x"}', 422, "reason"),
        (b"[]", 422, "body"),
    ],
)
def test_malformed_requests_get_problem_json(
    service: RunningService, body: bytes, status: int, field: str | None
) -> None:
    reply = _post(service, body)
    assert reply.status == status
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert {"type", "title", "status", "detail"} <= problem.keys()
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]]


def test_non_canonical_base64_is_refused(service: RunningService) -> None:
    text = refclient.b64url_encode(refclient.blind(b"z", 3))
    # Flip the unused low bits of the last character: same bytes, non-canonical text.
    tweaked = text[:-1] + chr(ord(text[-1]) + 1) if text[-1] not in "_-9Z" else text[:-1] + "B"
    body = json.dumps({"blinded_elements": [tweaked]}).encode()
    reply = _post(service, body)
    assert reply.status == 422


def test_oversized_body_is_refused_before_parsing(service: RunningService) -> None:
    reply = _post(service, b'{"blinded_elements": ["' + b"A" * 200_000 + b'"]}')
    assert reply.status == 413
    assert reply.headers["content-type"] == "application/problem+json"


def test_nothing_sent_appears_in_the_server_log(service: RunningService) -> None:
    element = refclient.blind(b"nl-bsn:123456782", 11)
    assert _post(service, _elements(element)).status == 200
    log = service.keyholder_log()
    assert refclient.b64url_encode(element) not in log
    assert "123456782" not in log


def test_rate_limit_answers_429_with_retry_after(tmp_path) -> None:  # type: ignore[no-untyped-def]
    limited = start_service(
        tmp_path, VIR_KEYHOLDER_OPRF_RATE_PER_SECOND="1", VIR_KEYHOLDER_OPRF_BURST="64"
    )
    try:
        element = refclient.blind(b"x", 9)
        assert _post(limited, _elements(*[element] * 64)).status == 200
        reply = _post(limited, _elements(*[element] * 10))
        assert reply.status == 429
        assert int(reply.headers["retry-after"]) >= 1
        assert reply.json()["type"].endswith("rate-limited")
        # Another organisation has its own budget.
        assert _post(limited, _elements(element), org="education").status == 200
    finally:
        limited.stop()
