"""What ``vir-client sync`` remembers from one run to the next: which rows the index
holds exactly as the file has them, so that a nightly sync neither pseudonymises nor
sends them again (docs/import.md, "What a sync remembers").

Pseudonymising every row every night cost the key holders one evaluation per identity
per row (a case load of 40,000 rows is about 100,000 elements: the default hourly
quota of the organisation) and told them each night how large the case load is. A row
that went through is remembered by a tag: an HMAC, under a key of the client's own,
of the row's identities and other columns together with what the index answered for
it (the signal's id and removal date) and the contact details it holds. The next sync
lists the organisation's active signals anyway (to find what to withdraw); a row whose
tag, recomputed from the file and that listing, is the one remembered is the same row
on the same signal with the same contact details and removal date: it is counted
``unchanged`` without a request. Anything else (a new row, another identity, other
contact details, a signal withdrawn or changed elsewhere, a memory made under another
key) goes through the key holder and the index as before.

The file (``FILE.csv.vir-sync``, or ``--memory``) holds each row's ``local_ref`` and
tag, never an identity: the tag is keyed, so trying every BSN against it needs the key,
which is derived from the organisation's private key file (HKDF-SHA256) and never
written anywhere. A new certificate's key makes the old tags useless: that night's sync
checks every row, as a first one does. The file is created readable by its owner only,
appended to (and flushed) as rows go through, and rewritten with the rows of the file
once a sync went through the whole file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from vir.client.connection import ClientError
from vir.domain import strict_json
from vir.domain.errors import InputError
from vir.domain.signals import Professional

SUFFIX = ".vir-sync"
VERSION = 1
PURPOSE = "vir-client sync memory v1"
TAG_BYTES = 16
MAX_LINE = 4096  # a line of the memory is about 100 bytes: anything longer is not one
_PROFESSIONAL = ("name", "email", "phone", "function")


class NotAMemory(ClientError):
    """Another kind of file is where the memory should be: it is left alone."""


def held(item: Mapping[str, Any]) -> bytes:
    """What the index holds of an active signal as ``GET /v1/signals`` lists it (or as
    a registration's answer and the row give it): its id, removal date and contact
    details, in 16 bytes."""
    content = [str(item.get("signal_id")), str(item.get("remove_on")), _contact(item)]
    return hashlib.sha256(json.dumps(content).encode()).digest()[:16]


def _contact(item: Mapping[str, Any]) -> list[str | None]:
    """The contact details as the index stores them (the name normalised as
    ``Professional`` does: NFC, one space), so that a row's match the listing's."""
    given = item.get("professional") or {}
    values = [given.get(key) or None for key in _PROFESSIONAL]
    if not all(value is None or isinstance(value, str) for value in values):
        return values
    try:
        return list(Professional(*values).as_dict().values())  # type: ignore[arg-type]
    except (InputError, TypeError):
        return values  # stored under earlier rules, or not a row's: compared as they are


class SyncMemory:
    """The rows a sync found the index holding as the file has them (module docstring).

    ``known``: the tags read from the file; ``kept``: the tags this run keeps (rows
    skipped as unchanged, and rows the index accepted); only ``kept`` is written back
    once the run went through the whole file."""

    def __init__(self, path: Path, key: bytes, known: dict[str, str]) -> None:
        self.path = path
        self._key = key
        self.known = known
        self.kept: dict[str, str] = {}
        self._handle: TextIO | None = None

    @classmethod
    def open(cls, path: Path, key: bytes, *, forget: bool = False) -> SyncMemory:
        """The memory at ``path`` (none yet: empty). ``forget``: keep nothing of it (every
        row is checked at the index), but it must still be a memory file to be replaced."""
        known = _read(path, _key_id(key))
        return cls(path, key, {} if forget else known)

    def tag(self, row_content: bytes, stored: bytes) -> str:
        """The tag of a row (``Row.content``, its identities included) on a signal the
        index holds as ``stored`` (``held``)."""
        mac = hmac.new(self._key, row_content + b"\x00" + stored, hashlib.sha256)
        return mac.hexdigest()[: 2 * TAG_BYTES]

    def unchanged(self, local_ref: str, row_content: bytes, stored: bytes | None) -> bool:
        """Whether the index holds this row as it is: it need not be sent."""
        if stored is None:
            return False
        tag = self.known.get(local_ref)
        return tag is not None and hmac.compare_digest(tag, self.tag(row_content, stored))

    def keep(self, local_ref: str, tag: str) -> None:
        """Remember a row for the next run; written through (a crash loses no more than
        the rows of the request under way, which are then checked again)."""
        self.kept[local_ref] = tag
        if self.known.get(local_ref) == tag:
            return  # already in the file
        handle = self._open()
        handle.write(json.dumps({"local_ref": local_ref, "tag": tag}) + "\n")

    def keep_known(self, local_ref: str) -> None:
        """A row done in an earlier, interrupted run: its tag was written then."""
        tag = self.known.get(local_ref)
        if tag is not None:
            self.kept[local_ref] = tag

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self.flush()
            self._handle.close()
            self._handle = None

    def rewrite(self) -> None:
        """After a run through the whole file: the file holds this run's rows only (rows
        that left the file, or were refused, are forgotten)."""
        self.close()
        temporary = self.path.with_name(self.path.name + ".new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(_header(self._key))
            for local_ref, tag in self.kept.items():
                handle.write(json.dumps({"local_ref": local_ref, "tag": tag}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def _open(self) -> TextIO:
        if self._handle is None:
            exists = self.path.exists() and _read_header(self.path) == _key_id(self._key)
            descriptor = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | (os.O_APPEND if exists else os.O_TRUNC),
                0o600,
            )
            self._handle = os.fdopen(descriptor, "w", encoding="utf-8")
            if not exists:
                self._handle.write(_header(self._key))
        return self._handle


def _key_id(key: bytes) -> str:
    return hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:16]


def _header(key: bytes) -> str:
    return json.dumps({"vir_client_sync_memory": VERSION, "key": _key_id(key)}) + "\n"


def _read_header(path: Path) -> str | None:
    """The key id of the memory at ``path``; None when it is another version's, or
    empty. NotAMemory when the file is something else."""
    with path.open("rb") as handle:
        line = handle.readline(MAX_LINE)
    if not line:
        return None  # created, and the process died before the header was written
    try:
        header = strict_json.loads(line.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict) or "vir_client_sync_memory" not in header:
        raise NotAMemory(
            f"{path} is not a vir-client sync memory: give another --memory, or delete it"
        )
    if header.get("vir_client_sync_memory") != VERSION or not isinstance(header.get("key"), str):
        return None
    return str(header["key"])


def _read(path: Path, key_id: str) -> dict[str, str]:
    """The tags of the memory at ``path``: none when there is none yet, or when it was
    made under another key or version. A line that does not parse (the last one, cut
    short by a crash) is left out: that row is checked at the index again."""
    if not path.exists():
        return {}
    if _read_header(path) != key_id:
        return {}
    known: dict[str, str] = {}
    with path.open("rb") as handle:
        handle.readline(MAX_LINE)
        while line := handle.readline(MAX_LINE):
            try:
                entry = strict_json.loads(line.decode("utf-8"))
                local_ref, tag = entry["local_ref"], entry["tag"]
            except (ValueError, UnicodeDecodeError, KeyError, TypeError):
                continue
            if isinstance(local_ref, str) and isinstance(tag, str):
                known[local_ref] = tag
    return known
