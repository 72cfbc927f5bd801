"""The portal's key holder settings (where the registration page's script may connect),
the policy that follows from them, the access tokens kept in memory, and the forms'
field checks. The whole flow with real servers is in tests/integration/test_portal_pages.py
and tests/security/test_portal_pages_hostile.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vir.domain.errors import ConfigurationError, InputError, InvalidElement
from vir.portal import forms
from vir.portal.app import SECURITY_HEADERS, security_headers
from vir.portal.settings import KeyHolders, PortalSettings
from vir.portal.tokens import AccessTokens


def _settings(tmp_path: Path, **values: object) -> PortalSettings:
    return PortalSettings(dev_endpoints=tmp_path / "endpoints.json", **values)  # type: ignore[arg-type]


def test_key_holders_from_the_settings(tmp_path: Path) -> None:
    found = _settings(
        tmp_path, keyholders="https://kh1.example/, https://kh2.example:8444/base", threshold=2
    ).key_holders()
    assert found == KeyHolders(("https://kh1.example", "https://kh2.example:8444/base"), 2)
    assert found.origins == ("https://kh1.example", "https://kh2.example:8444")


def test_key_holders_from_a_development_set_up(tmp_path: Path) -> None:
    (tmp_path / "endpoints.json").write_text(
        json.dumps({"keyholders": ["https://127.0.0.1:9001"], "threshold": 1})
    )
    assert _settings(tmp_path).key_holders() == KeyHolders(("https://127.0.0.1:9001",), 1)
    (tmp_path / "endpoints.json").unlink()
    assert _settings(tmp_path).key_holders() == KeyHolders((), 1)


@pytest.mark.parametrize(
    ("keyholders", "threshold"),
    [
        ("http://kh.example", 1),  # not https
        ("https://user@kh.example", 1),
        ("https://kh.example?x=1", 1),
        ("https://kh1.example", 2),  # more answers needed than there are holders
    ],
)
def test_bad_key_holder_settings_are_refused(
    tmp_path: Path, keyholders: str, threshold: int
) -> None:
    with pytest.raises(ConfigurationError):
        _settings(tmp_path, keyholders=keyholders, threshold=threshold).key_holders()


def test_the_policy_lets_scripts_connect_to_the_key_holders_only() -> None:
    assert security_headers(KeyHolders((), 1)) == SECURITY_HEADERS
    policy = security_headers(KeyHolders(("https://kh.example/v",), 1))["Content-Security-Policy"]
    assert "connect-src 'self' https://kh.example;" in policy
    assert policy.replace(" https://kh.example", "") == SECURITY_HEADERS["Content-Security-Policy"]


def test_access_tokens_expire_and_are_dropped() -> None:
    tokens = AccessTokens(limit=2)
    tokens.keep("a", "token-a", 600)
    tokens.keep("b", "token-b", 30)  # within the minute to spare: not handed out
    assert tokens.get("a") == "token-a" and tokens.get("b") is None
    tokens.drop("a")
    assert tokens.get("a") is None
    for name in ("c", "d", "e"):
        tokens.keep(name, f"token-{name}", 600)
    assert [tokens.get(n) for n in "cde"] == [None, "token-d", "token-e"]  # the oldest went


def test_form_fields() -> None:
    forms.only({"csrf": "x", "name": "a"}, forms.CONTACT)
    forms.only({"csrf": "x", "contact_00000009000000000001": "1"}, frozenset(), prefix="contact_")
    for posted in ({"bsn": "123456782"}, {"name": "a", "surname": "b"}):
        with pytest.raises(forms.UnexpectedField):
            forms.only(posted, forms.REGISTER)
    assert forms.form_field("parents[1]") == "parent_2"
    assert forms.problem("parents[0]")[0] == "parent_1"
    assert 'Controleer het veld "Ouder 1"' in forms.problem("parents[0]")[1]
    with pytest.raises(InvalidElement):
        forms.pseudonym({"person": "A" * 42 + "="}, "person")
    assert forms.pseudonym({"person": ""}, "person") is None
    assert forms.pseudonym({"person": "A" * 43}, "person") == bytes(32)
    for bad in ("0", "-1", "1e3", "٣", "1" * 10):
        with pytest.raises(InputError):
            forms.epoch({"epoch": bad})
    with pytest.raises(InputError):
        forms.date({"remove_on": "2026-1-1"}, "remove_on")


def test_the_portals_address_follows_its_port_unless_given(tmp_path: Path) -> None:
    assert _settings(tmp_path).public_url == "https://127.0.0.1:8445"
    assert _settings(tmp_path, port=9445).redirect_uri == "https://127.0.0.1:9445/auth/callback"
    assert _settings(tmp_path, host="0.0.0.0", port=9445).public_url == "https://127.0.0.1:9445"
    assert _settings(tmp_path, host="::1", port=9445).public_url == "https://[::1]:9445"
    given = _settings(tmp_path, port=9445, public_url="https://portal.example")
    assert given.public_url == "https://portal.example"
    with pytest.raises(ValueError, match="public_url"):
        _settings(tmp_path, public_url="http://portal.example")
