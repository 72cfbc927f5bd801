"""Rekey tokens: the key holder's signed word that epoch ``e + 1`` has key ``k' = δ·k``.

The key holder makes a new epoch by multiplying its key by a random scalar δ, and
writes a token carrying δ for the index (``vir keys rekey --token FILE``), which then
multiplies every stored pseudonym by δ: no identity is needed, and δ reveals neither
key. A token is a small JSON document::

    {"created_at": "2026-12-01T10:00:00Z", "delta": "<base64url, 32 bytes>",
     "from_epoch": 1, "signature": "<base64url, 64 bytes>", "signer": "<key name>",
     "to_epoch": 2, "version": 1}

``signature`` is Ed25519, by the key holder's key (a C2SP verifier key names it), over
``DOMAIN`` followed by the canonical JSON of every other field (keys sorted, no spaces,
ASCII): one byte form per token, so what is verified is exactly what is read.

δ is as sensitive as the pseudonyms it converts (with it, an epoch's pseudonyms give the
next epoch's), so it appears in no message, repr or log line: errors name what is
wrong, never a value.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vir.audit.checkpoint import parse_verifier_key
from vir.crypto import oprf
from vir.crypto.signing import ed25519_verify
from vir.domain import strict_json
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.errors import ConfigurationError, InputError

VERSION = 1
DOMAIN = b"vir rekey token v1\n"
# A token is some 300 bytes; anything much larger is not one, and is not parsed.
MAX_TOKEN_BYTES = 4096
FIELDS = frozenset(
    ("version", "from_epoch", "to_epoch", "delta", "created_at", "signer", "signature")
)
SIGNATURE_BYTES = 64
_ONE = oprf.scalar_from_int(1)
_ZERO = bytes(oprf.SCALAR_BYTES)
_CREATED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_FIELD_NAME = re.compile(r"[a-z_]{1,32}")
_KEY_NAME = re.compile(r"[!-*,-~]{1,100}")  # printable ASCII without '+', as key names are

Sign = Callable[[bytes], bytes]


@dataclass(frozen=True)
class RekeyToken:
    """A verified token: epoch ``from_epoch``'s pseudonyms times ``delta`` are
    ``to_epoch``'s. ``delta`` is left out of the repr."""

    from_epoch: int
    to_epoch: int
    delta: bytes = field(repr=False)
    created_at: dt.datetime
    signer: str


def make_token(
    sign: Sign,
    verifier_key: str,
    from_epoch: int,
    to_epoch: int,
    delta: bytes,
    created_at: dt.datetime,
) -> bytes:
    """The token for a rekey from ``from_epoch`` to ``to_epoch = from_epoch + 1`` by
    ``delta``, signed with ``sign`` (the Ed25519 key ``verifier_key`` describes; the
    signature is checked against it before the token is returned)."""
    name, public_key = _verifier(verifier_key)
    if not _KEY_NAME.fullmatch(name):
        raise ConfigurationError("the verifier key's name must be printable ASCII")
    _check_epochs(from_epoch, to_epoch)
    _check_delta(delta)
    if created_at.tzinfo is None:
        raise InputError("created_at", "must be an aware datetime")
    body: dict[str, Any] = {
        "version": VERSION,
        "from_epoch": from_epoch,
        "to_epoch": to_epoch,
        "delta": b64url_encode(delta),
        "created_at": created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "signer": name,
    }
    message = signed_message(body)
    signature = sign(message)
    if not ed25519_verify(public_key, signature, message):
        raise ConfigurationError("the signing key does not belong to the given verifier key")
    document = {**body, "signature": b64url_encode(signature)}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"


