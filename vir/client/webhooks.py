"""The receiver's side of vir's webhooks: verify an event before acting on it.

vir POSTs each notification to an organisation's webhook as a CloudEvents 1.0 JSON
event, signed per Standard Webhooks (docs/delivery.md). A receiver checks, in order:

1. the signature (``webhook-signature``: HMAC-SHA256 over ``{id}.{timestamp}.{body}``
   with the organisation's ``whsec_`` secret, compared in constant time);
2. the timestamp (``webhook-timestamp``) within ``tolerance`` (5 minutes) of its own
   clock, so a captured request cannot be replayed later;
3. the id (``webhook-id``, the notification id, also the event's ``id``): delivery is
   at least once, so an id seen before is a duplicate: answer 2xx, act once.

```python
verifier = VirClient.webhook_verifier(open("secret").read())
event = verifier.verify(request_body_bytes, request_headers)   # InvalidSignature if not
if not event.duplicate:
    handle(event.data)                # the notification as GET /v1/notifications has it
```

Events of one organisation carry ``sequence`` (the notification's position,
zero-padded): sort by it to recover the order in which vir made them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vir.crypto.standard_webhooks import InvalidSignature, Secret, parse_secret, verify

__all__ = ["InvalidSignature", "VerifiedEvent", "WebhookVerifier"]

TOLERANCE = dt.timedelta(minutes=5)
# How long, and how many, ids are remembered to recognise a duplicate: vir retries a
# delivery for up to a day (VIR_WEBHOOK_RETRY_HOURS), so a redelivery may come that late.
REMEMBER = dt.timedelta(hours=25)
MAX_REMEMBERED = 200_000
MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    id: str
    type: str  # nl.vir.match.created, ...
    sequence: int  # the notification's position among the organisation's
    data: Mapping[str, Any]  # the notification as GET /v1/notifications shows it
    event: Mapping[str, Any]  # the whole CloudEvent
    duplicate: bool  # this id was verified before: acknowledge, do not act again


class WebhookVerifier:
    """Verifies vir's webhook requests for one secret; thread-safe."""

    def __init__(
        self,
        secret: str | Secret,
        *,
        tolerance: dt.timedelta = TOLERANCE,
        remember: dt.timedelta = REMEMBER,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._secret = secret if isinstance(secret, Secret) else parse_secret(secret)
        self._tolerance = tolerance
        self._remember = remember
        self._clock = clock
        self._seen: OrderedDict[str, dt.datetime] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "WebhookVerifier(<secret hidden>)"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedEvent:
        """The verified event; InvalidSignature (one opaque error) when the signature,
        the timestamp or the event is not right."""
        lower = {k.lower(): v for k, v in headers.items()}
        msg_id = lower.get("webhook-id", "")
        stamp = lower.get("webhook-timestamp", "")
        signature = lower.get("webhook-signature", "")
        if not msg_id or not _digits(stamp, 12) or not signature or len(body) > MAX_BODY:
            raise InvalidSignature()
        timestamp = int(stamp)
        verify(self._secret, msg_id, timestamp, body, signature)
        now = self._clock()
        sent = dt.datetime.fromtimestamp(timestamp, dt.UTC)
        if abs(now - sent) > self._tolerance:
            raise InvalidSignature()
        try:
            event = json.loads(body)
        except ValueError:
            raise InvalidSignature() from None
        if not isinstance(event, dict) or event.get("id") != msg_id:
            raise InvalidSignature()  # signed, but not the event it says it is
        data = event.get("data")
        sequence = str(event.get("sequence", ""))
        if not isinstance(data, dict) or not _digits(sequence, 20):
            raise InvalidSignature()
        return VerifiedEvent(
            id=msg_id,
            type=str(event.get("type", "")),
            sequence=int(sequence),
            data=data,
            event=event,
            duplicate=self._seen_before(msg_id, now),
        )

    def _seen_before(self, msg_id: str, now: dt.datetime) -> bool:
        with self._lock:
            while self._seen:
                oldest, when = next(iter(self._seen.items()))
                if now - when <= self._remember and len(self._seen) < MAX_REMEMBERED:
                    break
                del self._seen[oldest]
            if msg_id in self._seen:
                return True
            self._seen[msg_id] = now
            return False


def _digits(text: str, most: int) -> bool:
    """1..``most`` ASCII digits (str.isdigit() also takes superscripts, which int() refuses,
    and other scripts' digits, which it reads). A timestamp has at most 12 (seconds until
    the year 33658; more would overflow the clock); a sequence 20 (zero-padded)."""
    return text.isascii() and text.isdigit() and len(text) <= most
