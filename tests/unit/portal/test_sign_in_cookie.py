"""A sign-in under way lives in the browser's sealed cookie (vir.portal.sessions), and
failed callbacks are counted per address (vir.portal.throttle). Through the real servers
in tests/security/test_portal_hostile.py."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest

from vir.crypto.secretbox import OIDC_CLIENT, SecretBox
from vir.portal import sessions, throttle

NOW = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
OIN = "00000001234567890000"
PROVIDER = "https://idp.example vir-portal"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(secrets.token_bytes(32))


def test_a_sign_in_opens_with_its_state_in_time(box: SecretBox) -> None:
    state, cookie, login = sessions.start_login(box, OIN, PROVIDER, NOW, "ab" * 32)
    assert len(cookie) <= sessions.MAX_LOGIN_COOKIE
    for secret in (state, login.nonce, login.verifier, OIN, PROVIDER):
        assert secret not in cookie  # sealed, not merely encoded
    later = NOW + sessions.LOGIN_TIME
    assert sessions.open_login(box, state, cookie, later) == login
    assert login.replaces == "ab" * 32 and login.provider == PROVIDER


def test_what_does_not_open(box: SecretBox) -> None:
    state, cookie, _ = sessions.start_login(box, OIN, PROVIDER, NOW, None)
    other_state, other_cookie, _ = sessions.start_login(box, OIN, PROVIDER, NOW, None)
    too_late = NOW + sessions.LOGIN_TIME + dt.timedelta(seconds=1)
    flipped = cookie[:-3] + ("A" if cookie[-3] != "A" else "B") + cookie[-2:]
    refused = [
        (state, other_cookie, NOW),  # another sign-in's cookie
        (other_state, cookie, NOW),
        (state, cookie, too_late),
        (state, cookie, NOW - dt.timedelta(seconds=5)),  # made "in the future"
        (state, flipped, NOW),
        (state, "", NOW),
        ("", cookie, NOW),
        (state, cookie + "A" * sessions.MAX_LOGIN_COOKIE, NOW),
        (state, SecretBox(secrets.token_bytes(32)).seal("{}", "", sessions.LOGIN_PURPOSE), NOW),
        # Sealed by this box for another purpose: an organisation's client secret.
        (state, box.seal(json.dumps({"state": state}), "", OIDC_CLIENT), NOW),
    ]
    for given_state, given_cookie, now in refused:
        assert sessions.open_login(box, given_state, given_cookie, now) is None


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"state": "S"}',
        '{"state": "S", "oin": 1, "nonce": "n", "verifier": "v", "provider": "p", '
        '"at": 1, "replaces": ""}',
        '{"state": "S", "oin": "o", "nonce": "n", "verifier": "v", "provider": "p", '
        '"at": "1", "replaces": ""}',
        '{"state": "S", "oin": "o", "nonce": "n", "verifier": "v", "provider": "p", '
        '"at": true, "replaces": ""}',
        '{"state": "S", "oin": "o", "nonce": "n", "verifier": "v", "provider": "p", '
        '"at": 1.5, "replaces": null}',
    ],
)
def test_a_sealed_cookie_of_the_wrong_shape_does_not_open(box: SecretBox, content: str) -> None:
    cookie = box.seal(content, "", sessions.LOGIN_PURPOSE)
    assert sessions.open_login(box, "S", cookie, NOW) is None


def test_failures_are_counted_per_address_within_the_window() -> None:
    failures = throttle.FailedSignIns(limit=3, window=dt.timedelta(minutes=5))
    for minute in range(3):
        assert not failures.exceeded("192.0.2.1", NOW + dt.timedelta(minutes=minute))
        failures.add("192.0.2.1", NOW + dt.timedelta(minutes=minute))
    assert failures.exceeded("192.0.2.1", NOW + dt.timedelta(minutes=3))
    assert not failures.exceeded("192.0.2.2", NOW + dt.timedelta(minutes=3))
    # The first failure is five minutes old: two in the window.
    assert not failures.exceeded("192.0.2.1", NOW + dt.timedelta(minutes=5))
    assert failures.retry_after == 300


def test_the_addresses_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_ADDRESSES", 100)
    failures = throttle.FailedSignIns(limit=1)
    for n in range(1000):
        failures.add(f"10.0.{n // 256}.{n % 256}", NOW)
    assert len(failures._failed) == 100
    assert failures.exceeded("10.0.3.231", NOW)  # the newest are kept
    assert not failures.exceeded("10.0.0.0", NOW)
