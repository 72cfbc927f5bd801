"""The key holder's access-token door, tried the way an attacker would (issue 18).

``POST /v1/oprf/evaluate`` takes a person's RFC 9068 access token from a configured
provider (vir.keyholder.bearer). Every token here but one differs from what the
provider makes in one thing: the time, the issuer, the audience, the algorithm
(``none``, HS256 keyed with the provider's public key), the payload under a real
signature, the key, the assurance level, the organisation claim, the size. Each is
refused alike: 401 problem+json, ``WWW-Authenticate: Bearer error="invalid_token"``,
nothing of the token in the answer, the refusal audited with a fixed code and
without the token, the token in no log line. CORS answers the portal's origin only.
``vir keyholder oidc`` refuses what it must not store.

Real processes: ``vir keyholder serve`` (and ``vir serve``) from ``vir dev init``, and
the development OpenID provider over HTTPS, which signs with the test's key so that
the tests can make tokens as it would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from support import postgres
from support.bearer import (
    EVALUATE,
    GP_OIN,
    GP_SUB,
    INDEX_OPERATOR_OIN,
    SCHOOL_OIN,
    SCHOOL_SUB,
    Deployment,
    bearer,
    claims_of,
    deployment,
    evaluate_body,
    start_idp,
)
from support.https import Reply, request
from support.service import free_port, stop_process

from vir.crypto import oprf, pki
from vir.keyholder.bearer import (
    KEYS_SECONDS,
    REFETCH_SECONDS,
    RETRY_SECONDS,
    ProviderKeys,
    TokenRefused,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        postgres.on_postgresql(),
        reason="checking a token is not storage (the shared quota: test_keyholder_bearer)",
    ),
]

CHALLENGE = 'Bearer error="invalid_token"'


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory.mktemp("bearer-edges")) as made:
        yield made


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def _evaluate(running: Deployment, headers: dict[str, str], cert: bool = False) -> Reply:
    org = running.service.org("gp")
    return request(
        running.service.keyholder_port,
        running.service.ca,
        "POST",
        EVALUATE,
        evaluate_body([oprf.blind(b"nl-bsn:edge")[1]]),
        (org.cert, org.key) if cert else None,
        headers,
    )


def _refused(reply: Reply, token: str) -> None:
    """401 invalid-token, the challenge, and no part of ``token`` in the answer."""
    assert reply.status == 401, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["www-authenticate"] == CHALLENGE
    assert reply.json()["type"] == "urn:vir:problem:invalid-token"
    answer = reply.body + json.dumps(reply.headers).encode()
    for part in [token, *token.split(".")]:
        assert len(part) < 8 or part.encode() not in answer


def _refusal_reasons(running: Deployment) -> list[str]:
    rows = running.service.keyholder_sql(
        "SELECT body FROM audit_entries WHERE action = 'request.refused' ORDER BY seq"
    )
    return [json.loads(bytes(r[0]) if not isinstance(r[0], str) else r[0])["reason"] for r in rows]


def test_a_token_as_the_provider_makes_it_is_accepted(running: Deployment) -> None:
    """The control for every refusal below: the same token, unchanged, evaluates."""
    reply = _evaluate(running, bearer(running.mint()))
    assert reply.status == 200, reply.body
    assert _evaluate(running, bearer(running.mint({"aud": "vir-keyholder"}))).status == 200


NOW = int(time.time())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": NOW - 3600, "iat": NOW - 4200}, "token_expired"),
        ({"exp": None}, "token_expired"),
        ({"iat": NOW + 3600, "exp": NOW + 4200}, "token_time"),
        ({"nbf": NOW + 3600}, "token_time"),
        ({"iss": "https://127.0.0.1:1"}, "token_issuer"),
        ({"iss": None}, "token_issuer"),
        ({"aud": ["someone-else"]}, "token_audience"),
        ({"aud": None}, "token_audience"),
        ({"acr": None}, "assurance_level"),
        ({"acr": "urn:etoegang:core:assurance-class:loa2"}, "assurance_level"),
        ({"vir_oin": INDEX_OPERATOR_OIN}, "organisation"),  # registered, not for this issuer
        ({"vir_oin": "99999999999999999999"}, "organisation"),
        ({"vir_oin": [GP_OIN]}, "organisation"),
        ({"vir_oin": None}, "organisation"),
        ({"sub": None}, "token_claims"),
        ({"client_id": None}, "token_claims"),
        ({"jti": None}, "token_claims"),
    ],
    # The claims' names only: a time in an id would differ between xdist's workers.
    ids=lambda value: "+".join(sorted(value)) if isinstance(value, dict) else value,
)
def test_a_token_changed_in_one_claim_is_refused(
    running: Deployment, changes: dict[str, Any], reason: str
) -> None:
    token = running.mint(changes)
    _refused(_evaluate(running, bearer(token)), token)
    assert reason in _refusal_reasons(running)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"typ": "JWT"}, "token_type"),
        ({"typ": None}, "token_type"),
        ({"alg": "ES384"}, "token_algorithm"),
    ],
)
def test_a_token_with_another_header_is_refused(
    running: Deployment, header: dict[str, Any], reason: str
) -> None:
    claims = claims_of(running.mint())
    head = {"alg": "ES256", "typ": "at+jwt", "kid": running.idp.key.kid} | header
    head = {k: v for k, v in head.items() if v is not None}
    signing_input = f"{_json64(head)}.{_json64(claims)}"
    if head["alg"] == "ES256":
        token = jwt.encode(head, claims, running.idp.key)
    else:  # a signature that would verify is beside the point: the alg is not allowed
        token = f"{signing_input}.{_b64(b'x' * 96)}"
    _refused(_evaluate(running, bearer(token)), token)
    assert reason in _refusal_reasons(running)


def test_alg_none_is_refused_with_or_without_a_signature(running: Deployment) -> None:
    claims = claims_of(running.mint())
    unsigned = f"{_json64({'alg': 'none', 'typ': 'at+jwt'})}.{_json64(claims)}"
    for token in (unsigned + ".", unsigned + "." + _b64(b"sig")):
        _refused(_evaluate(running, bearer(token)), token)


def test_hs256_keyed_with_the_providers_public_key_is_refused(running: Deployment) -> None:
    """The classic confusion: the verifier's own public key as an HMAC secret."""
    key = running.idp.key
    public = ECKey.import_key(key.as_dict(private=False))
    claims = claims_of(running.mint())
    secrets_to_try = [
        json.dumps(public.as_dict()).encode(),
        public.as_pem(private=False),
        json.dumps(public.as_dict(), separators=(",", ":")).encode(),
    ]
    for secret in secrets_to_try:
        head = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
        signing_input = f"{_json64(head)}.{_json64(claims)}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        _refused(_evaluate(running, bearer(token)), token)
    assert "token_algorithm" in _refusal_reasons(running)


