"""A portable audit export, and its verification without database or service.

Format ``vir-audit-export/1``, UTF-8 text, one record per line:

    line 1   a JSON header: {"format", "origin", "size", "verifier_key", "checkpoint"}
             where "checkpoint" is the C2SP signed note (checkpoint.py) over the first
             "size" entries;
    line k+1 "<seq> <chain hash, 64 hex> <entry>" for entry k = 1..size, where <entry>
             is the canonical JSON the log hashed (no newline inside).

Verification recomputes, entry by entry, the hash chain (``chain.chain_hash``) and
the Merkle leaf hashes (``merkle.leaf_hash``); the first entry whose number, chain
hash or content does not fit is named. Then the Merkle root over all entries must
equal the signed checkpoint's root, and the checkpoint's signature must verify
with the log's public key. An edit that is made consistent throughout (every
later chain hash recomputed) still fails the signed root, which only the key
holder can produce.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from vir.audit import merkle
from vir.audit.chain import GENESIS, chain_hash
from vir.audit.checkpoint import (
    Checkpoint,
    SignedNote,
    ed25519_key_hash,
    parse_verifier_key,
    verify_note,
)
from vir.domain import strict_json

FORMAT = "vir-audit-export/1"
# No line of an export comes near this (an entry is a few hundred bytes; the header a
# signed note): a reader holds one line at a time and no more than this of it.
MAX_LINE_BYTES = 1 << 20
Verify = Callable[[bytes, bytes, bytes], bool]


@dataclass(frozen=True)
class ExportedEntry:
    seq: int
    chain: bytes
    body: bytes


def render(
    origin: str, verifier_key: str, signed_checkpoint: bytes, entries: Iterable[ExportedEntry]
) -> Iterator[bytes]:
    """The export, line by line (header first).

    The checkpoint keeps only the signature of ``verifier_key``: a cosignature by an
    earlier key (after a rotation) names a key the file cannot carry in a checkable
    way, and every byte of the file must be checkable.
    """
    note = SignedNote.parse(signed_checkpoint)
    name, public_key = parse_verifier_key(verifier_key)
    key_hash = ed25519_key_hash(name, public_key)
    own = tuple(s for s in note.signatures if s.name == name and s.key_hash == key_hash)
    if len(own) != 1:
        raise ValueError("the checkpoint carries no single signature by the export's key")
    note = SignedNote(note.text, own)
    size = Checkpoint.parse_body(note.text).size
    yield _header_line(origin, size, verifier_key, note.render().decode("utf-8"))
    for entry in entries:
        yield _entry_line(entry.seq, entry.chain, entry.body)


def _header_line(origin: str, size: int, verifier_key: str, checkpoint: str) -> bytes:
    header = {
        "format": FORMAT,
        "origin": origin,
        "size": size,
        "verifier_key": verifier_key,
        "checkpoint": checkpoint,
    }
    return json.dumps(header, sort_keys=True).encode() + b"\n"


def _entry_line(seq: int, chain: bytes, body: bytes) -> bytes:
    return b"%d %s %s\n" % (seq, chain.hex().encode(), body)


@dataclass(frozen=True)
class ExportReport:
    entries: int
    ok: bool
    first_bad_entry: int | None = None
    problem: str | None = None
    root: bytes | None = None
    verifier_key: str | None = None


@dataclass(frozen=True)
class _Header:
    checkpoint: Checkpoint
    note: SignedNote
    verifier_key: str


class _Refused(ValueError):
    """The whole problem with a file's first line, as the report states it."""


