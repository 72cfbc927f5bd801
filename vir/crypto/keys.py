"""OPRF key files: one secret scalar per epoch, created by ``vir keys init``.

A key file is ``<keys_dir>/oprf-epoch-<N>.key`` holding the 32-byte scalar in hex.
The service refuses to start on a missing key, a key readable by group or others,
a malformed or zero scalar, or a published test key, and says how to make one.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from vir.crypto import oprf
from vir.domain.errors import ConfigurationError

_KEY_FILE = re.compile(r"oprf-epoch-([1-9][0-9]{0,8})\.key")
# RFC 9497 Appendix A.1.1's skSm: public, so never acceptable as a production key.
_PUBLISHED_TEST_KEYS = frozenset(
    {bytes.fromhex("5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e")}
)
_HOW_TO = "create one with: vir keys init --keys-dir {dir}"


@dataclass(frozen=True)
class OprfKey:
    epoch: int
    secret: bytes = b""

    def __repr__(self) -> str:  # never show key material in logs or tracebacks
        return f"OprfKey(epoch={self.epoch})"


@dataclass(frozen=True)
class OprfKeyring:
    keys: tuple[OprfKey, ...]

    @property
    def current(self) -> OprfKey:
        return max(self.keys, key=lambda k: k.epoch)


def key_path(keys_dir: Path, epoch: int) -> Path:
    return keys_dir / f"oprf-epoch-{epoch}.key"


def init_oprf_key(keys_dir: Path) -> tuple[Path, bool]:
    """Create epoch 1 if no OPRF key exists. Returns (path, created); never overwrites."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = sorted(p for p in keys_dir.iterdir() if _KEY_FILE.fullmatch(p.name))
    if existing:
        return existing[-1], False
    path = key_path(keys_dir, 1)
    # O_EXCL: two concurrent inits cannot both write; 0600 from the first byte on.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(oprf.random_scalar().hex() + "\n")
    return path, True


def _load_one(path: Path, epoch: int) -> OprfKey:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"OPRF key {path} is accessible by group or others; run: chmod 600 {path}"
        )
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if (
        len(secret) != oprf.SCALAR_BYTES
        or not oprf.is_canonical_scalar(secret)
        or secret == bytes(oprf.SCALAR_BYTES)
    ):
        raise ConfigurationError(
            f"OPRF key {path} is not a valid ristretto255 scalar; "
            + _HOW_TO.format(dir=path.parent)
        )
    if secret in _PUBLISHED_TEST_KEYS:
        raise ConfigurationError(
            f"OPRF key {path} is a published test key; " + _HOW_TO.format(dir=path.parent)
        )
    return OprfKey(epoch=epoch, secret=secret)


def load_oprf_keyring(keys_dir: Path) -> OprfKeyring:
    if not keys_dir.is_dir():
        raise ConfigurationError(
            f"no OPRF key directory at {keys_dir}; " + _HOW_TO.format(dir=keys_dir)
        )
    keys = []
    for path in sorted(keys_dir.iterdir()):
        match = _KEY_FILE.fullmatch(path.name)
        if match:
            keys.append(_load_one(path, int(match.group(1))))
    if not keys:
        raise ConfigurationError(f"no OPRF key in {keys_dir}; " + _HOW_TO.format(dir=keys_dir))
    return OprfKeyring(tuple(keys))
