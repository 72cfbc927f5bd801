"""Which keys may be where: the index never holds an OPRF key (DESIGN.md §4).

The index's keys folder is checked by file name and by content, so that a key renamed
is refused too. The content forms are those the key holder writes (``vir.crypto.keys``,
which the index must not import; ``tests/unit/crypto/test_custody.py`` checks that they
agree): a plain file, one line of 64 hex digits (a whole key) and a second line
``share-index <i>`` (a share), and an HSM-wrapped file, one line of base64 holding the
wrap version byte, a 12-byte nonce, the AES-GCM ciphertext of a plain file's content
and a 16-byte tag. A whole key's line is 32 bytes in hex, as are the index's own keys
(checkpoint seed, webhook secrets key): those two files are allowed that form, every
other file is refused it. What cannot be told apart is a whole key copied over one of
those two files (its content is then 32 random bytes like theirs).
"""

from __future__ import annotations

import base64
import binascii
import re
import stat
from pathlib import Path

from vir.domain.errors import ConfigurationError

# Plain and HSM-wrapped OPRF key files (vir.crypto.keys), of any epoch.
_OPRF_KEY_FILE = re.compile(r"oprf-epoch-[0-9]+\.key(\.wrapped)?")
# The index's own 32-byte keys in hex (vir.crypto.signing, vir.crypto.secretbox).
_INDEX_KEY_FILES = frozenset({"checkpoint-ed25519.key", "webhook-secrets.key"})
_SCALAR_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SHARE_LINE = re.compile(r"share-index [0-9]{1,3}")
# A wrapped file (vir.crypto.hsm.Token.wrap): version 1, nonce, ciphertext of a plain
# file's content ("<64 hex>\n", then "share-index <i>\n" for a share), tag.
_WRAP_VERSION = 1
_WRAPPED_SIZES = range(1 + 12 + 65 + 16, 1 + 12 + 65 + len("share-index 255\n") + 16 + 1)
# Key files are a few hundred bytes at most: a larger file is no key, and is not read whole.
_LARGEST = 4096


def _oprf_form(content: bytes) -> str | None:
    """``whole``, ``share`` or ``wrapped`` when ``content`` has the form of an OPRF key
    file vir writes; None otherwise."""
    try:
        lines = [line.strip() for line in content.decode("ascii").strip().splitlines()]
    except UnicodeDecodeError:
        return None
    if len(lines) in (1, 2) and _SCALAR_HEX.fullmatch(lines[0]):
        if len(lines) == 1:
            return "whole"
        return "share" if _SHARE_LINE.fullmatch(lines[1]) else None
    if len(lines) != 1:
        return None
    try:
        blob = base64.b64decode(lines[0], validate=True)
    except (binascii.Error, ValueError):
        return None
    return "wrapped" if blob[:1] == bytes([_WRAP_VERSION]) and len(blob) in _WRAPPED_SIZES else None


def _refused(path: Path) -> str | None:
    """Why ``path`` in the index's keys folder may be an OPRF key, as a clause of the
    refusal (naming the file, never its content), or None."""
    if _OPRF_KEY_FILE.fullmatch(path.name):
        return "has an OPRF key file's name"
    try:
        mode = path.stat().st_mode  # follows a symlink (a mounted secret) to the file
        if not stat.S_ISREG(mode):
            return None
        with path.open("rb") as file:
            content = file.read(_LARGEST + 1)
    except OSError:
        return "cannot be read, so it cannot be checked for an OPRF key"
    form = _oprf_form(content) if len(content) <= _LARGEST else None
    if form == "share":
        return "has the content of an OPRF key share"
    if form == "wrapped":
        return "has the content of an HSM-wrapped OPRF key"
    if form == "whole" and path.name not in _INDEX_KEY_FILES:
        return (
            "has the content of a whole OPRF key, 32 bytes in hex (a copy of another key "
            "does not belong here either)"
        )
    return None


def require_no_oprf_key(keys_dir: Path) -> None:
    """Refuse to start the index beside an OPRF key, by file name or content (module
    docstring): whoever runs the index must not be able to pseudonymise (``vir dev
    init`` moves a development key to the key holder). The message names the file,
    never its content."""
    if not keys_dir.is_dir():
        return
    for path in sorted(keys_dir.iterdir()):
        why = _refused(path)
        if why is not None:
            raise ConfigurationError(
                f"the index's keys directory {keys_dir} holds {path.name}, which {why}; "
                "an OPRF key belongs to the key holder alone: move it to the key holder's "
                "keys directory (VIR_KEYHOLDER_KEYS_DIR; `vir dev init` does this for a "
                "development set-up), or out of this folder"
            )
