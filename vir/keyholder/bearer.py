"""People signed in to the portal, by their OAuth access token (RFC 9068 JWT).

The portal's page blinds in the browser and calls ``POST /v1/oprf/evaluate`` itself,
with ``Authorization: Bearer <access token>`` from the person's organisation's OpenID
provider (vir.keyholder.trust says which provider speaks for which organisation).
The key holder checks the token on its own, asking the provider nothing per request:

* the signature, by a key of the provider's JWK set (from its discovery document;
  cached, fetched again for an unknown ``kid`` at most once a minute), with an
  algorithm of ``ALGORITHMS`` only (never ``none``, never an HMAC, which would let
  the public key sign);
* ``typ`` ``at+jwt``; ``iss`` a configured issuer; ``aud`` naming the organisation's
  audience; ``exp``, ``nbf`` and ``iat`` with ``LEEWAY_SECONDS`` of leeway; ``sub``,
  ``client_id`` and ``jti`` present (RFC 9068 section 2.2);
* the organisation's ``acr`` and organisation claim, where configured.

The person is then known to the audit log by a keyed hash of issuer and subject
(``person_id``), never by the subject, and the token is kept nowhere. Every failure
is one answer (401, ``WWW-Authenticate: Bearer error="invalid_token"``) whose text
says nothing about the token; the refusal's fixed code says which check failed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from vir.crypto.signing import CheckpointSigner
from vir.domain import strict_json
from vir.domain.clock import Clock
from vir.domain.errors import TokenRefused
from vir.domain.organisations import Organisation
from vir.keyholder import trust
from vir.keyholder.trust import OidcTrust
from vir.store.db import Database
from vir.store.organisations import get_organisation

ALGORITHMS = ["RS256", "ES256", "EdDSA"]
TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
LEEWAY_SECONDS = 30
MAX_TOKEN_CHARS = 8192  # a JWT access token of any provider fits; more is not one
KEYS_SECONDS = 3600  # how long a provider's discovery document and key set are reused
REFETCH_SECONDS = 60  # an unknown kid fetches the key set again at most this often
RETRY_SECONDS = 10  # after a failed fetch, tokens of that issuer are refused this long
MAX_ANSWER_BYTES = 64 * 1024
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Signed once to derive the person-id key (see person_key): not a checkpoint body.
_PERSON_KEY_MESSAGE = b"vir key holder: the key of the pseudonymous person ids, v1\n"


@dataclass(frozen=True)
class Person:
    """A person signed in at their organisation's provider, acting for it."""

    organisation: Organisation
    person: str  # person_id: a keyed hash of issuer and subject

    @property
    def oin(self) -> str:
        return str(self.organisation.oin)

    @property
    def actor(self) -> str:
        """How the audit log names them (as the portal's entries do)."""
        return f"person:{self.person}"


def person_key(signer: CheckpointSigner) -> bytes:
    """The key of ``person_id``: a hash of the checkpoint key's (deterministic, RFC 8032)
    signature over a fixed message. So it is as well kept as that key (in the HSM when
    there is one), the same in every instance of this key holder, and needs no key file
    of its own; it changes only if the checkpoint key is replaced."""
    return hashlib.sha256(signer.sign_bytes(_PERSON_KEY_MESSAGE)).digest()


def person_id(key: bytes, issuer: str, subject: str) -> str:
    """The person's pseudonymous id in this key holder's audit log: HMAC-SHA256 of the
    provider and its subject. Without the key nobody can tell whose id it is, even
    knowing a subject."""
    return hmac.new(key, f"{issuer}\n{subject}".encode(), hashlib.sha256).hexdigest()


class ProviderKeys:
    """The providers' key sets, from their discovery documents over HTTPS, cached."""

    def __init__(
        self,
        ca_file: Path | None = None,
        timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._http = httpx.Client(verify=context, timeout=timeout, follow_redirects=False)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, KeySet]] = {}  # issuer -> (fetched at, keys)
        self._failed: dict[str, float] = {}  # issuer -> when a fetch last failed

    def close(self) -> None:
        self._http.close()

    def keys(self, issuer: str, *, unknown_kid: bool = False) -> KeySet:
        """``issuer``'s key set: the cached one, or fetched when there is none, it is
        older than KEYS_SECONDS, or (``unknown_kid``) it lacks the token's key and was
        fetched more than REFETCH_SECONDS ago. TokenRefused when it cannot be had; then
        for RETRY_SECONDS without trying again, so that a provider that is down does not
        hold every request up for its timeout."""
        now = self._monotonic()
        with self._lock:
            cached = self._sets.get(issuer)
            if cached is not None:
                age = now - cached[0]
                if age < KEYS_SECONDS and not (unknown_kid and age >= REFETCH_SECONDS):
                    return cached[1]
            if now - self._failed.get(issuer, -RETRY_SECONDS) < RETRY_SECONDS:
                raise TokenRefused("provider_unreachable")
            # One fetch at a time: concurrent requests with a new kid cost one fetch.
            try:
                keys = self._fetch(issuer)
            except TokenRefused:
                self._failed[issuer] = self._monotonic()
                raise
            self._failed.pop(issuer, None)
            self._sets[issuer] = (self._monotonic(), keys)
            return keys

    def _fetch(self, issuer: str) -> KeySet:
        document = self._get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise TokenRefused("provider_metadata")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise TokenRefused("provider_metadata")
        try:
            return KeySet.import_key_set(self._get_json(jwks_uri))
        except (JoseError, ValueError, TypeError, KeyError):
            raise TokenRefused("provider_keys") from None

    def _get_json(self, url: str) -> Any:
        try:
            response = self._http.get(url)
        except httpx.HTTPError:
            raise TokenRefused("provider_unreachable") from None
        if response.status_code != 200 or len(response.content) > MAX_ANSWER_BYTES:
            raise TokenRefused("provider_answer")
        try:
            return response.json()
        except ValueError:
            raise TokenRefused("provider_answer") from None


