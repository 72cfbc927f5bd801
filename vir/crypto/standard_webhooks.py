"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec v1): HMAC-SHA256.

A secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes. A message is
signed as ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` in the
``webhook-signature`` header, beside ``webhook-id`` and ``webhook-timestamp`` (Unix
seconds). The sender signs (``sign``, ``vir.delivery.webhook``); a receiver verifies
(``verify``, ``vir.client.webhooks``). Tested against the reference library
``standardwebhooks``.

Errors never carry the secret, the signature or the body: ``InvalidSecret`` and
``InvalidSignature`` have fixed messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random

PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64


class InvalidSecret(ValueError):
    """Not a ``whsec_`` secret of 24 to 64 bytes (the secret itself is never in the text)."""

    def __init__(self) -> None:
        super().__init__(
            f"not a Standard Webhooks secret: {PREFIX} followed by the base64 of "
            f"{MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes"
        )


class InvalidSignature(Exception):
    """The message is not signed with the secret, or not within the time tolerance, or
    seen before. One opaque error: which check failed is not told."""

    def __init__(self) -> None:
        super().__init__("webhook signature not valid")


class Secret:
    """A parsed secret: the key bytes stay inside; ``repr`` and ``str`` hide them."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def mac(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()


def parse_secret(text: str) -> Secret:
    """The secret in ``text`` (surrounding whitespace ignored); InvalidSecret otherwise."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise InvalidSecret()
    encoded = text[len(PREFIX) :]
    if not encoded or len(encoded) > 200:
        raise InvalidSecret()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret() from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidSecret()
    return Secret(key)


def new_secret() -> str:
    """A fresh secret of 32 random bytes, as ``whsec_<base64>``."""
    return PREFIX + base64.b64encode(_random.token_bytes(32)).decode()


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return msg_id.encode() + b"." + str(timestamp).encode() + b"." + body


def sign(secret: Secret, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64>``."""
    digest = secret.mac(_signed_content(msg_id, timestamp, body))
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: Secret, msg_id: str, timestamp: int, body: bytes, header: str) -> None:
    """InvalidSignature unless one of the space-separated ``v1,`` signatures in
    ``header`` is the signature of the message (compared in constant time)."""
    expected = secret.mac(_signed_content(msg_id, timestamp, body))
    for candidate in header.split(" "):
        version, _, encoded = candidate.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise InvalidSignature()
