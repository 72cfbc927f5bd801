"""The development OpenID provider: Authorization Code + PKCE on Authlib's server.

For ``make run`` and the tests only: it stands in for an organisation's own identity
provider, so that the portal's sign-in is the real redirect flow (discovery,
authorization, token, ID token signed with a key published as a JWK set). Users are
the demo users of ``vir dev init`` (``users.json``): a person per demo organisation
and role. It keeps clients' codes and tokens in memory; it is one process.

Its access tokens are JWTs (RFC 9068: ``typ`` ``at+jwt``, signed with the same key)
for the key holder, which checks them itself when the portal's page asks it for an
evaluation (vir.keyholder.bearer): ``aud`` the key holder's audience
(``KEYHOLDER_AUDIENCE`` unless configured), ``acr``, ``vir_oin``, ``sub``,
``client_id``, valid ACCESS_TOKEN_SECONDS. ``/userinfo`` takes them too.

Its ``end_session_endpoint`` (``/logout``, OpenID Connect RP-Initiated Logout 1.0)
sends the browser back to where a client asks, when that is one of the client's
registered post-logout addresses: the origin of each of its redirect URIs, path ``/``.

What a real provider does that this one leaves out: passwords or any other
authentication (the sign-in page lets you pick a demo user), consent, sessions of
its own (so signing out ends nothing here), refresh tokens.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, JsonRequest
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import ECKey, KeySet

CODE_SECONDS = 60
TOKEN_SECONDS = 900
ACCESS_TOKEN_SECONDS = 600
ALGORITHM = "ES256"
# The ``aud`` of the access tokens: the name by which they address the key holder (its
# VIR_KEYHOLDER_OIDC_AUDIENCE; ``vir dev init`` configures the demo key holder with it).
KEYHOLDER_AUDIENCE = "vir-keyholder"


@dataclass(frozen=True)
class DemoUser:
    """A person at a demo organisation: what the provider puts in the ID token."""

    sub: str
    name: str
    email: str
    organisation: str  # OIN, the ``vir_oin`` claim
    roles: tuple[str, ...]  # the ``vir_roles`` claim
    acr: str  # the assurance level of this sign-in (eIDAS: substantial, high)

    @classmethod
    def of(cls, data: dict[str, Any]) -> DemoUser:
        return cls(
            sub=str(data["sub"]),
            name=str(data["name"]),
            email=str(data["email"]),
            organisation=str(data["organisation"]),
            roles=tuple(str(r) for r in data["roles"]),
            acr=str(data["acr"]),
        )

    def get_user_id(self) -> str:
        return self.sub

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "name": self.name,
            "email": self.email,
            "vir_oin": self.organisation,
            "vir_roles": list(self.roles),
        }


@dataclass(frozen=True)
class Client:
    """A relying party: the portal. Confidential (a secret at the token endpoint)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "profile", "email"}
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_post_logout_redirect_uri(self, uri: str) -> bool:
        """Whether ``uri`` is the origin of one of the redirect URIs, path ``/``."""
        return uri in {f"{_origin(r)}/" for r in self.redirect_uris}

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


# A logout request's ``state``: what the client gets back, as it sent it.
_STATE = re.compile(r"[A-Za-z0-9._~-]{1,256}")


@dataclass
class Code:
    """An authorization code, once, for CODE_SECONDS."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: DemoUser
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return self.user.acr

    def get_amr(self) -> list[str]:
        return ["pwd"]

    def is_expired(self) -> bool:
        return time.time() > self.auth_time + CODE_SECONDS


class _CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        provider: Provider = self.server.provider
        payload = request.payload
        assert payload is not None and request.user is not None
        provider.codes[code] = Code(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=payload.redirect_uri or "",
            scope=payload.scope or "",
            user=request.user,
            nonce=payload.data.get("nonce"),
            code_challenge=payload.data.get("code_challenge", ""),
            code_challenge_method=payload.data.get("code_challenge_method", ""),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = self.server.provider.codes.get(code)
        if found is None or found.client_id != client.client_id or found.is_expired():
            return None
        return found  # type: ignore[no-any-return]

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> DemoUser:
        return authorization_code.user


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with the S256 method only: ``plain`` sends the verifier itself."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]


class _OpenIDCode(OpenIDCode):  # type: ignore[misc]
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self._provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return any(c.nonce == nonce for c in self._provider.codes.values())

    def resolve_client_private_key(self, client: Client) -> KeySet:
        return self._provider.keys

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self._provider.issuer, "aud": [client.client_id]}

    def get_expires_in(self, client: Client) -> int:
        return TOKEN_SECONDS

    def generate_user_info(self, user: DemoUser, scope: str) -> dict[str, Any]:
        return user.claims()


class _AccessTokens(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens: for the key holder, with the person's assurance level and
    organisation."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(
            provider.issuer,
            alg=ALGORITHM,
            expires_generator=lambda _client, _grant: ACCESS_TOKEN_SECONDS,
        )
        self._provider = provider

    def get_jwks(self) -> KeySet:
        return self._provider.keys

    def get_audiences(self, client: Client, user: DemoUser, scope: str) -> list[str]:
        return [self._provider.audience]

    def get_acr(self, user: DemoUser) -> str:
        return user.acr

    def get_extra_claims(
        self, client: Client, grant_type: str, user: DemoUser, scope: str
    ) -> dict[str, Any]:
        return {"vir_oin": user.organisation}


class _Server(AuthorizationServer):  # type: ignore[misc]
    """Authlib's authorization server on plain request values (method, URL, form)."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=["openid", "profile", "email"])
        self.provider = provider
        self.register_token_generator("default", _AccessTokens(provider))
        self.register_grant(_CodeGrant, [_S256Only(required=True), _OpenIDCode(provider)])

    def query_client(self, client_id: str) -> Client | None:
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        expires = time.time() + ACCESS_TOKEN_SECONDS
        self.provider.tokens[token["access_token"]] = (request.user, expires)

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def create_json_request(self, request: JsonRequest) -> JsonRequest:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


