"""Where the portal sends a browser after its own sign-out (``oidc.logout_url``,
OpenID Connect RP-Initiated Logout 1.0): the provider's advertised end-session endpoint
with the portal's client_id and the address to come back to, or nowhere. What the
provider advertises is written into a page's refresh: anything that is no plain https
URL is not followed, and a provider that cannot be reached does not hold the sign-out
up. The whole flow with the real provider is in tests/security/test_portal_hostile.py
and, in a browser, tests/integration/test_portal_signin.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from test_id_tokens import CONFIG, ISSUER

from vir.portal import oidc

BACK = "https://portaal.example.nl/"


class _Metadata(oidc.Providers):
    """The provider's discovery document as fetched (no network in a unit test)."""

    def __init__(self, document: dict[str, Any] | None) -> None:
        super().__init__(None)
        self._document = document

    def metadata(self, issuer: str) -> dict[str, Any]:
        assert issuer == ISSUER
        if self._document is None:
            raise oidc.SignInFailed("provider_unreachable")
        return self._document


def test_the_endpoint_with_the_client_and_the_way_back() -> None:
    found = oidc.logout_url(_Metadata({"end_session_endpoint": f"{ISSUER}/logout"}), CONFIG, BACK)
    assert found is not None
    parts = urlsplit(found)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/logout"
    assert dict(parse_qsl(parts.query)) == {
        "client_id": CONFIG.client_id,
        "post_logout_redirect_uri": BACK,
    }


def test_an_endpoint_with_a_query_of_its_own_keeps_it() -> None:
    found = oidc.logout_url(
        _Metadata({"end_session_endpoint": f"{ISSUER}/oidc/logout?realm=zorg"}), CONFIG, BACK
    )
    assert found is not None
    assert dict(parse_qsl(urlsplit(found).query)) == {
        "realm": "zorg",
        "client_id": CONFIG.client_id,
        "post_logout_redirect_uri": BACK,
    }


@pytest.mark.parametrize(
    "advertised",
    [
        None,
        "",
        42,
        ["https://idp.example.nl/logout"],
        "http://idp.example.nl/logout",
        "javascript:alert(1)",
        "//idp.example.nl/logout",
        "https://idp.example.nl/logout#top",
        'https://idp.example.nl/logout"><script>',
        "https://idp.example.nl/log out",
        "https://idp.example.nl/logout\\evil",
        "https://idp.example.nl/logout\n",
        "https://user@evil.example/logout",
        "https://idp.example.nl/" + "a" * 2100,
    ],
    ids=[
        "absent",
        "empty",
        "number",
        "list",
        "http",
        "javascript",
        "scheme-relative",
        "fragment",
        "quote",
        "space",
        "backslash",
        "newline",
        "userinfo",
        "overlong",
    ],
)
def test_what_is_no_plain_https_url_is_not_followed(advertised: object) -> None:
    document = {} if advertised is None else {"end_session_endpoint": advertised}
    assert oidc.logout_url(_Metadata(document), CONFIG, BACK) is None


def test_a_provider_out_of_reach_leaves_the_sign_out_as_it_is() -> None:
    assert oidc.logout_url(_Metadata(None), CONFIG, BACK) is None