def test_a_real_token_with_its_payload_changed_is_refused(running: Deployment) -> None:
    token = running.token(GP_SUB)
    header, _payload, signature = token.split(".")
    for change in ({"vir_oin": SCHOOL_OIN}, {"sub": SCHOOL_SUB}, {"exp": NOW + 86400}):
        tampered = f"{header}.{_json64(claims_of(token) | change)}.{signature}"
        _refused(_evaluate(running, bearer(tampered)), tampered)
    assert _evaluate(running, bearer(token)).status == 200  # the untouched one is fine
    assert "token_signature" in _refusal_reasons(running)


def test_an_unknown_key_is_refused(running: Deployment) -> None:
    other = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"})
    other.ensure_kid()
    claims = claims_of(running.mint())
    for kid in (other.kid, running.idp.key.kid):  # a new kid, and the provider's own
        token = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, other)
        _refused(_evaluate(running, bearer(token)), token)


def test_a_token_from_a_provider_not_configured_here_is_refused(running: Deployment) -> None:
    """Another real provider (same users and client): its tokens speak for nobody here,
    under its own issuer or under the trusted one's."""
    port = free_port()
    other = start_idp(running.service.root, port, name=f"idp-{port}")
    try:
        token = running.token(GP_SUB, idp=other)
        assert claims_of(token)["iss"] == other.issuer
        _refused(_evaluate(running, bearer(token)), token)
        posing = jwt.encode(
            {"alg": "ES256", "typ": "at+jwt", "kid": other.key.kid},
            claims_of(token) | {"iss": running.idp.issuer},
            other.key,
        )
        _refused(_evaluate(running, bearer(posing)), posing)
    finally:
        stop_process(other.process)


