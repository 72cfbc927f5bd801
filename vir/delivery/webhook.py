"""The webhook channel: each notification POSTed to its organisation's webhook as a
CloudEvents 1.0 structured JSON event, signed per Standard Webhooks (docs/delivery.md).

The organisation's URL and secret are read from the database (``vir org webhook``) for
every batch, so a change holds at once on every instance. HTTPS only, except
``http://127.0.0.1``/``localhost`` with ``VIR_DEV=1``; redirects are never followed;
a URL with user information is refused. One deadline bounds each whole request. The
secret is stored sealed (``vir.crypto.secretbox``) and opened per batch with the
index's key, bound to the organisation. What goes wrong is reported as a short code
(the HTTP status, ``timeout``, ``refused``, ``tls``, ``secret``, ``unsealed``,
``secret-key``), never the URL, a body or the secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from vir.crypto.secretbox import SealedSecretError, SecretBox, load_secret_box
from vir.crypto.standard_webhooks import InvalidSecret, parse_secret, sign
from vir.delivery.channels import Due, Outcome, Result
from vir.domain.errors import ConfigurationError, InputError
from vir.store import outbox
from vir.store.db import Database

NAME = "webhook"
EVENT_TYPE_PREFIX = "nl.vir."
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
MAX_URL = 2048
# A receiver may ask for a later retry (Retry-After); never later than this.
MAX_RETRY_AFTER = dt.timedelta(hours=1)
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_url(url: str, *, dev: bool) -> str:
    """The URL if vir may POST to it, else InputError naming ``url`` (never quoting it:
    a URL can carry a token)."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InputError("url", f"not a URL (at most {MAX_URL} characters, no spaces)")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in range
    except ValueError:
        raise InputError("url", "not a valid URL") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InputError("url", "must not contain user information (user:password@)")
    host = (parts.hostname or "").lower()
    if not host:
        raise InputError("url", "has no host")
    if parts.fragment:
        raise InputError("url", "must not have a #fragment")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and dev and host in _LOCAL_HOSTS:
        del port
        return url
    raise InputError(
        "url", "must be https:// (http://127.0.0.1 or http://localhost only with VIR_DEV=1)"
    )


def check_secret(text: str) -> str:
    """The secret (stripped) if it is a Standard Webhooks ``whsec_`` secret, else
    InputError naming ``secret`` (never quoting it)."""
    try:
        parse_secret(text)
    except InvalidSecret as error:
        raise InputError("secret", str(error)) from None
    return text.strip()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def cloud_event(due: Due, source: str) -> dict[str, Any]:
    """The CloudEvents 1.0 event of a delivery. ``sequence`` (the CloudEvents sequence
    extension, a string compared lexicographically) is the notification's position
    among its organisation's, zero-padded; ``data`` is the notification as
    ``GET /v1/notifications`` shows it."""
    return {
        "specversion": "1.0",
        "id": due.notification_id,
        "source": source,
        "type": EVENT_TYPE_PREFIX + due.type,
        "time": due.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "sequence": f"{due.position:020d}",
        "data": dict(due.item),
    }


