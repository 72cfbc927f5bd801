"""The portal as an OpenID Connect relying party: Authorization Code flow with PKCE.

``authorization_url`` sends the browser to the organisation's provider with a state,
a nonce and an S256 code challenge; ``sign_in`` exchanges the code (client secret and
verifier) and verifies the ID token: signature by a key of the provider's published
JWK set, issuer, audience, expiry, nonce, the required ``acr`` and, where
configured, the organisation claim. Only then does the portal know who signed in.

Providers are reached over HTTPS only, their answers are bounded in size, and
nothing a provider sends ends up in a log or an error message: failures are codes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from vir.portal.config import OidcConfig, PortalRole

# Signature algorithms an ID token may use (never "none", never HMAC with the secret).
ALGORITHMS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]
LEEWAY_SECONDS = 60  # clock difference tolerated on exp and iat
CACHE_SECONDS = 600  # how long a provider's discovery document and keys are reused
MAX_ANSWER_BYTES = 64 * 1024
MAX_ACCESS_TOKEN = 4096  # longer access tokens are not kept
DEFAULT_TOKEN_SECONDS = 300  # an access token's life when the provider does not say


class SignInFailed(Exception):
    """Sign-in did not succeed; ``code`` says why (a fixed code, safe to log and audit)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class SignedIn:
    """Who signed in: the stable pseudonymous person id, the name to greet them with,
    their portal roles, and the provider's access token (for the key holder, which
    accepts it for the person's organisation; None when the provider gave none) with
    the seconds it is valid."""

    person: str
    name: str
    roles: tuple[PortalRole, ...]
    access_token: str | None = None
    expires_in: int = 0


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def person_id(issuer: str, subject: str) -> str:
    """A digest of the provider and its subject: what a sign-in gives (``SignedIn``),
    never stored as it is. Anyone can compute it for a guessed subject (an employee
    number, an e-mail address), so what is stored and logged is ``stored_person``."""
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()


def stored_person(key: bytes, digest: str) -> str:
    """The person's stable pseudonymous id in vir: HMAC-SHA256 under the portal's key
    (``SecretBox.subkey``) of ``person_id``. The audit log names the person by it (NEN
    7513) without holding the provider's identifier, and without the key nobody can tell
    whose id it is, even knowing a subject. (Before stop 42 the unkeyed digest itself
    was stored: entries written then keep it; a person's portal signals registered then
    are claimed at their next sign-in, ``vir.portal.app``.)"""
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


class Providers:
    """Discovery documents and key sets of the providers, fetched over HTTPS and cached."""

    def __init__(self, ca_file: Path | None = None, timeout: float = 10.0) -> None:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._http = httpx.Client(verify=context, timeout=timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}

    def close(self) -> None:
        self._http.close()

    def metadata(self, issuer: str) -> dict[str, Any]:
        with self._lock:
            cached = self._documents.get(issuer)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        document = self._get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        if not isinstance(document, dict):
            raise SignInFailed("provider_metadata")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not str(document.get(name, "")).startswith("https://"):
                raise SignInFailed("provider_metadata")
        if document.get("issuer") != issuer:
            raise SignInFailed("provider_metadata")
        with self._lock:
            self._documents[issuer] = (time.monotonic(), document)
        found: dict[str, Any] = document
        return found

    def keys(self, jwks_uri: str, *, refresh: bool = False) -> KeySet:
        with self._lock:
            cached = self._keys.get(jwks_uri)
        if cached and not refresh and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            keys = KeySet.import_key_set(self._get_json(jwks_uri))
        except (JoseError, ValueError, TypeError, KeyError):
            raise SignInFailed("provider_keys") from None
        with self._lock:
            self._keys[jwks_uri] = (time.monotonic(), keys)
        return keys

    def post_form(self, url: str, form: Mapping[str, str], auth: tuple[str, str]) -> Any:
        try:
            response = self._http.post(url, data=dict(form), auth=auth)
        except httpx.HTTPError:
            raise SignInFailed("provider_unreachable") from None
        return _json(response)

    def _get_json(self, url: str) -> Any:
        try:
            response = self._http.get(url)
        except httpx.HTTPError:
            raise SignInFailed("provider_unreachable") from None
        return _json(response)


def _json(response: httpx.Response) -> Any:
    if len(response.content) > MAX_ANSWER_BYTES:
        raise SignInFailed("provider_answer")
    if response.status_code != 200:
        raise SignInFailed("provider_refused")
    try:
        return response.json()
    except ValueError:
        raise SignInFailed("provider_answer") from None