def test_oversized_and_malformed_authorization_is_refused(running: Deployment) -> None:
    big = running.mint({"pad": "x" * 9000})
    _refused(_evaluate(running, bearer(big)), big)
    for value in ("Basic Zm9vOmJhcg==", "Bearer", "Bearer ", "Bearer a.b", "Bearer a.b.c.d"):
        reply = _evaluate(running, {"Authorization": value})
        assert reply.status == 401 and reply.headers["www-authenticate"] == CHALLENGE
    try:
        huge = _evaluate(running, bearer("a" * 200_000))
    except ConnectionError:  # the server may close on a header this size: also fine
        return
    assert huge.status in (400, 401, 413, 431)


def test_a_token_opens_evaluate_only(running: Deployment) -> None:
    token = running.mint()
    service = running.service
    for path in ("/v1/oprf/epochs", "/v1/oprf/usage?from=2026-01-01&to=2026-01-02"):
        reply = request(service.keyholder_port, service.ca, "GET", path, headers=bearer(token))
        assert reply.status == 401, (path, reply.body)
        assert reply.json()["type"] == "urn:vir:problem:client-certificate-required"


def test_with_a_certificate_the_certificate_decides(running: Deployment) -> None:
    school = running.token(SCHOOL_SUB)
    assert _evaluate(running, bearer(school), cert=True).status == 200
    assert _evaluate(running, bearer("not.a.token"), cert=True).status == 200
    rows = running.service.keyholder_sql(
        "SELECT body FROM audit_entries WHERE action = 'oprf.evaluate' ORDER BY seq"
    )
    last = json.loads(bytes(rows[-1][0]) if not isinstance(rows[-1][0], str) else rows[-1][0])
    pem = Path(running.service.org("gp").cert).read_bytes()
    gp = pki.fingerprint(pki.load_certificate(pem))
    assert last["organisation"] == GP_OIN and last["certificate"] == gp and last["actor"] is None


# --- CORS --------------------------------------------------------------------------------------


def _preflight(running: Deployment, path: str = EVALUATE, **headers: str) -> Reply:
    send = {
        "Origin": running.portal_origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    } | {k.replace("_", "-"): v for k, v in headers.items()}
    return request(
        running.service.keyholder_port, running.service.ca, "OPTIONS", path, headers=send
    )


def _no_cors(reply: Reply) -> None:
    assert not [h for h in reply.headers if h.startswith("access-control-")], reply.headers


def _refused_preflight(reply: Reply, header: str) -> None:
    """403 without a CORS header, and (before: an empty answer without a content type)
    a problem+json naming the header that was refused, as every error of the API is."""
    assert reply.status == 403, (header, reply.status)
    _no_cors(reply)
    assert reply.headers["content-type"] == "application/problem+json", reply.headers
    problem = reply.json()
    assert problem["type"] == "urn:vir:problem:cors-preflight-refused"
    assert problem["status"] == 403 and problem["title"]
    assert problem["detail"].startswith(f"{header}: "), problem
    assert "attacker" not in problem["detail"] and "x-evil" not in problem["detail"]
    assert int(reply.headers["content-length"]) == len(reply.body)
    assert reply.headers["cache-control"] == "no-store"


def test_a_preflight_is_granted_to_the_portals_origin_only(running: Deployment) -> None:
    granted = _preflight(running)
    assert granted.status == 204
    assert granted.headers["access-control-allow-origin"] == running.portal_origin
    assert "access-control-allow-credentials" not in granted.headers
    portal = running.portal_origin
    for origin in (
        "https://attacker.example",
        "null",
        portal + "/",
        portal.replace("https://", "http://"),
        portal.replace("127.0.0.1", "localhost"),
        portal + ".attacker.example",
        "https://127.0.0.1",
    ):
        _refused_preflight(_preflight(running, Origin=origin), "Origin")
    for changed in (
        {"Access_Control_Request_Method": "PUT"},
        {"Access_Control_Request_Headers": "authorization, x-evil"},
        {"Access_Control_Request_Headers": "cookie"},
    ):
        named = next(iter(changed)).replace("_", "-")
        _refused_preflight(_preflight(running, **changed), named)
    # Only evaluate is open to the portal's page.
    _no_cors(_preflight(running, path="/v1/oprf/epochs"))


