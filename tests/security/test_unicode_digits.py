"""Numbers that arrive as text are ASCII digits, or refused: ``str.isdigit()`` is also
true of superscripts (which ``int()`` then refuses, with a ValueError nobody expected)
and of other scripts' digits (which ``int()`` reads, a second spelling of one number).
Each place below once used ``isdigit()`` alone on text from outside: a webhook's
headers and body, an index's Retry-After, a problem's field name, a repair command's
``--verifier-key``, a repair file's epochs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from vir.client import bulk
from vir.client.connection import _retry_after
from vir.client.webhooks import InvalidSignature, WebhookVerifier
from vir.crypto.standard_webhooks import parse_secret, sign
from vir.domain.errors import ConfigurationError
from vir.keyholder import repair

pytestmark = pytest.mark.sqlite_only("parsing in memory: no database")

ODD = ["²", "١٧٦٤٥٠٠٠٠٠", "17645000٠٠", "①"]
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_a_webhook_with_odd_digits_is_refused_as_any_bad_signature() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    verifier = WebhookVerifier(secret, clock=lambda: NOW)
    body = json.dumps({"id": "msg_1", "type": "match.created", "sequence": 1, "data": {}})
    for stamp in ODD:
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": stamp,
            "webhook-signature": "v1,AAAA",
        }
        with pytest.raises(InvalidSignature):
            verifier.verify(body.encode(), headers)
    # A signed body whose sequence is spelled in superscript, or is longer than vir's
    # zero-padded 20 digits: refused, not a crash; vir's own spelling is taken.
    stamp = str(int(NOW.timestamp()))
    for n, (sequence, good) in enumerate(
        [("²", False), ("1" * 21, False), ("0" * 19 + "7", True)], start=2
    ):
        event = {"id": f"msg_{n}", "type": "match.created", "sequence": sequence, "data": {}}
        odd = json.dumps(event).encode()
        signature = sign(parse_secret(secret), f"msg_{n}", int(stamp), odd)
        headers = {
            "webhook-id": f"msg_{n}",
            "webhook-timestamp": stamp,
            "webhook-signature": signature,
        }
        if good:
            assert verifier.verify(odd, headers).sequence == 7
        else:
            with pytest.raises(InvalidSignature):
                verifier.verify(odd, headers)


@pytest.mark.parametrize("value", [*ODD, " ² ", "-1", "1.5"])
def test_an_odd_retry_after_gets_the_default_wait(value: str) -> None:
    assert _retry_after(value, 2.5) == 2.5
    assert _retry_after("7", 2.5) == 7.0


@pytest.mark.parametrize("field", ["parents[²]", "parents[١]", "parents[]", "parents[1"])
def test_an_odd_field_name_from_the_index_is_shown_as_it_is(field: str) -> None:
    assert bulk._column(field) == field.replace(".", "_")
    assert bulk._column("parents[1]") == "parent2"


@pytest.mark.parametrize("value", ["²=KEY", "١=KEY", "1234=KEY", "=KEY", "1"])
def test_a_verifier_key_for_an_odd_index_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="INDEX=KEY"):
        repair.parse_verifier_keys([value])
    assert repair.parse_verifier_keys([" 3 =KEY"]) == {3: "KEY"}


@pytest.mark.parametrize("epoch", ["²", "١", "01", "1" * 10, "-1"])
def test_a_repair_file_keyed_by_an_odd_epoch_is_refused(epoch: str) -> None:
    with pytest.raises(ConfigurationError, match="keyed by epoch"):
        repair._by_epoch({epoch: "x"}, Path("deal.json"), "parts")
    assert repair._by_epoch({"2": "x", "10": "y"}, Path("deal.json"), "parts") == {2: "x", 10: "y"}
