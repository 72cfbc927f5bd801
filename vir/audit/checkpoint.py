"""Signed tree heads in the C2SP formats: tlog-checkpoint bodies inside signed notes.

A checkpoint (https://c2sp.org/tlog-checkpoint) is the note text::

    <origin>
    <tree size in decimal>
    <base64 RFC 6962 root hash>
    [extension lines]

A signed note (https://c2sp.org/signed-note) is that text, a blank line, and one or
more lines ``— <key name> <base64(4-byte key hash ‖ signature)>``. Ed25519 key hashes
and verifier keys (``<name>+<hex key hash>+<base64(0x01 ‖ public key)>``) follow
golang.org/x/mod/sumdb/note, so Go witnesses and verifiers can check our checkpoints.

This module only formats, parses and matches; the Ed25519 check itself is passed in
(``verify_note``), so ``vir.audit`` stays free of crypto libraries. Parsing is strict:
every accepted input is exactly what ``render``/``body`` would produce for the value it
parses to, so a checkpoint has one byte form and ``parse(render(x)) == x``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

HASH_SIZE = 32
KEY_HASH_SIZE = 4
ED25519_PUBLIC_KEY_SIZE = 32
ALG_ED25519 = 0x01
# The spec asks verifiers to cap signatures and to accept at least 16; Go's note package
# accepts 100. A cap stops a hostile note from costing unbounded parsing work.
MAX_SIGNATURES = 100
# Tree sizes are uint64 in every other implementation; a larger one could not interoperate.
MAX_TREE_SIZE = 2**64 - 1

_SIGNATURE_PREFIX = "\u2014 "  # EM DASH, SPACE: exactly as the signed-note spec writes it
_TREE_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_KEY_HASH_HEX = re.compile(r"[0-9a-f]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")  # every C0 control except newline


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Standard, padded base64 in its one canonical spelling, or ValueError naming ``what``."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise ValueError(f"{what} is not valid base64") from None
    # Re-encoding rejects spare non-zero bits and other alternative spellings, so a
    # signed object cannot be altered in transit without changing its decoded value.
    if _b64encode(data) != text:
        raise ValueError(f"{what} is not canonical base64")
    return data


def is_valid_key_name(name: str) -> bool:
    """A signed-note key name: non-empty, no Unicode space, no '+', no control character."""
    if not name or "+" in name or _CONTROL.search(name):
        return False
    if any(ch.isspace() for ch in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot be written as UTF-8
        return False
    return True


def _check_line(value: str, what: str) -> None:
    """A value that becomes one line of note text."""
    if "\n" in value or _CONTROL.search(value):
        raise ValueError(f"{what} contains a newline or control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode text") from None


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: who (origin), how many leaves (size) and what (RFC 6962 root)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Validating on construction means body() never emits text parse_body refuses.
        if not self.origin:
            raise ValueError("checkpoint origin is empty")
        _check_line(self.origin, "checkpoint origin")
        if self.origin.strip() != self.origin:
            raise ValueError("checkpoint origin has leading or trailing whitespace")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise ValueError("checkpoint tree size is not an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError("checkpoint tree size is outside 0 .. 2**64 - 1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash is not {HASH_SIZE} bytes")
        for extension in self.extensions:
            if not extension:
                raise ValueError("checkpoint extension line is empty")
            _check_line(extension, "checkpoint extension line")

    def body(self) -> bytes:
        """The note text: origin, size, root hash and extensions, each ending in a newline."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def parse_body(cls, text: bytes) -> Checkpoint:
        """Parse note text strictly; ValueError says which part is wrong."""
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("checkpoint is not valid UTF-8") from None
        if not decoded.endswith("\n"):
            raise ValueError("checkpoint does not end with a newline")
        if _CONTROL.search(decoded):
            raise ValueError("checkpoint contains a control character")
        lines = decoded[:-1].split("\n")
        if len(lines) < 3:
            raise ValueError("checkpoint has fewer than three lines")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise ValueError("checkpoint origin is empty")
        if origin.strip() != origin:
            raise ValueError("checkpoint origin has leading or trailing whitespace")
        # A regular expression, not int(): int() also takes "+5", " 5", "5_0" and other
        # spellings, and one tree size must have one text form.
        if not _TREE_SIZE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
            raise ValueError("checkpoint tree size is not a canonical decimal in 0 .. 2**64 - 1")
        root_hash = _b64decode(root_text, "checkpoint root hash")
        if len(root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash is not {HASH_SIZE} bytes")
        if any(not line for line in extensions):
            raise ValueError("checkpoint extension line is empty")
        return cls(origin, int(size_text), root_hash, tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key hash, and the raw signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError("signature key name is empty or contains a space, '+' or control")
        if not isinstance(self.key_hash, bytes) or len(self.key_hash) != KEY_HASH_SIZE:
            raise ValueError(f"signature key hash is not {KEY_HASH_SIZE} bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise ValueError("signature is empty")

    def render(self) -> str:
        return f"{_SIGNATURE_PREFIX}{self.name} {_b64encode(self.key_hash + self.signature)}\n"

    @classmethod
    def parse_line(cls, line: str) -> NoteSignature:
        """Parse one signature line without its newline."""
        if not line.startswith(_SIGNATURE_PREFIX):
            raise ValueError("signature line does not start with an em dash and a space")
        name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
        if not space or not encoded:
            raise ValueError("signature line has no signature after the key name")
        if not is_valid_key_name(name):
            raise ValueError("signature line has an invalid key name")
        raw = _b64decode(encoded, "signature")
        if len(raw) <= KEY_HASH_SIZE:
            raise ValueError("signature is too short to hold a key hash and a signature")
        return cls(name, raw[:KEY_HASH_SIZE], raw[KEY_HASH_SIZE:])


def _check_note_text(text: bytes) -> None:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("note text is not valid UTF-8") from None
    if not decoded.endswith("\n"):
        raise ValueError("note text does not end with a newline")
    if _CONTROL.search(decoded):
        raise ValueError("note text contains a control character other than newline")


@dataclass(frozen=True)
class SignedNote:
    """Note text (ending in a newline) and its signatures, in the order they appear."""

    text: bytes
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.text, bytes):
            raise ValueError("note text is not bytes")
        _check_note_text(self.text)
        if not self.signatures:
            raise ValueError("signed note has no signatures")
        if len(self.signatures) > MAX_SIGNATURES:
            raise ValueError(f"signed note has more than {MAX_SIGNATURES} signatures")

    def render(self) -> bytes:
        """Text, a blank line, then one line per signature."""
        lines = "".join(signature.render() for signature in self.signatures)
        return self.text + b"\n" + lines.encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> SignedNote:
        """Parse a signed note strictly (signatures are not checked; see ``verify_note``)."""
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("signed note is not valid UTF-8") from None
        if _CONTROL.search(decoded):
            raise ValueError("signed note contains a control character other than newline")
        # The spec splits at the *last* blank line: the text may hold blank lines, a
        # signature line never does.
        split = decoded.rfind("\n\n")
        if split < 0:
            raise ValueError("signed note has no blank line before its signatures")
        text, block = decoded[: split + 1], decoded[split + 2 :]
        if not block:
            raise ValueError("signed note has no signature lines")
        if not block.endswith("\n"):
            raise ValueError("signed note does not end with a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise ValueError(f"signed note has more than {MAX_SIGNATURES} signatures")
        signatures = tuple(NoteSignature.parse_line(line) for line in lines)
        return cls(text.encode("utf-8"), signatures)


def ed25519_key_hash(name: str, public_key: bytes) -> bytes:
    """The signed-note key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]."""
    if not is_valid_key_name(name):
        raise ValueError("key name is empty or contains a space, '+' or control character")
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
        raise ValueError(f"Ed25519 public key is not {ED25519_PUBLIC_KEY_SIZE} bytes")
    material = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    return hashlib.sha256(material).digest()[:KEY_HASH_SIZE]


def format_verifier_key(name: str, public_key: bytes) -> str:
    """``<name>+<8 hex key hash>+<base64(0x01 ‖ public key)>``, as sumdb/note writes it."""
    key_hash = ed25519_key_hash(name, public_key)
    return f"{name}+{key_hash.hex()}+{_b64encode(bytes([ALG_ED25519]) + public_key)}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """Return (name, 32-byte Ed25519 public key); ValueError on any other form or a bad hash."""
    # The name holds no '+', so the first two split it; base64 may hold more of them.
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise ValueError("verifier key is not <name>+<key hash>+<key>")
    name, hash_hex, encoded = parts
    if not is_valid_key_name(name):
        raise ValueError("verifier key has an invalid key name")
    if not _KEY_HASH_HEX.fullmatch(hash_hex):
        raise ValueError("verifier key hash is not 8 lowercase hex digits")
    key = _b64decode(encoded, "verifier key")
    if len(key) != 1 + ED25519_PUBLIC_KEY_SIZE:
        raise ValueError("verifier key is not an algorithm byte and a 32-byte Ed25519 key")
    if key[0] != ALG_ED25519:
        raise ValueError("verifier key algorithm is not Ed25519 (0x01)")
    public_key = key[1:]
    if ed25519_key_hash(name, public_key).hex() != hash_hex:
        raise ValueError("verifier key hash does not match its name and key")
    return name, public_key


def verify_note(
    note: SignedNote,
    name: str,
    public_key: bytes,
    verify: Callable[[bytes, bytes, bytes], bool],
) -> bool:
    """True when ``note`` carries a signature by this key and every such signature verifies.

    ``verify(public_key, signature, message)`` is the Ed25519 check (vir.crypto.signing's
    ``ed25519_verify``). Lines from other keys are ignored, as the spec requires: that is
    what lets witnesses add cosignatures. A line that matches both name and key hash but
    does not verify rejects the whole note (the spec's SHOULD), rather than being skipped
    because another line for the same key happens to verify.
    """
    key_hash = ed25519_key_hash(name, public_key)
    matching = [s for s in note.signatures if s.name == name and s.key_hash == key_hash]
    if not matching:
        return False
    return all(verify(public_key, s.signature, note.text) for s in matching)
