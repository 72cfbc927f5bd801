"""Sealed boxes (libsodium ``crypto_box_seal``) and their one-use key files, for share
repair (``vir.keyholder.repair``): a holder makes a fresh box key pair, publishes the
public key, and whoever has it can seal a message only that holder opens.

A sealed box is anonymous (it does not say who sealed it) but authenticated against
change: a box altered in transit does not open. Who made a box is what the signed
document carrying it says. The secret key lives in a file of its own in the holder's
keys directory (0600, created with O_EXCL and synced) only between the step that makes
it and the step that opens with it, then it is destroyed (overwritten and unlinked).
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pysodium

from vir.crypto.keyfile import destroy_key_file, write_new_file
from vir.domain.errors import ConfigurationError, CryptoError

PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 32
_KEY_LINE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BoxKeyPair:
    """A box key pair; the secret key is never in the repr."""

    public: bytes
    secret: bytes = field(repr=False)


def new_keypair() -> BoxKeyPair:
    public, secret = pysodium.crypto_box_keypair()
    return BoxKeyPair(bytes(public), bytes(secret))


def seal(message: bytes, public: bytes) -> bytes:
    """``message`` sealed to ``public``: only its secret key's holder opens it."""
    if len(public) != PUBLIC_KEY_BYTES:
        raise CryptoError()
    try:
        return bytes(pysodium.crypto_box_seal(message, public))
    except ValueError:
        raise CryptoError() from None


def open_sealed(box: bytes, keypair: BoxKeyPair) -> bytes:
    """The message in ``box``; the opaque CryptoError when it was sealed to another key or
    altered."""
    try:
        return bytes(pysodium.crypto_box_seal_open(box, keypair.public, keypair.secret))
    except (ValueError, TypeError):
        raise CryptoError() from None


def write_keypair(path: Path, keypair: BoxKeyPair) -> None:
    """A new file ``path`` (0600 from the first byte, O_EXCL: never overwrites, synced)
    holding the pair; ConfigurationError when it exists."""
    content = f"{keypair.secret.hex()}\n{keypair.public.hex()}\n".encode("ascii")
    try:
        write_new_file(path, content)
    except FileExistsError:
        raise ConfigurationError(
            f"a box key already exists at {path}; vir never overwrites a key"
        ) from None


def read_keypair(path: Path) -> BoxKeyPair:
    """The pair in ``path``; ConfigurationError (naming the file, never its content) when
    it is missing, readable by others, or malformed."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(
            f"no box key at {path}: it was used and destroyed already, or this step runs "
            "on another key holder than the one that made it"
        ) from None
    if not stat.S_ISREG(mode):
        raise ConfigurationError(f"box key {path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"box key {path} is accessible by group or others")
    try:
        lines = path.read_bytes().decode("ascii").split()
    except (OSError, UnicodeDecodeError):
        lines = []
    if len(lines) != 2 or not all(_KEY_LINE.fullmatch(line) for line in lines):
        raise ConfigurationError(f"box key {path} is malformed")
    secret, public = bytes.fromhex(lines[0]), bytes.fromhex(lines[1])
    if bytes(pysodium.crypto_scalarmult_base(secret)) != public:
        raise ConfigurationError(f"box key {path} is malformed")
    return BoxKeyPair(public, secret)


def destroy_keypair(path: Path) -> bool:
    """Overwrite and unlink the key file; True if there was one."""
    return destroy_key_file(path)
