"""Standard Webhooks signatures: ours against the reference library, both ways, and the
receiver-side verifier of the client library (signature, timestamp, replay)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from vir.client import VirClient
from vir.client.webhooks import InvalidSignature, WebhookVerifier
from vir.crypto.standard_webhooks import (
    InvalidSecret,
    new_secret,
    parse_secret,
    sign,
    verify,
)
from vir.delivery.webhook import check_secret, headers_of
from vir.domain.errors import InputError

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@given(msg_id=st.text(min_size=1, max_size=40), body=st.binary(max_size=200))
def test_our_signature_is_the_reference_signature(msg_id: str, body: bytes) -> None:
    timestamp = 1_764_633_600
    ours = sign(parse_secret(SECRET), msg_id, timestamp, body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return  # the reference signs text only
    theirs = standardwebhooks.Webhook(SECRET).sign(
        msg_id, dt.datetime.fromtimestamp(timestamp, dt.UTC), text
    )
    assert ours == theirs


def test_the_reference_verifies_our_headers_and_we_verify_its_signatures() -> None:
    now = dt.datetime.now(dt.UTC)
    body = json.dumps({"id": "n-1", "sequence": "1", "data": {}}).encode()
    headers = headers_of(SECRET, "n-1", int(now.timestamp()), body)
    assert standardwebhooks.Webhook(SECRET).verify(body, headers)["id"] == "n-1"
    theirs = standardwebhooks.Webhook(SECRET).sign("n-1", now, body.decode())
    verify(parse_secret(SECRET), "n-1", int(now.timestamp()), body, "v1,bad " + theirs)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "secret_" + base64.b64encode(bytes(32)).decode(),
        "whsec_" + base64.b64encode(bytes(8)).decode(),  # too short
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # too long
        "whsec_not*base64!",
        "whsec_" + "A" * 300,
    ],
)
def test_malformed_secrets_are_refused_without_being_quoted(secret: str) -> None:
    with pytest.raises(InvalidSecret) as caught:
        parse_secret(secret)
    with pytest.raises(InputError) as refused:
        check_secret(secret)
    assert refused.value.field == "secret"
    for text in (str(caught.value), refused.value.detail):
        assert secret[6:] not in text or not secret[6:]
    assert "hidden" in repr(parse_secret(new_secret()))


def _event(msg_id: str = "n-1", sequence: int = 7) -> bytes:
    return json.dumps(
        {"id": msg_id, "sequence": f"{sequence:020d}", "type": "nl.vir.match.created", "data": {}}
    ).encode()


def test_the_client_verifier_checks_signature_timestamp_and_duplicates() -> None:
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    verifier = WebhookVerifier(SECRET, clock=lambda: now)
    body = _event()
    headers = headers_of(SECRET, "n-1", int(now.timestamp()), body)
    with verifier.receive(body, headers) as first:
        assert (first.id, first.sequence, first.duplicate) == ("n-1", 7, False)
    assert verifier.verify(body, headers).duplicate  # replayed: recognised by id
    other = WebhookVerifier(new_secret(), clock=lambda: now)
    stale = headers_of(SECRET, "n-2", int((now - dt.timedelta(minutes=6)).timestamp()), body)
    tampered = dict(headers, **{"webhook-id": "n-3"})
    for v, b, h in [
        (other, body, headers),  # another secret
        (verifier, _event("n-2"), stale),  # too old
        (verifier, body + b" ", headers),  # body changed
        (verifier, body, tampered),  # id changed
        (verifier, body, {}),  # no headers
    ]:
        with pytest.raises(InvalidSignature) as caught:
            v.verify(b, h)
        assert str(caught.value) == "webhook signature not valid"
    assert "hidden" in repr(VirClient.webhook_verifier(SECRET))


def test_an_event_whose_handling_failed_is_no_duplicate_when_vir_delivers_it_again() -> None:
    """Before: the id was remembered as soon as the signature checked out, so a receiver
    whose handler raised (and answered 5xx) took vir's retry for a duplicate, answered
    2xx and never acted: the notification was lost."""
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    verifier = WebhookVerifier(SECRET, clock=lambda: now)
    body = _event("n-9")
    headers = headers_of(SECRET, "n-9", int(now.timestamp()), body)
    with pytest.raises(RuntimeError), verifier.receive(body, headers) as event:
        assert not event.duplicate
        raise RuntimeError("the receiver's database is down")
    again = verifier.verify(body, headers)
    assert not again.duplicate  # vir's retry is acted upon
    verifier.handled(again)
    assert verifier.verify(body, headers).duplicate


def test_during_a_secret_rotation_either_secret_is_accepted() -> None:
    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
    new = new_secret()
    verifier = WebhookVerifier([new, SECRET], clock=lambda: now)
    stamp = int(now.timestamp())
    for n, secret in enumerate((SECRET, new)):
        body = _event(f"r-{n}")
        assert verifier.verify(body, headers_of(secret, f"r-{n}", stamp, body)).id == f"r-{n}"
    body = _event("r-3")
    with pytest.raises(InvalidSignature):
        verifier.verify(body, headers_of(new_secret(), "r-3", stamp, body))
    with pytest.raises(ValueError, match="at least one secret"):
        WebhookVerifier([])