class _Request(OAuth2Request):  # type: ignore[misc]
    """A request as the web layer read it: the query's and the form's values apart."""

    def __init__(
        self, method: str, url: str, query: Mapping[str, str], form: Mapping[str, str], headers: Any
    ) -> None:
        super().__init__(method, url, headers=headers)
        self._query, self._form = dict(query), dict(form)
        self.payload = BasicOAuth2Payload(self._query | self._form)

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


def oauth2_request(
    method: str, url: str, query: Mapping[str, str], form: Mapping[str, str], headers: Any
) -> Any:
    """An Authlib request from what the web layer read (``headers``: case-insensitive)."""
    return _Request(method, url, query, form, headers)


class Provider:
    """Clients, demo users, codes, tokens and the signing key of one provider."""

    def __init__(
        self,
        issuer: str,
        users: list[DemoUser],
        clients: list[Client],
        *,
        audience: str = KEYHOLDER_AUDIENCE,
        key: ECKey | None = None,
    ) -> None:
        """``key``: the P-256 signing key (a test's, to make tokens the provider would);
        by default a new one, in memory only."""
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.users = {u.sub: u for u in users}
        self.clients = {c.client_id: c for c in clients}
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, tuple[DemoUser, float]] = {}
        if key is None:
            key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": ALGORITHM})
        key.ensure_kid()
        self.keys = KeySet([key])
        self._lock = threading.Lock()
        self._server = _Server(self)

    @classmethod
    def from_file(
        cls,
        issuer: str,
        path: Path,
        *,
        audience: str = KEYHOLDER_AUDIENCE,
        key: ECKey | None = None,
    ) -> Provider:
        """The provider of ``users.json`` (``vir dev init``): its users and clients."""
        data = json.loads(path.read_text())
        return cls(
            issuer,
            [DemoUser.of(u) for u in data["users"]],
            [
                Client(c["client_id"], c["client_secret"], tuple(c["redirect_uris"]))
                for c in data["clients"]
            ],
            audience=audience,
            key=key,
        )

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks.json",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "name", "email", "acr", "vir_oin", "vir_roles"],
            "acr_values_supported": sorted({u.acr for u in self.users.values()}),
            "end_session_endpoint": f"{self.issuer}/logout",
        }

    def end_session(self, values: Mapping[str, str]) -> tuple[str | None, str | None]:
        """RP-Initiated Logout: (where to send the browser, None) for a known client and
        one of its post-logout addresses (with ``state`` as it came); (None, None) to
        show that the user is signed out, when no address is asked for; (None, error)
        for anything else, never a redirect to an address the client did not register."""
        client = self.clients.get(values.get("client_id", ""))
        back = values.get("post_logout_redirect_uri")
        state = values.get("state")
        if client is None:
            return None, "invalid_client"
        if back is None:
            return None, None
        if not client.check_post_logout_redirect_uri(back):
            return None, "invalid_post_logout_redirect_uri"
        if state is None:
            return back, None
        if not _STATE.fullmatch(state):
            return None, "invalid_request"
        return f"{back}?{urlencode({'state': state})}", None

    def jwks(self) -> dict[str, Any]:
        return dict(self.keys.as_dict(private=False))

    def check_authorization(self, request: Any) -> str | None:
        """None when the authorization request is valid; else the OAuth error code."""
        with self._lock:
            try:
                self._server.get_consent_grant(request)
            except OAuth2Error as error:
                return str(error.error)
        return None

    def authorize(self, request: Any, sub: str) -> tuple[int, Any, list[tuple[str, str]]]:
        """The redirect back to the client with a code for ``sub``, or with the error
        ``access_denied`` for an unknown user; an OAuth error for a bad request."""
        with self._lock:
            try:
                grant = self._server.get_consent_grant(request)
            except OAuth2Error as error:
                result: tuple[int, Any, list[tuple[str, str]]] = self._server.handle_error_response(
                    request, error
                )
                return result
            result = self._server.create_authorization_response(
                request, grant_user=self.users.get(sub), grant=grant
            )
            return result

    def token(self, request: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        with self._lock:
            self._expire()
            result: tuple[int, Any, list[tuple[str, str]]] = self._server.create_token_response(
                request
            )
            return result

    def userinfo(self, access_token: str) -> dict[str, Any] | None:
        with self._lock:
            self._expire()
            found = self.tokens.get(access_token)
        return found[0].claims() if found else None

    def _expire(self) -> None:
        now = time.time()
        self.codes = {k: c for k, c in self.codes.items() if not c.is_expired()}
        self.tokens = {k: t for k, t in self.tokens.items() if t[1] > now}