def test_an_answer_names_the_portals_origin_only(running: Deployment) -> None:
    token = running.mint()
    foreign = _evaluate(running, bearer(token) | {"Origin": "https://attacker.example"})
    assert foreign.status == 200  # answered, but no browser lets that page read it
    _no_cors(foreign)
    portal = _evaluate(running, bearer(running.mint()) | {"Origin": running.portal_origin})
    assert portal.headers["access-control-allow-origin"] == running.portal_origin
    assert "origin" in portal.headers["vary"].lower()
    assert "access-control-allow-credentials" not in portal.headers
    refused = _evaluate(running, bearer("x.y.z") | {"Origin": running.portal_origin})
    assert refused.status == 401  # the page can read why (and sign in again)
    assert refused.headers["access-control-allow-origin"] == running.portal_origin


# --- Nothing of a token or a subject is kept -----------------------------------------------------


def test_tokens_and_subjects_appear_in_no_log_answer_or_audit_entry(running: Deployment) -> None:
    tokens = [
        running.token(GP_SUB),
        running.mint({"exp": NOW - 3600, "iat": NOW - 4000}),
        running.mint({"aud": ["x"]}),
        running.mint({"vir_oin": INDEX_OPERATOR_OIN}),
    ]
    answers = b""
    for token in tokens:
        reply = _evaluate(running, bearer(token) | {"Origin": running.portal_origin})
        answers += reply.body + json.dumps(reply.headers).encode()
    service = running.service
    logs = (service.keyholder_log() + service.log()).encode()
    audit = b"".join(
        bytes(r[0]) if not isinstance(r[0], str) else r[0].encode()
        for r in service.keyholder_sql("SELECT body FROM audit_entries")
    )
    for token in tokens:
        for part in [token, token.split(".")[1], token.split(".")[2]]:
            for where, text in (("answer", answers), ("log", logs), ("audit", audit)):
                assert part.encode() not in text, where
    for subject in (GP_SUB, SCHOOL_SUB):
        assert subject.encode() not in audit and subject.encode() not in logs


# --- The provider's keys are fetched rarely ------------------------------------------------


def test_an_unknown_kid_fetches_the_key_set_at_most_once_a_minute(running: Deployment) -> None:
    now = [1000.0]
    fetched: list[float] = []

    class Counting(ProviderKeys):
        def _fetch(self, issuer: str) -> Any:
            fetched.append(now[0])
            return super()._fetch(issuer)

    keys = Counting(running.service.dev / "ca.crt", monotonic=lambda: now[0])
    try:
        issuer = running.idp.issuer
        assert running.idp.key.kid in {k.kid for k in keys.keys(issuer).keys}
        for step in (1, 10, REFETCH_SECONDS - 15):  # within the minute: the cached set
            now[0] = 1000.0 + step
            keys.keys(issuer, unknown_kid=True)
            keys.keys(issuer)
        assert len(fetched) == 1
        now[0] = 1000.0 + REFETCH_SECONDS + 1
        keys.keys(issuer, unknown_kid=True)
        keys.keys(issuer, unknown_kid=True)
        assert len(fetched) == 2
        now[0] += KEYS_SECONDS - 1
        keys.keys(issuer)
        assert len(fetched) == 2
        now[0] += 2
        keys.keys(issuer)
        assert len(fetched) == 3
    finally:
        keys.close()


# --- vir keyholder oidc ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--issuer", "http://idp.example"], "issuer"),
        (["--issuer", "https://idp.example/?x=1"], "issuer"),
        (["--issuer", "https://idp.example/#f"], "issuer"),
        (["--issuer", "https://user@idp.example"], "issuer"),
        (["--issuer", "https://idp.example/ space"], "issuer"),
        (["--issuer", "https://" + "a" * 300 + ".example"], "issuer"),
        (["--issuer", "https://idp.example", "--audience", "a b"], "audience"),
        (["--issuer", "https://idp.example", "--acr", "x" * 201], "acr"),
        (["--issuer", "https://idp.example", "--organisation-claim", "sub"], "organisation_claim"),
        (["--issuer", "https://idp.example", "--organisation-claim", "a b"], "organisation_claim"),
        ([], "issuer"),
    ],
)
def test_vir_keyholder_oidc_refuses_bad_values(
    running: Deployment, args: list[str], field: str
) -> None:
    before = running.service.keyholder_sql("SELECT oin, issuer FROM keyholder_oidc ORDER BY oin")
    result = running.service.keyholder("oidc", SCHOOL_OIN, *args, check=False)
    assert result.returncode != 0 and field in result.stderr, result.stderr
    after = running.service.keyholder_sql("SELECT oin, issuer FROM keyholder_oidc ORDER BY oin")
    assert after == before


