"""OPRF key files: one secret scalar per epoch, created by ``vir keys init``.

A key file is ``<keys_dir>/oprf-epoch-<N>.key`` holding the 32-byte scalar in hex on its
first line and, for a Shamir share of a threshold deployment, ``share-index <i>`` (1..255)
on a second line. With an HSM (``vir.crypto.hsm``) the same text is wrapped by the token's
AES key and stored base64 in ``oprf-epoch-<N>.key.wrapped`` instead; it is unwrapped into
memory only when the service starts.

The service refuses to start on a missing key, a key file readable by group or others, a
malformed or zero scalar, or a published test key, and says how to make one; with an HSM
configured it also refuses a plain key file (import it first), and without one a wrapped
file (configure the HSM).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vir.crypto import oprf
from vir.crypto.keyfile import destroy_key_file, require_private, write_new_file
from vir.domain.errors import ConfigurationError, CryptoError

if TYPE_CHECKING:
    from vir.crypto.hsm import Token

_KEY_FILE = re.compile(r"oprf-epoch-([1-9][0-9]{0,8})\.key(\.wrapped)?")
_SCALAR_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SHARE_LINE = re.compile(r"share-index ([0-9]{1,3})")
_WRAPPED_SUFFIX = ".wrapped"
MAX_SHARE_INDEX = 255
# RFC 9497 Appendix A.1.1's skSm: public, so never acceptable as a production key.
_PUBLISHED_TEST_KEYS = frozenset(
    {bytes.fromhex("5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e")}
)
# What to do about a missing or unusable OPRF key: a new key pseudonymises every person
# anew, so nothing stored would match; making one is for a new key holder only, and how
# depends on the deployment (keyholder_set_up).
_HOW_TO = (
    "check VIR_KEYHOLDER_KEYS_DIR ({dir}), or restore the key from a backup (a new key "
    "matches nothing stored). Only when setting up a new key holder: {set_up}"
)
_IMPORT = "run: vir keyholder hsm-import"
_CONFIGURE_HSM = "set VIR_PKCS11_MODULE, VIR_PKCS11_TOKEN and VIR_PKCS11_PIN_FILE"


@dataclass(frozen=True)
class OprfKey:
    epoch: int
    secret: bytes = b""
    share_index: int | None = None  # this server's Shamir share index; None: the whole key

    def __repr__(self) -> str:  # never show key material in logs or tracebacks
        share = "" if self.share_index is None else f", share_index={self.share_index}"
        return f"OprfKey(epoch={self.epoch}{share})"


@dataclass(frozen=True)
class OprfKeyring:
    keys: tuple[OprfKey, ...]

    @property
    def current(self) -> OprfKey:
        return max(self.keys, key=lambda k: k.epoch)

    def get(self, epoch: int) -> OprfKey | None:
        return next((k for k in self.keys if k.epoch == epoch), None)


def keyholder_set_up(threshold: int) -> str:
    """How a new key holder gets its keys: ``vir keyholder init`` makes a whole key; a
    holder of a t-of-n deployment (``threshold`` t > 1), which init refuses, gets its share
    from the key generation with the other holders, or from the share repair in place of
    a lost holder (docs/operations.md)."""
    if threshold <= 1:
        return "vir keyholder init"
    return (
        "vir keyholder dkg start, with the other holders of a new deployment; in place of a "
        'lost holder, vir keyholder repair request (docs/operations.md, "Losing a key holder")'
    )


def _how_to(keys_dir: Path, threshold: int) -> str:
    return _HOW_TO.format(dir=keys_dir, set_up=keyholder_set_up(threshold))


def key_path(keys_dir: Path, epoch: int) -> Path:
    return keys_dir / f"oprf-epoch-{epoch}.key"


def wrapped_key_path(keys_dir: Path, epoch: int) -> Path:
    return keys_dir / f"oprf-epoch-{epoch}.key{_WRAPPED_SUFFIX}"


def _key_files(keys_dir: Path) -> Iterator[tuple[int, bool, Path]]:
    """(epoch, wrapped, path) of every OPRF key file in ``keys_dir``, by epoch."""
    found = []
    for path in keys_dir.iterdir():
        match = _KEY_FILE.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), match.group(2) is not None, path))
    yield from sorted(found)


def _wrap_context(epoch: int) -> bytes:
    # Bound into the wrapping (GCM additional data): one epoch's wrapped key copied over
    # another's file does not unwrap.
    return f"vir oprf-epoch-{epoch}.key".encode("ascii")


def _render(secret: bytes, share_index: int | None) -> bytes:
    """What a plain key file holds; the same bytes are what a wrapped file wraps."""
    text = secret.hex() + "\n"
    if share_index is not None:
        text += f"share-index {share_index}\n"
    return text.encode("ascii")


def _check_secret(secret: bytes, where: str, how_to: str) -> None:
    if (
        len(secret) != oprf.SCALAR_BYTES
        or not oprf.is_canonical_scalar(secret)
        or secret == bytes(oprf.SCALAR_BYTES)
    ):
        raise ConfigurationError(f"{where} is not a valid ristretto255 scalar; {how_to}")
    if secret in _PUBLISHED_TEST_KEYS:
        raise ConfigurationError(f"{where} is a published test key; {how_to}")


def _check_share_index(share_index: int | None) -> None:
    if share_index is not None and not 1 <= share_index <= MAX_SHARE_INDEX:
        raise ConfigurationError(f"a share index is 1..{MAX_SHARE_INDEX}")


def _parse(content: bytes, path: Path, epoch: int, threshold: int) -> OprfKey:
    """The key in a plain file's content (or a wrapped file's plaintext); never says what
    the content was (the advice for a key holder of ``threshold``)."""
    how_to = _how_to(path.parent, threshold)
    try:
        lines = content.decode("ascii").strip().splitlines()
    except UnicodeDecodeError:
        lines = []
    lines = [line.strip() for line in lines]
    # fullmatch before fromhex: fromhex also accepts spaces between bytes.
    if not 1 <= len(lines) <= 2 or not _SCALAR_HEX.fullmatch(lines[0]):
        raise ConfigurationError(f"OPRF key {path} is not a valid ristretto255 scalar; {how_to}")
    secret = bytes.fromhex(lines[0])
    _check_secret(secret, f"OPRF key {path}", how_to)
    share_index = None
    if len(lines) == 2:
        share = _SHARE_LINE.fullmatch(lines[1])
        if share is None or not 1 <= int(share.group(1)) <= MAX_SHARE_INDEX:
            raise ConfigurationError(
                f"OPRF key {path} has a malformed second line; it must be "
                f"'share-index <i>' with i in 1..{MAX_SHARE_INDEX}, or absent for a whole key"
            )
        share_index = int(share.group(1))
    return OprfKey(epoch=epoch, secret=secret, share_index=share_index)


def _read_private(path: Path) -> bytes:
    require_private(path, "OPRF key")
    try:
        return path.read_bytes()
    except OSError:
        raise ConfigurationError(f"OPRF key {path} cannot be read") from None


def _load_plain(path: Path, epoch: int, threshold: int) -> OprfKey:
    return _parse(_read_private(path), path, epoch, threshold)


def _unwrap_file(path: Path, epoch: int, token: Token) -> bytes:
    text = _read_private(path)
    try:
        blob = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        blob = b""
    try:
        return token.unwrap(blob, aad=_wrap_context(epoch))
    except CryptoError:
        raise ConfigurationError(
            f"OPRF key {path} does not unwrap with token '{token.label}': it was wrapped by "
            "another token or key, or it was altered; restore it from a backup"
        ) from None


def _load_wrapped(path: Path, epoch: int, token: Token, threshold: int) -> OprfKey:
    return _parse(_unwrap_file(path, epoch, token), path, epoch, threshold)


def write_oprf_key(
    keys_dir: Path,
    epoch: int,
    secret: bytes,
    share_index: int | None = None,
    token: Token | None = None,
) -> Path:
    """Write the key of ``epoch`` (a whole key, or share ``share_index``): the plain file, or
    with a token its wrapped twin. 0600, never overwriting any key of that epoch."""
    if epoch < 1:
        raise ValueError("an OPRF key epoch is 1 or more")
    _check_share_index(share_index)
    _check_secret(secret, "the OPRF key to write", "refusing to write it")
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for existing in (key_path(keys_dir, epoch), wrapped_key_path(keys_dir, epoch)):
        if existing.exists() or existing.is_symlink():
            raise ConfigurationError(
                f"an OPRF key for epoch {epoch} already exists at {existing}; vir never "
                "overwrites a key"
            )
    return _write_key(keys_dir, epoch, _render(secret, share_index), token)


def _write_key(keys_dir: Path, epoch: int, content: bytes, token: Token | None) -> Path:
    """Write a key file's ``content``: plain, or with ``token`` wrapped and base64."""
    if token is None:
        path = key_path(keys_dir, epoch)
    else:
        path = wrapped_key_path(keys_dir, epoch)
        content = base64.b64encode(token.wrap(content, aad=_wrap_context(epoch))) + b"\n"
    try:
        write_new_file(path, content)
    except FileExistsError:
        raise ConfigurationError(
            f"an OPRF key for epoch {epoch} already exists at {path}; vir never overwrites a key"
        ) from None
    return path


