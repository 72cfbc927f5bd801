"""A person signed in to the portal pseudonymises at the key holder with their access
token (issue 18): ``vir dev init`` configures the demo organisations at the key holder
for the development OpenID provider and grants CORS to the portal's origin; a token
obtained through that provider's real authorization-code flow evaluates, is counted
under the person's organisation (same hourly quota as the organisation's certificate
calls) and names the person in the audit log by a keyed pseudonymous id only.

Real processes: ``vir serve``, ``vir keyholder serve`` and ``python -m vir.devidp``,
each over HTTPS; and, for CORS as a browser applies it, a headless Chromium.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import postgres
from support.bearer import (
    EVALUATE,
    GP_OIN,
    GP_SUB,
    SCHOOL_OIN,
    SCHOOL_SUB,
    YOUTH_CARE_OIN,
    YOUTH_CARE_SUB,
    Deployment,
    bearer,
    claims_of,
    deployment,
    evaluate_body,
    page_server,
)
from support.https import Reply, request
from support.service import Org, free_port

from vir.crypto import oprf
from vir.devidp.provider import ACCESS_TOKEN_SECONDS, KEYHOLDER_AUDIENCE
from vir.portal.devsetup import ACR

pytestmark = pytest.mark.integration

# Per organisation and hour at the key holder in this deployment: small, to reach it.
PER_HOUR = 64


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(
        tmp_path_factory.mktemp("bearer"), VIR_KEYHOLDER_OPRF_PER_HOUR=str(PER_HOUR)
    ) as made:
        yield made


def _elements(n: int, label: str = "x") -> list[bytes]:
    return [oprf.blind(f"nl-bsn:{label}{i}".encode())[1] for i in range(n)]


def _evaluate(
    running: Deployment,
    elements: list[bytes],
    token: str | None = None,
    org: Org | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    service = running.service
    send = (bearer(token) if token else {}) | (headers or {})
    cert = (org.cert, org.key) if org else None
    return request(
        service.keyholder_port, service.ca, "POST", EVALUATE, evaluate_body(elements), cert, send
    )


def _entries(running: Deployment, action: str) -> list[dict[str, Any]]:
    rows = running.service.keyholder_sql(
        "SELECT body FROM audit_entries WHERE action = :action ORDER BY seq", action=action
    )
    return [json.loads(bytes(row[0]) if not isinstance(row[0], str) else row[0]) for row in rows]


def test_the_demo_key_holder_trusts_the_development_provider(running: Deployment) -> None:
    """What ``vir dev init`` configured, and what the provider's access tokens hold."""
    rows = running.service.keyholder_sql(
        "SELECT oin, issuer, audience, acr, organisation_claim FROM keyholder_oidc ORDER BY oin"
    )
    assert {row[0] for row in rows} >= {GP_OIN, SCHOOL_OIN, YOUTH_CARE_OIN}
    assert {tuple(row[1:]) for row in rows} == {
        (running.idp.issuer, KEYHOLDER_AUDIENCE, ACR, "vir_oin")
    }
    claims = claims_of(running.token())
    assert claims["iss"] == running.idp.issuer and claims["aud"] == [KEYHOLDER_AUDIENCE]
    assert claims["sub"] == GP_SUB and claims["vir_oin"] == GP_OIN and claims["acr"] == ACR
    assert claims["client_id"] == "vir-portal" and claims["jti"]
    assert claims["exp"] - claims["iat"] == ACCESS_TOKEN_SECONDS
    header = json.loads(base64.urlsafe_b64decode(running.token().split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
    env = json.loads((running.service.dev / "keyholders.json").read_text())[0]["env"]
    assert env["VIR_KEYHOLDER_PORTAL_ORIGINS"] == running.portal_origin


def test_a_token_from_the_real_flow_evaluates_like_the_certificate(running: Deployment) -> None:
    elements = _elements(3, "same")
    with_token = _evaluate(running, elements, running.token())
    with_certificate = _evaluate(running, elements, org=running.service.org("gp"))
    assert with_token.status == 200, with_token.body
    assert with_certificate.status == 200, with_certificate.body
    # k·B is deterministic: the same key evaluated the same elements.
    assert with_token.json() == with_certificate.json()


def test_usage_is_counted_under_the_organisation_with_a_pseudonymous_person(
    running: Deployment,
) -> None:
    before = len(_entries(running, "oprf.evaluate"))
    assert _evaluate(running, _elements(2, "count"), running.token(SCHOOL_SUB)).status == 200
    entry = _entries(running, "oprf.evaluate")[before]
    assert entry["organisation"] == SCHOOL_OIN and entry["objects"]["elements"] == 2
    assert entry["certificate"] is None
    assert entry["actor"].startswith("person:") and len(entry["actor"]) == len("person:") + 64
    assert SCHOOL_SUB not in json.dumps(entry)
    # The same person is the same id; another person another.
    assert _evaluate(running, _elements(1, "again"), running.token(SCHOOL_SUB)).status == 200
    assert _evaluate(running, _elements(1, "other"), running.token(GP_SUB)).status == 200
    later = _entries(running, "oprf.evaluate")
    assert later[before + 1]["actor"] == entry["actor"] != later[before + 2]["actor"]
    # The index operator's evaluation counts (the privacy report) include them.
    usage = request(
        running.service.keyholder_port,
        running.service.ca,
        "GET",
        f"/v1/oprf/usage?from={dt.date.today()}&to={dt.date.today() + dt.timedelta(days=1)}",
        cert=(
            str(running.service.dev / "index-service.crt"),
            str(running.service.dev / "index-service.key"),
        ),
    )
    assert usage.status == 200, usage.body
    counted = sum(i["elements"] for i in usage.json()["items"] if i["oin"] == SCHOOL_OIN)
    assert counted >= 3


def test_the_hourly_quota_is_the_organisations_whichever_way_it_asks(
    running: Deployment,
) -> None:
    """Youth care's certificate and its person's token draw on one quota."""
    org = running.service.org("youth_care")
    token = running.token(YOUTH_CARE_SUB)
    assert _evaluate(running, _elements(40, "q"), org=org).status == 200
    too_many = _evaluate(running, _elements(30, "q"), token)
    assert too_many.status == 429, too_many.body
    assert int(too_many.headers["retry-after"]) > 0
    assert _evaluate(running, _elements(24, "q"), token).status == 200  # 64 in all
    assert _evaluate(running, _elements(1, "q"), org=org).status == 429
    assert _evaluate(running, _elements(1, "q"), token).status == 429
    entries = [e for e in _entries(running, "oprf.evaluate") if e["organisation"] == YOUTH_CARE_OIN]
    assert sum(e["objects"]["elements"] for e in entries) == PER_HOUR


def test_cors_lets_the_portals_page_read_the_answer(running: Deployment) -> None:
    service = running.service
    preflight = request(
        service.keyholder_port,
        service.ca,
        "OPTIONS",
        EVALUATE,
        headers={
            "Origin": running.portal_origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == running.portal_origin
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    assert int(preflight.headers["access-control-max-age"]) > 0
    assert "origin" in preflight.headers["vary"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    answer = _evaluate(
        running, _elements(1, "cors"), running.token(), headers={"Origin": running.portal_origin}
    )
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == running.portal_origin
    assert "access-control-allow-credentials" not in answer.headers


@pytest.mark.skipif(postgres.on_postgresql(), reason="a browser test: runs once, on SQLite")
def test_a_browser_on_the_portal_origin_may_call_and_another_origin_may_not(
    running: Deployment, tmp_path: Path
) -> None:
    """Chromium fetches evaluate from a page on the portal's origin (answered by the
    test, as the portal would serve it) and from a page on another origin: the first
    reads the answer, the second is stopped by the browser at the preflight."""
    from support.browser import chromium, new_context

    token = running.token()
    body = evaluate_body(_elements(1, "browser")).decode()
    script = """async ([url, token, body]) => {
        try {
            const r = await fetch(url, {method: "POST", body,
                headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"}});
            return {status: r.status, json: await r.json()};
        } catch (e) { return {error: String(e)}; }
    }"""
    url = f"{running.service.keyholder_url}{EVALUATE}"
    elsewhere = f"https://127.0.0.1:{free_port()}"
    dev = running.service.dev
    results = {}
    with chromium([dev / "keyholder.crt", dev / "server.crt"]) as browser:
        context = new_context(browser)
        for origin in (running.portal_origin, elsewhere):
            with page_server(origin, dev / "server.crt", dev / "server.key"):
                page = context.new_page()
                page.goto(f"{origin}/")
                results[origin] = page.evaluate(script, [url, token, body])
                page.close()
        context.close()
    allowed = results[running.portal_origin]
    assert allowed.get("status") == 200, allowed
    assert len(allowed["json"]["evaluated_elements"]) == 1
    assert "error" in results[elsewhere], results