def test_vir_keyholder_oidc_keeps_an_issuer_to_one_organisation_each(
    running: Deployment,
) -> None:
    service = running.service
    unknown = service.keyholder(
        "oidc", "99999999999999999999", "--issuer", "https://a.example", check=False
    )
    assert unknown.returncode != 0 and "oin" in unknown.stderr
    # The development provider serves several organisations: one without the claim is refused.
    shared = service.keyholder("oidc", SCHOOL_OIN, "--issuer", running.idp.issuer, check=False)
    assert shared.returncode != 0 and "organisation_claim" in shared.stderr
    # Removed, the school's people are refused; set again, accepted.
    school = running.mint({"sub": SCHOOL_SUB, "vir_oin": SCHOOL_OIN})
    service.keyholder("oidc", SCHOOL_OIN, "--remove")
    _refused(_evaluate(running, bearer(school)), school)
    service.keyholder(
        "oidc",
        SCHOOL_OIN,
        "--issuer",
        running.idp.issuer,
        "--acr",
        claims_of(school)["acr"],
        "--organisation-claim",
        "vir_oin",
    )
    assert _evaluate(running, bearer(school)).status == 200
    changes = service.keyholder_sql(
        "SELECT body FROM audit_entries WHERE action = 'admin.oidc_changed' ORDER BY seq"
    )
    states = [
        json.loads(bytes(r[0]) if not isinstance(r[0], str) else r[0])["objects"] for r in changes
    ]
    assert {"state": "removed"} in states and {"state": "set", "issuer": "127.0.0.1"} in states


def test_a_provider_that_is_down_is_not_asked_again_at_once() -> None:
    """Tokens naming a configured provider that does not answer cost one attempt per
    RETRY_SECONDS, not one (with its timeout) per request."""
    now = [1000.0]
    fetched: list[float] = []

    class Counting(ProviderKeys):
        def _fetch(self, issuer: str) -> Any:
            fetched.append(now[0])
            return super()._fetch(issuer)

    keys = Counting(timeout=2, monotonic=lambda: now[0])
    down = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        for step in (0, 1, RETRY_SECONDS - 1):
            now[0] = 1000.0 + step
            with pytest.raises(TokenRefused) as refused:
                keys.keys(down)
            assert refused.value.code == "provider_unreachable"
        assert fetched == [1000.0]
        now[0] = 1000.0 + RETRY_SECONDS + 1
        with pytest.raises(TokenRefused):
            keys.keys(down)
        assert len(fetched) == 2
    finally:
        keys.close()


def test_vir_keyholder_oidc_takes_the_named_clients_tokens_only(running: Deployment) -> None:
    """Found by a browser walk in stop 42: any token of the right audience from the
    organisation's provider was taken, whichever OAuth client it was issued to, so every
    other client of that provider (for the same audience) was a way to pseudonymise on
    the organisation's account. With ``--client-id`` only the named clients' tokens
    are (``vir dev init`` names the portal's); without it, any client's, as before."""
    service = running.service
    gp = running.mint({"sub": GP_SUB, "vir_oin": GP_OIN})
    other = running.mint({"sub": GP_SUB, "vir_oin": GP_OIN, "client_id": "some-other-app"})
    assert claims_of(gp)["client_id"] == "vir-portal"

    def trust(*clients: str) -> None:
        named = [a for c in clients for a in ("--client-id", c)]
        service.keyholder(
            "oidc",
            GP_OIN,
            *("--issuer", running.idp.issuer, "--acr", claims_of(gp)["acr"]),
            *("--organisation-claim", "vir_oin", *named),
        )

    assert _evaluate(running, bearer(gp)).status == 200  # the development set-up
    _refused(_evaluate(running, bearer(other)), other)
    assert "token_client" in _refusal_reasons(running)
    try:
        trust("vir-portal", "some-other-app")
        assert _evaluate(running, bearer(other)).status == 200
        trust()
        assert _evaluate(running, bearer(other)).status == 200
        bad = service.keyholder(
            "oidc", GP_OIN, "--issuer", running.idp.issuer, "--client-id", "a b", check=False
        )
        assert bad.returncode != 0 and "client_id" in bad.stderr
    finally:
        trust("vir-portal")  # as the development set-up has it
    _refused(_evaluate(running, bearer(other)), other)
