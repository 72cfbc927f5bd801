"""Key files: reading a 32-byte key kept as hex in a file of its own (the checkpoint seed,
the webhook secret key) with one set of checks and messages, none showing the key; and
destroying a key file."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vir.domain.errors import ConfigurationError

_HEX_32 = re.compile(r"[0-9a-fA-F]{64}")


def read_hex_key(path: Path, what: str, how_to: str, malformed: str) -> bytes:
    """The 32 bytes in ``path``; ConfigurationError naming ``what`` and the file (never
    its content) when it is missing (``how_to`` says how to make one), not a regular
    file, readable by group or others, or not 64 hex digits (``malformed`` says what
    to do)."""
    require_private(path, what, how_to)
    try:
        text = path.read_bytes().decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    # fullmatch before fromhex: fromhex also accepts spaces between bytes.
    if not _HEX_32.fullmatch(text):
        raise ConfigurationError(f"{what} {path} is not 32 bytes in hex; {malformed}")
    return bytes.fromhex(text)


def require_private(path: Path, what: str, how_to: str = "") -> None:
    """ConfigurationError naming ``what`` and the file (never its content) unless
    ``path`` is a regular file (a symlink to one: a mounted secret) that group and
    others cannot access. The one check of a key file's permissions, at start-up and in
    ``/ready`` alike; ``how_to`` says how to make a missing one."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(
            f"no {what} at {path}" + (f"; {how_to}" if how_to else "")
        ) from None
    except OSError:
        raise ConfigurationError(f"{what} {path} cannot be read") from None
    if not stat.S_ISREG(mode):
        raise ConfigurationError(f"{what} {path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{what} {path} is accessible by group or others; run: chmod 600 {path}"
        )


def create_hex_key(path: Path, size: int = 32) -> bool:
    """Write ``size`` random bytes as hex to a new file ``path`` (mode 0600 from the first
    byte); False, writing nothing, when it exists: a key is never replaced, and with
    O_EXCL two concurrent inits cannot both write. The folder must exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_bytes(size).hex() + "\n")
    return True


def write_new_file(path: Path, content: bytes) -> None:
    """Create ``path`` with ``content``: O_EXCL (never overwrites; FileExistsError), 0600
    from the first byte, synced to disk. A half-written file is removed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    sync_dir(path.parent)


def destroy_key_file(path: Path) -> bool:
    """Overwrite with zeros, sync, unlink. A symlink is unlinked, never followed.

    Overwriting is best effort: copy-on-write and flash filesystems may keep old blocks.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISREG(mode):
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            size = os.fstat(fd).st_size
            os.write(fd, bytes(size))
            os.fsync(fd)
        finally:
            os.close(fd)
    path.unlink()
    sync_dir(path.parent)
    return True


def sync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or filesystem allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def derived_key(material: bytes, purpose: str) -> bytes:
    """A 32-byte key for ``purpose`` derived from secret ``material`` (a private key
    file's content) with HKDF-SHA256: known to no one without the material, and telling
    nothing of it."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=purpose.encode()).derive(material)
