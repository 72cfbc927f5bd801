"""A dealer's random polynomial kept between the two steps of key generation
(``vir.keyholder.dkg``) that need it: drawn and committed to at ``start``, dealt at
``deal``, destroyed at ``finish``.

The file holds the t coefficients, one canonical scalar in hex a line. Without an HSM
it is a plain file (0600 from the first byte, O_EXCL, synced), as a box key is
(``vir.crypto.sealedbox``); with one (``vir.crypto.hsm``) the same text is wrapped by
the token's AES key, with the file's name as additional data, and stored base64 in
``<name>.wrapped``, as an OPRF key is (``vir.crypto.keys``). Every refusal names the
file, never its content.
"""

from __future__ import annotations

import base64
import binascii
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vir.crypto import oprf
from vir.crypto.keyfile import destroy_key_file, write_new_file
from vir.domain.errors import ConfigurationError, CryptoError

if TYPE_CHECKING:
    from vir.crypto.hsm import Token

_SCALAR_HEX = re.compile(r"[0-9a-f]{64}")
_WRAPPED_SUFFIX = ".wrapped"


def wrapped_path(path: Path) -> Path:
    return path.with_name(path.name + _WRAPPED_SUFFIX)


def _aad(path: Path) -> bytes:
    # Bound into the wrapping: a wrapped polynomial copied over another run's file does
    # not unwrap.
    return f"vir {path.name}".encode("ascii")


def write_polynomial(path: Path, coefficients: Sequence[bytes], token: Token | None) -> Path:
    """A new file at ``path`` (with ``token``: its wrapped twin) holding the coefficients;
    ConfigurationError, writing nothing, when either exists. Returns the file written."""
    for existing in (path, wrapped_path(path)):
        if existing.exists() or existing.is_symlink():
            raise ConfigurationError(
                f"a polynomial already exists at {existing}; vir never overwrites it"
            )
    for value in coefficients:
        if not oprf.is_canonical_scalar(value) or value == bytes(oprf.SCALAR_BYTES):
            raise CryptoError()
    content = "".join(f"{value.hex()}\n" for value in coefficients).encode("ascii")
    target = path
    if token is not None:
        target = wrapped_path(path)
        content = base64.b64encode(token.wrap(content, aad=_aad(path))) + b"\n"
    try:
        write_new_file(target, content)
    except FileExistsError:
        raise ConfigurationError(
            f"a polynomial already exists at {target}; vir never overwrites it"
        ) from None
    return target


def read_polynomial(path: Path, t: int, token: Token | None) -> list[bytes]:
    """The t coefficients kept at ``path`` (with ``token``: unwrapped from its wrapped
    twin); ConfigurationError naming the file when it is missing, readable by others,
    of the other kind (plain with an HSM, wrapped without) or malformed."""
    target = path if token is None else wrapped_path(path)
    other = wrapped_path(path) if token is None else path
    if not (target.exists() or target.is_symlink()) and other.exists():
        kind = "wrapped by an HSM" if token is None else "not wrapped, but an HSM is configured"
        raise ConfigurationError(
            f"the polynomial at {other} is {kind}: run this step with the HSM settings "
            "(VIR_PKCS11_*) it was started with"
        )
    content = _read_private(target)
    if token is not None:
        try:
            blob = base64.b64decode(content.strip(), validate=True)
        except (binascii.Error, ValueError):
            blob = b""
        try:
            content = token.unwrap(blob, aad=_aad(path))
        except CryptoError:
            raise ConfigurationError(
                f"the polynomial at {target} does not unwrap with token '{token.label}': it "
                "was wrapped by another token, or altered"
            ) from None
    try:
        lines = content.decode("ascii").split()
    except UnicodeDecodeError:
        lines = []
    if len(lines) != t or not all(_SCALAR_HEX.fullmatch(line) for line in lines):
        raise ConfigurationError(f"the polynomial at {target} is malformed")
    coefficients = [bytes.fromhex(line) for line in lines]
    if not all(oprf.is_canonical_scalar(c) and c != bytes(oprf.SCALAR_BYTES) for c in coefficients):
        raise ConfigurationError(f"the polynomial at {target} is malformed")
    return coefficients


def destroy_polynomial(path: Path) -> bool:
    """Overwrite and unlink the file, plain and wrapped; True if something was removed."""
    removed = destroy_key_file(path)
    return destroy_key_file(wrapped_path(path)) or removed


def _read_private(path: Path) -> bytes:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(
            f"no polynomial at {path}: this holder's run finished already, or this step "
            "runs on another key holder than the one that started it"
        ) from None
    if not stat.S_ISREG(mode):
        raise ConfigurationError(f"the polynomial at {path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"the polynomial at {path} is accessible by group or others")
    try:
        return path.read_bytes()
    except OSError:
        raise ConfigurationError(f"the polynomial at {path} cannot be read") from None