def body_of(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def headers_of(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": CONTENT_TYPE,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(parse_secret(secret), msg_id, timestamp, body),
        "user-agent": "vir-webhook/1",
    }


class WebhookChannel:
    """Delivers to organisations' webhooks, one request at a time, in the order given."""

    name = NAME
    # An organisation's deliveries go out one after the other, in position order: a
    # later one waits while an earlier one is retrying (vir.store.outbox.claim).
    ordered = True

    def __init__(
        self,
        db: Database,
        *,
        keys_dir: Path,
        dev: bool = False,
        timeout: float = 10.0,
        retry_hours: float = 24.0,
        source: str = "urn:vir:index",
        ca_file: Path | None = None,
        batch: int = 20,
        budget_seconds: float = 120.0,
        clock_seconds: Any = time.monotonic,
    ) -> None:
        self._db = db
        self._keys_dir = keys_dir
        self._box: SecretBox | None = None
        self._dev = dev
        self._timeout = timeout
        self._give_up = dt.timedelta(hours=retry_hours)
        self._source = source
        self._batch = batch
        self._budget = budget_seconds
        self._monotonic = clock_seconds
        # httpx logs every request with its URL at INFO (and httpcore the host at DEBUG):
        # a webhook URL may carry a token, so neither logs below WARNING in a process
        # that delivers webhooks.
        for noisy in ("httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._verify: ssl.SSLContext | bool = True
        if ca_file is not None:
            self._verify = ssl.create_default_context(cafile=str(ca_file))

    @property
    def give_up_after(self) -> dt.timedelta:
        return self._give_up

    @property
    def batch(self) -> int:
        return self._batch

    def close(self) -> None:
        """Nothing held between batches: each ``deliver`` opens and closes its client."""

    def deliver(self, due: Sequence[Due], now: dt.datetime) -> Sequence[Outcome]:
        """Runs the batch on an event loop of its own (the worker's thread has none): on
        it one deadline bounds each whole request, which per-step socket timeouts
        cannot (a receiver dripping a byte a second never trips a read timeout)."""
        return asyncio.run(self._deliver(due, now))

    async def _deliver(self, due: Sequence[Due], now: dt.datetime) -> list[Outcome]:
        outcomes: list[Outcome] = []
        hooks: dict[str, outbox.Webhook | None] = {}
        with self._db.read() as session:
            for oin in sorted({d.oin for d in due}):
                hooks[oin] = outbox.webhook(session, oin)
        box = self._secret_box() if any(hooks.values()) else None
        started = self._monotonic()
        failed: dict[str, Outcome] = {}  # per organisation: the failure that stops its batch
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            verify=self._verify,
            trust_env=False,  # no proxy or .netrc from the environment
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        ) as client:
            for d in due:
                hook = hooks.get(d.oin)
                if hook is None:
                    outcomes.append(Outcome(d.id, Result.FAILED, "disabled"))
                    continue
                if d.oin in failed:
                    # Its receiver just failed: the rest of this batch is not tried (the
                    # receiver not hammered) and waits behind the failed one (claim's
                    # ``ordered``), so the organisation's events keep their order.
                    outcomes.append(Outcome(d.id, Result.DEFER, retry_at=now))
                    continue
                if self._monotonic() - started > self._budget:
                    outcomes.append(Outcome(d.id, Result.DEFER, retry_at=now))
                    continue
                outcome = await self._post(client, d, hook, box, now)
                outcomes.append(outcome)
                if outcome.result is not Result.DELIVERED:
                    failed[d.oin] = outcome
        return outcomes

    def _secret_box(self) -> SecretBox | None:
        """The index's webhook secret key, read once; None while it is missing or unusable
        (deliveries are retried with ``secret-key`` until the operator fixes it)."""
        if self._box is None:
            try:
                self._box = load_secret_box(self._keys_dir)
            except ConfigurationError:
                return None
        return self._box

    async def _post(
        self,
        client: httpx.AsyncClient,
        d: Due,
        hook: outbox.Webhook,
        box: SecretBox | None,
        now: dt.datetime,
    ) -> Outcome:
        if box is None:
            return Outcome(d.id, Result.RETRY, "secret-key")
        try:
            secret = box.open(hook.secret, d.oin)
        except SealedSecretError as error:
            # Fail closed: never sent unsigned or signed with another organisation's
            # secret. A plain secret from before sealing waits (retried) for
            # ``vir outbox seal-secrets``; one that does not open here is dead.
            result = Result.RETRY if error.code == "unsealed" else Result.FAILED
            return Outcome(d.id, result, error.code)
        try:
            check_url(hook.url, dev=self._dev)
            parse_secret(secret)
        except (InputError, InvalidSecret):
            return Outcome(d.id, Result.FAILED, "config")
        body = body_of(cloud_event(d, self._source))
        headers = headers_of(secret, d.notification_id, int(now.timestamp()), body)
        try:
            # One deadline for the whole attempt: connect, TLS, sending and the answer's
            # status and headers. Streamed and closed without reading the body: a
            # receiver's answer is its status; a huge or endless body costs nothing.
            async with asyncio.timeout(self._timeout):
                async with client.stream(
                    "POST", hook.url, content=body, headers=headers
                ) as response:
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(d.id, Result.RETRY, "timeout")
        except httpx.ConnectError as error:
            return Outcome(d.id, Result.RETRY, "tls" if _tls_failure(error) else "refused")
        except httpx.HTTPError:
            return Outcome(d.id, Result.RETRY, "error")
        if 200 <= status < 300:
            return Outcome(d.id, Result.DELIVERED)
        if status == 410:  # Gone: the receiver says never again
            return Outcome(d.id, Result.FAILED, "410")
        return Outcome(d.id, Result.RETRY, str(status), _retry_at(retry_after, now))


def _tls_failure(error: BaseException) -> bool:
    """Whether an SSL error is somewhere in the chain of ``error`` (by type, never text)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _retry_at(header: str | None, now: dt.datetime) -> dt.datetime | None:
    """A Retry-After in seconds, capped; None when absent or not a number of seconds."""
    if header is None or not header.strip().isdigit():
        return None
    seconds = min(int(header.strip()), int(MAX_RETRY_AFTER.total_seconds()))
    return now + dt.timedelta(seconds=seconds)