def init_oprf_key(keys_dir: Path, token: Token | None = None) -> tuple[Path, bool]:
    """Create epoch 1 (wrapped when ``token``) if no OPRF key of any kind exists.
    Returns (path, created); never overwrites."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = list(_key_files(keys_dir))
    if existing:
        return existing[-1][2], False
    try:
        return write_oprf_key(keys_dir, 1, oprf.random_scalar(), token=token), True
    except ConfigurationError:
        # A concurrent init won the race (O_EXCL); its key stands.
        existing = list(_key_files(keys_dir))
        if existing:
            return existing[-1][2], False
        raise


def load_oprf_keyring(
    keys_dir: Path, token: Token | None = None, threshold: int = 1
) -> OprfKeyring:
    """Every epoch's key: plain files without a token, wrapped files (unwrapped by the
    token) with one. Refuses the other kind, and anything :func:`_parse` refuses; what a
    refusal advises is for a key holder of ``threshold`` (``keyholder_set_up``)."""
    if not keys_dir.is_dir():
        raise ConfigurationError(
            f"no OPRF key directory at {keys_dir}; " + _how_to(keys_dir, threshold)
        )
    keys = []
    for epoch, wrapped, path in _key_files(keys_dir):
        if token is None and wrapped:
            raise ConfigurationError(
                f"OPRF key {path} is wrapped by an HSM; {_CONFIGURE_HSM} to use it"
            )
        if token is not None and not wrapped:
            raise ConfigurationError(
                f"OPRF key {path} is not wrapped, but an HSM is configured; {_IMPORT} "
                f"--keys-dir {keys_dir} to wrap it with the token"
            )
        keys.append(
            _load_plain(path, epoch, threshold)
            if token is None
            else _load_wrapped(path, epoch, token, threshold)
        )
    if not keys:
        raise ConfigurationError(f"no OPRF key in {keys_dir}; " + _how_to(keys_dir, threshold))
    return OprfKeyring(tuple(keys))


def destroy_oprf_key(keys_dir: Path, epoch: int) -> bool:
    """Destroy the key of ``epoch``, plain and wrapped; True if something was removed."""
    removed = destroy_key_file(key_path(keys_dir, epoch))
    return destroy_key_file(wrapped_key_path(keys_dir, epoch)) or removed


def import_to_token(keys_dir: Path, token: Token, threshold: int = 1) -> list[Path]:
    """Wrap every plain key file with ``token``, check that the wrapped file unwraps to
    the same key, then destroy the plain file. Returns the wrapped files.

    Resumable: a plain file whose wrapped twin already holds the same key is just
    destroyed. A twin holding another key (or none that unwraps) stops the import, and
    both files are left for the operator.
    """
    imported = []
    for epoch, wrapped, path in list(_key_files(keys_dir)):
        if wrapped:
            continue
        key = _load_plain(path, epoch, threshold)  # refuses an exposed, malformed or published one
        twin = wrapped_key_path(keys_dir, epoch)
        if not twin.exists():
            _write_key(keys_dir, epoch, _render(key.secret, key.share_index), token)
        try:
            same = _load_wrapped(twin, epoch, token, threshold) == key
        except ConfigurationError:
            same = False
        if not same:
            raise ConfigurationError(
                f"{twin} exists but does not hold the key in {path}; check both and remove "
                "the wrong one before importing again"
            )
        destroy_key_file(path)
        imported.append(twin)
    return imported