def authorization_url(
    providers: Providers,
    config: OidcConfig,
    redirect_uri: str,
    state: str,
    nonce: str,
    verifier: str,
) -> str:
    endpoint = str(providers.metadata(config.issuer)["authorization_endpoint"])
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile",
        "state": state,
        "nonce": nonce,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    if config.acr:
        params["acr_values"] = config.acr
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


# An end-session endpoint the portal sends a browser to: an https URL of these
# characters only (no quote, space or backslash: it is written into a page's
# refresh), without a fragment.
_END_SESSION = re.compile(
    r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*)?"
)


def logout_url(providers: Providers, config: OidcConfig, back: str) -> str | None:
    """Where the browser goes after the portal's own sign-out, to end the person's
    session at the provider too (OpenID Connect RP-Initiated Logout 1.0): the provider's
    ``end_session_endpoint`` with the portal's ``client_id`` and the address to come back
    to (``back``, which the organisation registers at its provider). No ``id_token_hint``:
    the portal keeps no ID token (it names the person). None when the provider advertises
    no such endpoint, or one that is no plain https URL, or cannot be reached now: the
    portal's own sign-out stands either way."""
    try:
        endpoint = providers.metadata(config.issuer).get("end_session_endpoint")
    except SignInFailed:
        return None
    if (
        not isinstance(endpoint, str)
        or len(endpoint) > 2048
        or not _END_SESSION.fullmatch(endpoint)
    ):
        return None
    separator = "&" if "?" in endpoint else "?"
    query = urlencode({"client_id": config.client_id, "post_logout_redirect_uri": back})
    return f"{endpoint}{separator}{query}"


def sign_in(
    providers: Providers,
    config: OidcConfig,
    code: str,
    verifier: str,
    nonce: str,
    redirect_uri: str,
) -> SignedIn:
    """Exchange ``code`` and check its ID token; SignInFailed with a code otherwise."""
    metadata = providers.metadata(config.issuer)
    answer = providers.post_form(
        str(metadata["token_endpoint"]),
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        (config.client_id, config.client_secret),
    )
    token = answer.get("id_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or len(token) > MAX_ANSWER_BYTES:
        raise SignInFailed("no_id_token")
    claims = verified_claims(providers, config, str(metadata["jwks_uri"]), token, time.time())
    if claims.get("nonce") != nonce:
        raise SignInFailed("nonce")
    who = _signed_in(config, claims)
    access, expires = answer.get("access_token"), answer.get("expires_in")
    if not (isinstance(access, str) and 0 < len(access) <= MAX_ACCESS_TOKEN):
        return who
    lasts = expires if isinstance(expires, int) and 0 < expires <= 86400 else DEFAULT_TOKEN_SECONDS
    return dataclasses.replace(who, access_token=access, expires_in=lasts)


def verified_claims(
    providers: Providers, config: OidcConfig, jwks_uri: str, token: str, now: float
) -> dict[str, Any]:
    """The claims of ``token`` once its signature, issuer, audience and times check out."""
    try:
        decoded = jwt.decode(token, providers.keys(jwks_uri), algorithms=ALGORITHMS)
    except (JoseError, ValueError):
        # A key the provider added since we fetched its set: fetch once more.
        try:
            decoded = jwt.decode(
                token, providers.keys(jwks_uri, refresh=True), algorithms=ALGORITHMS
            )
        except (JoseError, ValueError):
            raise SignInFailed("id_token_signature") from None
    claims = dict(decoded.claims)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != config.issuer:
        raise SignInFailed("id_token_issuer")
    if config.client_id not in audiences or (
        len(audiences) > 1 and claims.get("azp") != config.client_id
    ):
        raise SignInFailed("id_token_audience")
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or expires + LEEWAY_SECONDS < now:
        raise SignInFailed("id_token_expired")
    if not isinstance(issued, int | float) or issued - LEEWAY_SECONDS > now:
        raise SignInFailed("id_token_time")
    return claims


def _signed_in(config: OidcConfig, claims: Mapping[str, Any]) -> SignedIn:
    if config.organisation_claim is not None and claims.get(config.organisation_claim) != (
        config.oin
    ):
        raise SignInFailed("organisation")
    if config.acr is not None and claims.get("acr") != config.acr:
        raise SignInFailed("assurance_level")
    subject = claims.get(config.person_claim)
    if not isinstance(subject, str) or not 1 <= len(subject) <= 255:
        raise SignInFailed("person_claim")
    roles = config.roles_of(claims.get(config.role_claim))
    if not roles:
        raise SignInFailed("no_role")
    name = claims.get("name")
    shown = name if isinstance(name, str) and 1 <= len(name) <= 200 else "Onbekende naam"
    return SignedIn(person_id(config.issuer, subject), shown, roles)