def _read_header(line: bytes, trusted_verifier_key: str) -> _Header:
    """The header, accepted only in the one form ``render`` writes (``_Refused``, with
    the whole problem, otherwise)."""
    try:
        header = strict_json.loads(line)
    except strict_json.NotJson as error:
        raise _Refused(f"not a vir-audit-export/1 file: its first line is {error}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _Refused("not a vir-audit-export/1 file: its header names no such format")
    if set(header) != {"format", "origin", "size", "verifier_key", "checkpoint"}:
        raise _Refused("unreadable header: it has other fields than the format's")
    origin, size, key_text, text = (
        header["origin"],
        header["size"],
        header["verifier_key"],
        header["checkpoint"],
    )
    if not (
        isinstance(origin, str)
        and type(size) is int
        and isinstance(key_text, str)
        and isinstance(text, str)
    ):
        raise _Refused("unreadable header: a field has the wrong type")
    if line != _header_line(origin, size, key_text, text):
        raise _Refused("unreadable header: it is not in its canonical form")
    try:
        note = SignedNote.parse(text.encode("utf-8"))
        checkpoint = Checkpoint.parse_body(note.text)
    except ValueError as error:
        raise _Refused(f"unreadable checkpoint in the header: {error}") from None
    if note.render() != text.encode("utf-8"):
        raise _Refused("unreadable checkpoint in the header: it is not in its canonical form")
    if checkpoint.origin != origin or checkpoint.size != size:
        raise _Refused("inconsistent header: its origin or size differs from its checkpoint's")
    if key_text != trusted_verifier_key:
        raise _Refused("wrong key: the export names another key than the one given to verify with")
    return _Header(checkpoint, note, key_text)


def read_lines(handle: BinaryIO) -> Iterator[bytes]:
    """The lines of an export file, each read no further than ``MAX_LINE_BYTES`` + 1
    bytes (``verify`` refuses a line that long): a file without newlines, or
    ``/dev/zero``, is never read whole into memory."""
    while line := handle.readline(MAX_LINE_BYTES + 1):
        yield line


def verify(
    lines: Iterable[bytes], ed25519_verify: Verify, trusted_verifier_key: str
) -> ExportReport:
    """Check an export with ``trusted_verifier_key``, the log's published key (as ``vir
    audit key`` prints it). It must come from outside the file: the key a file names
    proves nothing, since whoever rewrites a log can sign it with a fresh key of their
    own. A malformed ``trusted_verifier_key`` is a ValueError (a mistake of the caller's,
    not a property of the file).

    Exactly one encoding of an export verifies: the header as ``render`` writes it
    (canonical JSON, canonical signed note with one signature, by the named key),
    then for entry k the line ``k``, a space, the chain hash in lowercase hex, a
    space, the entry, a newline; nothing after the last entry. Memory stays flat:
    the Merkle root is folded as the entries stream by (``merkle.CompactRange``).
    """
    name, public_key = parse_verifier_key(trusted_verifier_key)
    iterator = iter(lines)
    first = next(iterator, None)
    if not first:
        return ExportReport(0, False, problem="the file is empty: an export starts with a header")
    if len(first) > MAX_LINE_BYTES:
        return ExportReport(
            0, False, problem=f"its first line is longer than {MAX_LINE_BYTES} bytes: no header"
        )
    try:
        header = _read_header(first, trusted_verifier_key)
    except _Refused as error:
        return ExportReport(0, False, problem=str(error))
    key_text = header.verifier_key

    def fail(count: int, seq: int | None, problem: str) -> ExportReport:
        return ExportReport(count, False, seq, problem, verifier_key=key_text)

    if len(header.note.signatures) != 1 or not verify_note(
        header.note, name, public_key, ed25519_verify
    ):
        return fail(0, None, "the checkpoint's signature does not verify with the log's key")
    size = header.checkpoint.size
    tree = merkle.CompactRange()
    previous = GENESIS
    for expected, line in enumerate(iterator, start=1):
        if len(line) > MAX_LINE_BYTES:
            return fail(
                expected - 1, expected, f"entry {expected} is longer than {MAX_LINE_BYTES} bytes"
            )
        if line == b"\n":
            if expected > size:
                return fail(
                    expected - 1,
                    None,
                    f"the file ends wrongly: an empty line after its last entry ({size})",
                )
            return fail(expected - 1, expected, f"an empty line where entry {expected} belongs")
        parts = line.split(b" ", 2)
        body = parts[2].removesuffix(b"\n") if len(parts) == 3 else b""
        chain = chain_hash(previous, body)
        proper = _entry_line(expected, chain, body)
        if len(parts) != 3 or line != proper:
            if line == proper[:-1]:
                # Only a file's last line can lack it: the newline removed.
                return fail(
                    expected - 1,
                    expected,
                    f"the file ends wrongly: no newline after entry {expected}, its last line",
                )
            if len(parts) == 3 and parts[0] == b"%d" % expected:
                return fail(expected - 1, expected, f"entry {expected} does not fit the hash chain")
            return fail(expected - 1, expected, f"entry {expected} is missing or out of place")
        tree.append(merkle.leaf_hash(body))
        previous = chain
    count = tree.size
    if count != size:
        return fail(
            count,
            count + 1 if count < size else None,
            f"the file holds {count} entries, the checkpoint {size}",
        )
    root = tree.root()
    if root != header.checkpoint.root_hash:
        return fail(count, None, "the entries do not match the signed checkpoint's Merkle root")
    return ExportReport(count, True, root=root, verifier_key=key_text)