def read_token(data: bytes, verifier_key: str) -> RekeyToken:
    """The token in ``data`` once its signature by ``verifier_key`` verifies and every
    field is what a token holds; InputError naming ``token`` otherwise (a
    ConfigurationError when ``verifier_key`` itself is not a verifier key)."""
    name, public_key = _verifier(verifier_key)
    document = _document(data)
    if type(document["version"]) is not int or document["version"] != VERSION:
        raise InputError("token", f"not a version {VERSION} rekey token")
    signer = document["signer"]
    if not isinstance(signer, str) or not _KEY_NAME.fullmatch(signer):
        raise InputError("token", "the signer is not a key name")
    if signer != name:
        raise InputError(
            "token",
            f"signed by key {signer!r}, not by the key holder's key {name!r}: give the token "
            "that key holder wrote, or check it with its signer's verifier key "
            '(docs/operations.md, "Rotating the OPRF key")',
        )
    signature = _decoded(document["signature"], SIGNATURE_BYTES, "signature")
    body = {k: v for k, v in document.items() if k != "signature"}
    if not ed25519_verify(public_key, signature, signed_message(body)):
        raise InputError("token", "the signature does not verify with the key holder's key")
    from_epoch, to_epoch = document["from_epoch"], document["to_epoch"]
    if type(from_epoch) is not int or type(to_epoch) is not int:
        raise InputError("token", "the epochs are not whole numbers")
    _check_epochs(from_epoch, to_epoch)
    delta = _decoded(document["delta"], oprf.SCALAR_BYTES, "delta")
    _check_delta(delta)
    return RekeyToken(from_epoch, to_epoch, delta, _created_at(document["created_at"]), signer)


def token_file(path: Path) -> bytes:
    """The token file's bytes, read no further than a token can be long (``read_token``
    refuses more); InputError naming ``token`` when it cannot be read."""
    try:
        with path.open("rb") as file:
            return file.read(MAX_TOKEN_BYTES + 1)
    except OSError:
        raise InputError("token", f"cannot read the token file {path}") from None


def signed_message(body: dict[str, Any]) -> bytes:
    """What the signature covers: the domain, then the canonical JSON of ``body``."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return DOMAIN + canonical.encode("ascii")


def _verifier(verifier_key: str) -> tuple[str, bytes]:
    try:
        return parse_verifier_key(verifier_key.strip())
    except ValueError as error:
        raise ConfigurationError(f"the key holder's verifier key is unusable: {error}") from None


def _document(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_TOKEN_BYTES:
        raise InputError("token", f"larger than {MAX_TOKEN_BYTES} bytes: not a rekey token")
    try:
        document = strict_json.loads(data)
    except strict_json.NotJson as error:
        raise InputError("token", f"not a rekey token: {error}") from None
    if not isinstance(document, dict):
        raise InputError("token", "not a JSON object")
    unknown = set(document) - FIELDS
    if unknown:
        names = sorted(n for n in unknown if _FIELD_NAME.fullmatch(n))
        shown = f": {', '.join(names)}" if len(names) == len(unknown) else ""
        raise InputError("token", f"{len(unknown)} unknown field(s){shown}")
    missing = sorted(FIELDS - set(document))
    if missing:
        raise InputError("token", f"missing field(s): {', '.join(missing)}")
    return document


def _decoded(value: object, size: int, what: str) -> bytes:
    data = b64url_decode(value) if isinstance(value, str) else None
    if data is None or len(data) != size:
        raise InputError("token", f"{what} is not {size} bytes in canonical base64url")
    return data


def _check_epochs(from_epoch: int, to_epoch: int) -> None:
    if from_epoch < 1 or to_epoch != from_epoch + 1:
        raise InputError("token", "a rekey goes from one epoch (1 or more) to the next")


def _check_delta(delta: bytes) -> None:
    # δ = 0 would map every pseudonym to the identity; δ = 1 rotates nothing, and would
    # make a value already converted indistinguishable from one still to convert.
    if not oprf.is_canonical_scalar(delta) or delta in (_ZERO, _ONE):
        raise InputError("token", "delta is not a canonical scalar other than 0 and 1")


def _created_at(value: object) -> dt.datetime:
    if not isinstance(value, str) or not _CREATED_AT.fullmatch(value):
        raise InputError("token", "created_at is not YYYY-MM-DDTHH:MM:SSZ")
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise InputError("token", "created_at is not a valid time") from None
