"""The development OpenID provider through the real flow: authorization request, the
sign-in page, the redirect with a code, the token request with the PKCE verifier and
client secret, and an ID token that verifies against the published key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from support import postgres
from support.oidc import (
    CLIENT_ID,
    REDIRECT_URI,
    USERS,
    RunningIdp,
    authorization,
    pkce,
    running_idp,
    sign_in,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        postgres.on_postgresql(),
        reason="the development provider has no database: runs once, on SQLite",
    ),
]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIdp]:
    with running_idp(Path(tmp_path_factory.mktemp("idp"))) as running:
        yield running


def _code(idp: RunningIdp, params: dict[str, str], sub: str = "huisarts-1") -> str:
    with idp.http() as http:
        answer = sign_in(idp, http, params, sub)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [params["state"]]
    return query["code"][0]


def _token(idp: RunningIdp, code: str, verifier: str, secret: str | None = None) -> httpx.Response:
    with idp.http() as http:
        return http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(CLIENT_ID, secret if secret is not None else idp.client_secret),
        )


def test_the_whole_flow_gives_a_verifiable_id_token(idp: RunningIdp) -> None:
    with idp.http() as http:
        discovery = http.get("/.well-known/openid-configuration").json()
        keys = KeySet.import_key_set(http.get("/jwks.json").json())
        verifier, challenge = pkce()
        params = authorization(challenge)
        page = http.get("/authorize", params=params)
    assert discovery["issuer"] == idp.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert page.status_code == 200 and 'lang="nl"' in page.text
    assert all(user["name"] in page.text for user in USERS)
    assert (
        "script" not in page.text
        and "default-src 'none'" in page.headers["content-security-policy"]
    )
    answer = _token(idp, _code(idp, params), verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"].lower() == "bearer" and tokens["access_token"]
    assert all("d" not in key for key in http_keys(idp))  # the public half only
    decoded = jwt.decode(tokens["id_token"], keys, algorithms=["ES256"])
    claims = decoded.claims
    assert claims["iss"] == idp.issuer and claims["aud"] in (CLIENT_ID, [CLIENT_ID])
    assert claims["nonce"] == params["nonce"] and claims["sub"] == "huisarts-1"
    assert claims["acr"] == USERS[0]["acr"]
    assert claims["vir_oin"] == USERS[0]["organisation"] and claims["vir_roles"] == ["professional"]
    with idp.http() as http:
        info = http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == "huisarts-1"


def http_keys(idp: RunningIdp) -> list[dict[str, object]]:
    with idp.http() as http:
        return list(http.get("/jwks.json").json()["keys"])


def test_a_wrong_verifier_gets_no_token_and_burns_nothing_else(idp: RunningIdp) -> None:
    _verifier, challenge = pkce()
    code = _code(idp, authorization(challenge))
    wrong = _token(idp, code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_a_code_is_used_once(idp: RunningIdp) -> None:
    verifier, challenge = pkce()
    code = _code(idp, authorization(challenge))
    assert _token(idp, code, verifier).status_code == 200
    again = _token(idp, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_wrong_client_secret_is_refused(idp: RunningIdp) -> None:
    verifier, challenge = pkce()
    code = _code(idp, authorization(challenge))
    answer = _token(idp, code, verifier, secret="not-the-secret")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    # The code still works for the real client: a wrong secret does not consume it.
    assert _token(idp, code, verifier).status_code == 200


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),  # PKCE is required
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"nonce": ""}, "invalid_request"),
    ],
)
def test_bad_authorization_requests_get_no_sign_in_page(
    idp: RunningIdp, override: dict[str, str], error: str
) -> None:
    params = authorization(pkce()[1], **override)
    with idp.http() as http:
        page = http.get("/authorize", params=params)
        posted = sign_in(idp, http, params, "huisarts-1")
    assert page.status_code == 400 and error in page.text
    assert "code=" not in posted.headers.get("location", "")


def test_an_unregistered_redirect_uri_is_never_redirected_to(idp: RunningIdp) -> None:
    params = authorization(pkce()[1], redirect_uri="https://attacker.example/cb")
    with idp.http() as http:
        page = http.get("/authorize", params=params)
        posted = sign_in(idp, http, params, "huisarts-1")
    assert page.status_code == 400
    assert "attacker.example" not in posted.headers.get("location", "")


def test_an_unknown_user_is_denied(idp: RunningIdp) -> None:
    params = authorization(pkce()[1])
    with idp.http() as http:
        answer = sign_in(idp, http, params, "nobody")
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.status_code == 302 and query["error"] == ["access_denied"] and "code" not in query


def test_oversized_and_repeated_parameters_are_refused(idp: RunningIdp) -> None:
    params = authorization(pkce()[1])
    with idp.http() as http:
        huge = http.get("/authorize", params=params | {"state": "x" * 5000})
        repeated = http.get(
            "/authorize", params=[*params.items(), ("redirect_uri", "https://a.example/")]
        )
        token = http.post("/token", content=b"a=" + b"x" * 10000)
        bearer = http.get("/userinfo", headers={"Authorization": "Bearer nope"})
    assert huge.status_code == 400 and repeated.status_code == 400 and token.status_code == 400
    assert bearer.status_code == 401
