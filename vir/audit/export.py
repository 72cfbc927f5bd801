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

from vir.audit import merkle
from vir.audit.chain import GENESIS, chain_hash
from vir.audit.checkpoint import Checkpoint, SignedNote, parse_verifier_key, verify_note

FORMAT = "vir-audit-export/1"
Verify = Callable[[bytes, bytes, bytes], bool]


@dataclass(frozen=True)
class ExportedEntry:
    seq: int
    chain: bytes
    body: bytes


def render(
    origin: str, verifier_key: str, signed_checkpoint: bytes, entries: Iterable[ExportedEntry]
) -> Iterator[bytes]:
    """The export, line by line (header first)."""
    note = SignedNote.parse(signed_checkpoint)
    size = Checkpoint.parse_body(note.text).size
    header = {
        "format": FORMAT,
        "origin": origin,
        "size": size,
        "verifier_key": verifier_key,
        "checkpoint": signed_checkpoint.decode("utf-8"),
    }
    yield json.dumps(header, sort_keys=True).encode() + b"\n"
    for entry in entries:
        yield b"%d %s %s\n" % (entry.seq, entry.chain.hex().encode(), entry.body)


@dataclass(frozen=True)
class ExportReport:
    entries: int
    ok: bool
    first_bad_entry: int | None = None
    problem: str | None = None
    root: bytes | None = None
    verifier_key: str | None = None


def verify(
    lines: Iterable[bytes], ed25519_verify: Verify, trusted_verifier_key: str | None = None
) -> ExportReport:
    """Check an export. ``trusted_verifier_key`` should come from outside the file;
    without it the key named in the header is used (and reported, to compare)."""
    iterator = iter(lines)
    try:
        header = json.loads(next(iterator))
        if header.get("format") != FORMAT:
            return ExportReport(0, False, problem="not a vir-audit-export/1 file")
        note = SignedNote.parse(header["checkpoint"].encode("utf-8"))
        checkpoint = Checkpoint.parse_body(note.text)
        key_text = trusted_verifier_key or header["verifier_key"]
        name, public_key = parse_verifier_key(key_text)
    except (StopIteration, ValueError, KeyError, TypeError, AttributeError) as error:
        return ExportReport(0, False, problem=f"unreadable header: {error}")

    def fail(count: int, seq: int | None, problem: str) -> ExportReport:
        return ExportReport(count, False, seq, problem, verifier_key=key_text)

    if not verify_note(note, name, public_key, ed25519_verify):
        return fail(0, None, "the checkpoint's signature does not verify with the log's key")
    leaves: list[bytes] = []
    previous = GENESIS
    for expected, line in enumerate(iterator, start=1):
        parts = line.rstrip(b"\n").split(b" ", 2)
        if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) != expected:
            return fail(expected - 1, expected, f"entry {expected} is missing or out of place")
        try:
            chain = bytes.fromhex(parts[1].decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            chain = b""
        body = parts[2]
        if chain != chain_hash(previous, body):
            return fail(expected - 1, expected, f"entry {expected} does not fit the hash chain")
        leaves.append(merkle.leaf_hash(body))
        previous = chain
    if len(leaves) != checkpoint.size:
        return fail(
            len(leaves),
            len(leaves) + 1 if len(leaves) < checkpoint.size else None,
            f"the file holds {len(leaves)} entries, the checkpoint {checkpoint.size}",
        )
    root = merkle.root(leaves)
    if root != checkpoint.root_hash:
        return fail(
            len(leaves), None, "the entries do not match the signed checkpoint's Merkle root"
        )
    return ExportReport(len(leaves), True, root=root, verifier_key=key_text)
