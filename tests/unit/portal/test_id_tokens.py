"""ID token checks (vir.portal.oidc) on tokens made here: each forged or stale token is
refused with its own code. The whole flow with the real provider is in
tests/security/test_portal_hostile.py; here each check is taken apart."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey

from vir.portal import oidc
from vir.portal.config import OidcConfig, PortalRole

ISSUER = "https://idp.example.nl"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
OTHER = ECKey.generate_key("P-256", parameters={"kid": "k1"})
CONFIG = OidcConfig(
    oin="00000009000000000002",
    issuer=ISSUER,
    client_id="vir-portal",
    client_secret="s" * 32,
    person_claim="sub",
    role_claim="vir_roles",
    roles=MappingProxyType({PortalRole.PROFESSIONAL: "zorg", PortalRole.PRIVACY_OFFICER: "fg"}),
    acr="loa3",
    organisation_claim="vir_oin",
)


class _Keys(oidc.Providers):
    """The provider's published key set, as fetched (no network in a unit test)."""

    def __init__(self, keys: KeySet) -> None:
        super().__init__(None)
        self._published = keys

    def keys(self, jwks_uri: str, *, refresh: bool = False) -> KeySet:
        return self._published


PROVIDERS = _Keys(KeySet([KEY]))


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "vir-portal",
        "sub": "p-1",
        "exp": now + 300,
        "iat": now,
        "nonce": "n",
        "acr": "loa3",
        "vir_oin": CONFIG.oin,
        "vir_roles": ["zorg"],
        "name": "Dokter Jansen",
    } | changes
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], key: Any = KEY, alg: str = "ES256") -> str:
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key)


def _check(token: str) -> oidc.SignedIn:
    claims = oidc.verified_claims(
        PROVIDERS, CONFIG, "https://idp.example.nl/jwks", token, time.time()
    )
    return oidc._signed_in(CONFIG, claims)


def test_a_good_token_names_the_person_by_a_pseudonymous_id() -> None:
    who = _check(_token(_claims()))
    assert who.roles == (PortalRole.PROFESSIONAL,) and who.name == "Dokter Jansen"
    assert who.person == oidc.person_id(ISSUER, "p-1") and "p-1" not in who.person


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda: _token(_claims(), key=OTHER), "id_token_signature"),
        (
            lambda: _token(_claims(), key=OctKey.import_key(b"s" * 32), alg="HS256"),
            "id_token_signature",
        ),
        (lambda: _token(_claims(iss="https://evil.example")), "id_token_issuer"),
        (lambda: _token(_claims(aud="someone-else")), "id_token_audience"),
        (lambda: _token(_claims(aud=["vir-portal", "other"])), "id_token_audience"),  # no azp
        (lambda: _token(_claims(exp=int(time.time()) - 3600)), "id_token_expired"),
        (lambda: _token(_claims(iat=int(time.time()) + 3600)), "id_token_time"),
        (lambda: _token(_claims(vir_oin="00000009000000000001")), "organisation"),
        (lambda: _token(_claims(acr="loa2")), "assurance_level"),
        (lambda: _token(_claims(sub=None)), "person_claim"),
        (lambda: _token(_claims(sub="x" * 300)), "person_claim"),
        (lambda: _token(_claims(vir_roles=["onbekend"])), "no_role"),
        (lambda: _token(_claims(vir_roles={"zorg": True})), "no_role"),
        (lambda: "not.a.token", "id_token_signature"),
    ],
)
def test_forged_or_stale_tokens_are_refused(token: Callable[[], str], code: str) -> None:
    # Made when the test runs, not when it is collected: the times in it are relative
    # to now, and a module may run minutes after collection.
    with pytest.raises(oidc.SignInFailed) as refused:
        _check(token())
    assert refused.value.code == code
    assert str(refused.value) == code  # a code, nothing from the token


def test_an_unsigned_token_is_refused() -> None:
    header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    body = jwt.encode({"alg": "ES256"}, _claims(), KEY).split(".")[1]
    with pytest.raises(oidc.SignInFailed):
        _check(f"{header}.{body}.")


def test_roles_as_a_string_or_a_list() -> None:
    assert _check(_token(_claims(vir_roles="fg"))).roles == (PortalRole.PRIVACY_OFFICER,)
    both = _check(_token(_claims(vir_roles=["fg", "zorg"]))).roles
    assert set(both) == {PortalRole.PROFESSIONAL, PortalRole.PRIVACY_OFFICER}


def test_an_audience_list_needs_azp() -> None:
    token = _token(_claims(aud=["vir-portal", "other"], azp="vir-portal"))
    assert _check(token).person


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("issuer", {"issuer": "http://idp.example.nl"}),
        ("issuer", {"issuer": "https://idp.example.nl/?a=b"}),
        ("issuer", {"issuer": "https://user@idp.example.nl"}),
        ("client_id", {"client_id": "a b"}),
        ("client_secret", {"client_secret": "short"}),
        ("person_claim", {"person_claim": "1abc"}),
        ("roles", {"roles": {}}),
        ("acr", {"acr": "x y"}),
    ],
)
def test_configuration_is_checked(field: str, changes: dict[str, Any]) -> None:
    from vir.domain.errors import InputError

    values = dict(CONFIG.__dict__) | changes
    with pytest.raises(InputError) as refused:
        OidcConfig(**values)
    assert refused.value.field == field


def test_s256_matches_rfc_7636() -> None:
    # RFC 7636 appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert oidc.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
