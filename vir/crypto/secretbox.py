"""Webhook secrets (and the portal's OpenID client secrets) encrypted at rest: AES-256-GCM
under an index-side key file.

``webhooks.secret`` holds an organisation's ``whsec_`` secret. Whoever can read the
database (a backup, a replica, a support query) could otherwise sign events in vir's
name to that organisation's back office. So the column holds ``vir-aesgcm1:`` and the
base64url of a random 96-bit nonce and the AES-256-GCM ciphertext with its tag; the key
is ``<keys_dir>/webhook-secrets.key`` (32 random bytes in hex, mode 0600, made by
``vir keys init`` and ``vir dev init`` beside the checkpoint key and backed up with it).
The associated data is what the value is for (``WEBHOOK``, ``OIDC_CLIENT``) and the
organisation's OIN: a row copied to another organisation's webhook, or into another
column, does not decrypt there, and the delivery fails closed (never sent unsigned, never
signed with another organisation's secret).

The index's checkpoint key is a file, not a token key (the HSM, ``vir.crypto.hsm``, holds
the key holder's keys), so this key is a file too, with the same protection.
A value that is still a plain ``whsec_`` secret (written before encryption) is not used:
``vir outbox seal-secrets`` encrypts such rows in place.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vir.crypto.keyfile import create_hex_key, read_hex_key

KEY_FILE_NAME = "webhook-secrets.key"
KEY_SIZE = 32
NONCE_SIZE = 12
PREFIX = "vir-aesgcm1:"
PLAIN_PREFIX = "whsec_"
# What a sealed value is for, in its associated data with the OIN: a value sealed for
# one use does not open as another (a webhook secret is no OpenID client secret).
WEBHOOK = "webhook"
OIDC_CLIENT = "oidc-client"


def _aad(purpose: str, oin: str) -> bytes:
    return f"vir {purpose} secret v1\x00{oin}".encode("ascii")


# A missing key is most often VIR_KEYS_DIR pointing elsewhere: a new key would not open
# the secrets already sealed under the old one, so init is named for a first set-up only.
_MISSING = (
    "VIR_KEYS_DIR is {dir} ({where}) and holds none: set VIR_KEYS_DIR to the index's keys "
    "folder, or restore the key from a backup (a new key opens none of the stored webhook "
    "and sign-in secrets). Only when setting up a new index: vir keys init --keys-dir {dir}"
)


class SealedSecretError(Exception):
    """A stored secret that cannot be used; ``code`` says why, and nothing else:
    ``unsealed`` (a plain secret from before encryption) or ``secret`` (not decryptable
    here: another organisation's row, another key, or tampered with)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def key_path(keys_dir: Path) -> Path:
    return keys_dir / KEY_FILE_NAME


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


class SecretBox:
    """Seals and opens webhook secrets for one index (its key file)."""

    __slots__ = ("_aead", "_subkeys")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)
        # The only use of the raw key besides sealing: HMAC keys for other purposes.
        self._subkeys = hmac.new(key, b"vir secret box subkeys", hashlib.sha256).digest()

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose``, derived from this one (HMAC-SHA256): as well
        kept as the key file, the same in every process that has it, and no file of its
        own. (The portal's pseudonymous person ids: vir.portal.oidc.stored_person.)"""
        return hmac.new(self._subkeys, purpose.encode("utf-8"), hashlib.sha256).digest()

    def __repr__(self) -> str:  # never show key material in logs or tracebacks
        return "SecretBox(<key hidden>)"

    def seal(self, secret: str, oin: str, purpose: str = WEBHOOK) -> str:
        """The stored form of ``secret`` for organisation ``oin``'s ``purpose``."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, secret.encode("ascii"), _aad(purpose, oin))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, stored: str, oin: str, purpose: str = WEBHOOK) -> str:
        """The secret in ``stored`` if it was sealed for ``oin`` and ``purpose`` under
        this key, else SealedSecretError (with a code, never content)."""
        if stored.startswith(PLAIN_PREFIX):
            raise SealedSecretError("unsealed")
        if not is_sealed(stored):
            raise SealedSecretError("secret")
        text = stored[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._aead.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], _aad(purpose, oin))
            return plain.decode("ascii")
        except (binascii.Error, ValueError, InvalidTag, UnicodeError):
            raise SealedSecretError("secret") from None


def init_secret_key(keys_dir: Path) -> tuple[Path, bool]:
    """Create the webhook secret key if none exists. Returns (path, created); never
    overwrites (the stored secrets would no longer open)."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = key_path(keys_dir)
    return path, create_hex_key(path, KEY_SIZE)


def load_secret_box(keys_dir: Path) -> SecretBox:
    """The box of the key in ``keys_dir``; ConfigurationError (naming the file, never its
    content) for a missing, exposed or malformed key."""
    path = key_path(keys_dir)
    missing = _MISSING.format(dir=keys_dir, where=keys_dir.resolve())
    key = read_hex_key(path, "webhook secret key", missing, "restore it from a backup")
    return SecretBox(key)


def require_secret_key(keys_dir: Path) -> None:
    """At start-up (and in ``/ready``): the key in ``keys_dir``, when there is one, must
    pass every check ``load_secret_box`` makes when a secret is first sealed or opened,
    so that an exposed or malformed key stops the start instead of waiting for the first
    webhook. A missing one is not refused here: an index without webhooks or portal
    sign-in secrets needs none, and the first use says how to make it."""
    if key_path(keys_dir).exists() or key_path(keys_dir).is_symlink():
        load_secret_box(keys_dir)
