"""The receiver's side of vir's webhooks: verify an event before acting on it.

vir POSTs each notification to an organisation's webhook as a CloudEvents 1.0 JSON
event, signed per Standard Webhooks (docs/delivery.md). A receiver checks, in order:

1. the signature (``webhook-signature``: HMAC-SHA256 over ``{id}.{timestamp}.{body}``
   with the organisation's ``whsec_`` secret, compared in constant time);
2. the timestamp (``webhook-timestamp``) within ``tolerance`` (5 minutes) of its own
   clock, so a captured request cannot be replayed later;
3. the id (``webhook-id``, the notification id, also the event's ``id``): delivery is
   at least once, so an id handled before is a duplicate: answer 2xx, act once.

```python
verifier = VirClient.webhook_verifier(open("secret").read())
with verifier.receive(request_body_bytes, request_headers) as event:  # InvalidSignature
    if not event.duplicate:
        handle(event.data)            # the notification as GET /v1/notifications has it
```

An id counts as handled only when the ``with`` block ends without an exception: when
``handle`` fails, the receiver answers 5xx, vir delivers the event again, and that
repeat is not taken for a duplicate (``verify`` then ``handled(event)`` does the same
in two steps). During a secret rotation the verifier takes both secrets
(``WebhookVerifier([new, old])``): a request signed with either is accepted.

Events of one organisation carry ``sequence`` (the notification's position,
zero-padded): sort by it to recover the order in which vir made them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from vir.crypto.standard_webhooks import InvalidSignature, Secret, parse_secret, verify
from vir.domain import strict_json

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
    duplicate: bool  # this id was handled before: acknowledge, do not act again


class WebhookVerifier:
    """Verifies vir's webhook requests signed with a secret (or, while the organisation's
    secret is being replaced, with any of several); thread-safe."""

    def __init__(
        self,
        secret: str | Secret | Sequence[str | Secret],
        *,
        tolerance: dt.timedelta = TOLERANCE,
        remember: dt.timedelta = REMEMBER,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        given = [secret] if isinstance(secret, (str, Secret)) else list(secret)
        if not given:
            raise ValueError("a webhook verifier needs at least one secret")
        self._secrets = [s if isinstance(s, Secret) else parse_secret(s) for s in given]
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
        self._check_signature(msg_id, timestamp, body, signature)
        now = self._clock()
        sent = dt.datetime.fromtimestamp(timestamp, dt.UTC)
        if abs(now - sent) > self._tolerance:
            raise InvalidSignature()
        try:
            event = strict_json.loads(body)
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
            duplicate=self._handled_before(msg_id, now),
        )

    def handled(self, event: VerifiedEvent) -> None:
        """Remember that ``event`` was acted upon: a later delivery of its id is a
        duplicate. Call it only once the receiver's handling succeeded."""
        now = self._clock()
        with self._lock:
            self._forget_old(now)
            self._seen[event.id] = now

    @contextmanager
    def receive(self, body: bytes, headers: Mapping[str, str]) -> Iterator[VerifiedEvent]:
        """``verify``, then ``handled`` when the block ends without an exception: an event
        whose handling failed is not a duplicate when vir delivers it again."""
        event = self.verify(body, headers)
        yield event
        if not event.duplicate:
            self.handled(event)

    def _check_signature(self, msg_id: str, timestamp: int, body: bytes, header: str) -> None:
        for secret in self._secrets:
            try:
                verify(secret, msg_id, timestamp, body, header)
            except InvalidSignature:
                continue
            return
        raise InvalidSignature()

    def _handled_before(self, msg_id: str, now: dt.datetime) -> bool:
        with self._lock:
            self._forget_old(now)
            return msg_id in self._seen

    def _forget_old(self, now: dt.datetime) -> None:
        """Drop ids remembered longer than ``remember``, and the oldest beyond the bound.
        Holding the lock."""
        while self._seen:
            oldest, when = next(iter(self._seen.items()))
            if now - when <= self._remember and len(self._seen) < MAX_REMEMBERED:
                break
            del self._seen[oldest]


def _digits(text: str, most: int) -> bool:
    """1..``most`` ASCII digits (str.isdigit() also takes superscripts, which int() refuses,
    and other scripts' digits, which it reads). A timestamp has at most 12 (seconds until
    the year 33658; more would overflow the clock); a sequence 20 (zero-padded)."""
    return text.isascii() and text.isdigit() and len(text) <= most