class BearerVerifier:
    """From an access token to the ``Person`` it speaks for, or TokenRefused."""

    def __init__(self, db: Database, keys: ProviderKeys, key: bytes, clock: Clock) -> None:
        self._db = db
        self._keys = keys
        self._key = key
        self._clock = clock

    def __repr__(self) -> str:  # never show key material in logs or tracebacks
        return "BearerVerifier(<key hidden>)"

    def verify(self, token: str) -> Person:
        if len(token) > MAX_TOKEN_CHARS or not _COMPACT.fullmatch(token):
            raise TokenRefused("token_format")
        header, unverified = _unverified(token)
        if header.get("alg") not in ALGORITHMS:
            raise TokenRefused("token_algorithm")
        kind = header.get("typ")
        if not isinstance(kind, str) or kind.lower() not in TOKEN_TYPES:
            raise TokenRefused("token_type")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str):
            raise TokenRefused("token_issuer")
        with self._db.read() as session:
            trusted = trust.for_issuer(session, issuer)
        if not trusted:
            raise TokenRefused("token_issuer")
        claims = self._verified_claims(token, issuer)
        found = _organisation_of(trusted, claims)
        _check_claims(found, claims, self._clock().timestamp())
        with self._db.read() as session:
            organisation = get_organisation(session, found.oin)
        if organisation is None:
            raise TokenRefused("organisation")
        return Person(organisation, person_id(self._key, issuer, str(claims["sub"])))

    def _verified_claims(self, token: str, issuer: str) -> dict[str, Any]:
        """The claims, once the signature verifies by a key of ``issuer``'s set."""
        try:
            decoded = jwt.decode(token, self._keys.keys(issuer), algorithms=ALGORITHMS)
        except InvalidKeyIdError:
            try:  # a key the provider added since its set was fetched
                decoded = jwt.decode(
                    token, self._keys.keys(issuer, unknown_kid=True), algorithms=ALGORITHMS
                )
            except (JoseError, ValueError, TypeError):
                raise TokenRefused("token_signature") from None
        except (JoseError, ValueError, TypeError):
            raise TokenRefused("token_signature") from None
        return dict(decoded.claims)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims before any check: to choose the provider and its keys."""
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        header, payload = compact.headers(), strict_json.loads(compact.payload)
    except (JoseError, ValueError, TypeError, RecursionError):
        raise TokenRefused("token_format") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise TokenRefused("token_format")
    return dict(header), payload


def _organisation_of(trusted: list[OidcTrust], claims: Mapping[str, Any]) -> OidcTrust:
    """The one organisation ``claims`` speak for among those trusting their issuer."""
    unclaimed = [t for t in trusted if t.organisation_claim is None]
    if unclaimed:
        return unclaimed[0]  # trust.save: such an issuer serves this organisation only
    found = [t for t in trusted if claims.get(t.organisation_claim or "") == t.oin]
    if len(found) != 1:
        raise TokenRefused("organisation")
    return found[0]


def _check_claims(found: OidcTrust, claims: Mapping[str, Any], now: float) -> None:
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if found.audience not in audiences:
        raise TokenRefused("token_audience")
    expires, issued, not_before = (_number(claims.get(n)) for n in ("exp", "iat", "nbf"))
    if expires is None or expires + LEEWAY_SECONDS < now:
        raise TokenRefused("token_expired")
    if issued is None or issued - LEEWAY_SECONDS > now:
        raise TokenRefused("token_time")
    if "nbf" in claims and (not_before is None or not_before - LEEWAY_SECONDS > now):
        raise TokenRefused("token_time")
    for name in ("sub", "client_id", "jti"):
        value = claims.get(name)
        if not isinstance(value, str) or not 1 <= len(value) <= 255:
            raise TokenRefused("token_claims")
    if found.client_ids and claims["client_id"] not in found.client_ids:
        raise TokenRefused("token_client")
    if found.acr is not None and claims.get("acr") != found.acr:
        raise TokenRefused("assurance_level")


def _number(value: object) -> float | None:
    """A NumericDate (RFC 7519): a finite number, not a boolean; None otherwise."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None
