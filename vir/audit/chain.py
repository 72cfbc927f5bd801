"""Hash-chained audit entries.

Each entry is a canonical JSON document (sorted keys, no spaces, UTF-8). Its
chain hash is ``SHA-256(previous chain hash ‖ entry bytes)``, starting from 32
zero bytes, so editing, deleting or reordering any entry breaks every later
link. The entry bytes are also what a later Merkle tree (RFC 6962) hashes as
leaves. Entries name organisations by OIN and objects by id; they never hold a
pseudonym, BSN, contact detail or key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

GENESIS = bytes(32)
# The canonical form: sorted keys, no spaces, UTF-8 (not ASCII escapes).
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_string: Callable[[str], str] = json.encoder.encode_basestring  # how _JSON writes a string


def _optional(value: str | None) -> str:
    return "null" if value is None else _string(value)  # TypeError: not a string


def _int(value: object) -> str:
    if type(value) is int:  # not a bool (true, false), nor an IntEnum
        return int.__repr__(value)
    raise TypeError(value)


# An object id: a lower-case UUID, as vir makes them (signals, matches, consultations, ...).
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


class Outcome:
    SUCCESS = "success"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry before it is chained (NEN 7513: event, user, access point, object)."""

    event_id: str
    occurred_at: str  # RFC 3339, UTC, microseconds
    action: str
    outcome: str
    organisation: str | None = None  # OIN
    actor: str | None = None  # role or system that acted
    certificate: str | None = None  # SHA-256 fingerprint of the client certificate
    objects: Mapping[str, str | int] = field(default_factory=dict)
    reason: str | None = None  # a code from a fixed list, never free text from a caller
    role: str | None = None  # the certificate's role: system, coordinator, privacy_officer
    purpose: str | None = None  # why, where a purpose applies (a code from a fixed list)

    def encode(self) -> bytes:
        """The canonical JSON document: what is hashed into the chain and the Merkle tree."""
        try:
            return self._written_out()
        except TypeError:  # a value that is not a string, an int or None: the encoder's
            return _JSON.encode(self._document()).encode("utf-8")

    def _written_out(self) -> bytes:
        """``encode`` without the encoder, for the values entries hold (strings, ints and
        None), written as the encoder writes them: the same string escaping, ints in
        decimal, keys in sorted order. An entry is encoded on every append, and this
        costs a fraction of the encoder's walk over a document. Raises TypeError for any
        other value."""
        objects = ",".join(
            [
                f"{_string(k)}:{_string(v) if type(v) is str else _int(v)}"
                for k, v in sorted(self.objects.items())
            ]
        )
        text = (
            f'{{"action":{_optional(self.action)},"actor":{_optional(self.actor)},'
            f'"certificate":{_optional(self.certificate)},"event_id":{_optional(self.event_id)},'
            f'"objects":{{{objects}}},"occurred_at":{_optional(self.occurred_at)},'
            f'"organisation":{_optional(self.organisation)},"outcome":{_optional(self.outcome)}'
        )
        # Added later: present only when set, so earlier entries keep their exact bytes.
        if self.purpose is not None:
            text += f',"purpose":{_string(self.purpose)}'
        text += f',"reason":{_optional(self.reason)}'
        if self.role is not None:
            text += f',"role":{_string(self.role)}'
        return (text + "}").encode("utf-8")

    def _document(self) -> dict[str, object]:
        document: dict[str, object] = {
            "action": self.action,
            "actor": self.actor,
            "certificate": self.certificate,
            "event_id": self.event_id,
            "objects": dict(sorted(self.objects.items())),
            "occurred_at": self.occurred_at,
            "organisation": self.organisation,
            "outcome": self.outcome,
            "reason": self.reason,
        }
        # Added later: present only when set, so earlier entries keep their exact bytes.
        if self.role is not None:
            document["role"] = self.role
        if self.purpose is not None:
            document["purpose"] = self.purpose
        return document

    @property
    def refs(self) -> list[str]:
        """The object ids the entry names, sorted (the store indexes entries by them).
        Counts, dates and codes among the objects are not ids."""
        return sorted({v for v in self.objects.values() if isinstance(v, str) and _ID.match(v)})

    @classmethod
    def decode(cls, body: bytes) -> AuditEvent:
        doc = json.loads(body)
        return cls(
            event_id=doc["event_id"],
            occurred_at=doc["occurred_at"],
            action=doc["action"],
            outcome=doc["outcome"],
            organisation=doc["organisation"],
            actor=doc["actor"],
            certificate=doc["certificate"],
            objects=doc["objects"],
            reason=doc["reason"],
            role=doc.get("role"),
            purpose=doc.get("purpose"),
        )


def chain_hash(previous: bytes, body: bytes) -> bytes:
    return hashlib.sha256(previous + body).digest()


@dataclass(frozen=True)
class StoredEntry:
    seq: int
    body: bytes
    prev_hash: bytes
    entry_hash: bytes
    # The indexed columns kept beside the body; they must agree with it.
    columns: Mapping[str, str | list[str] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainReport:
    entries: int
    first_broken: int | None = None
    problem: str | None = None
    head: bytes = GENESIS

    @property
    def intact(self) -> bool:
        return self.first_broken is None


def verify_chain(
    entries: Iterable[StoredEntry], *, previous: bytes = GENESIS, first: int = 1
) -> ChainReport:
    """Walk entries in sequence order; report the first one that does not fit. From the
    start of the log, or from entry ``first`` on, linking to ``previous`` (the chain
    hash of entry ``first - 1``)."""
    expected_seq = first
    count = 0
    for entry in entries:
        count += 1
        problem = None
        if entry.seq != expected_seq:
            problem = f"sequence number {entry.seq} where {expected_seq} was expected"
        elif entry.prev_hash != previous:
            problem = "does not link to the previous entry"
        elif chain_hash(previous, entry.body) != entry.entry_hash:
            problem = "content does not match its hash"
        else:
            try:
                event = AuditEvent.decode(entry.body)
            except (ValueError, KeyError, TypeError):
                problem = "content is not a valid audit entry"
            else:
                for name, value in entry.columns.items():
                    if getattr(event, name) != value:
                        problem = f"column {name!r} differs from the hashed content"
                        break
        if problem is not None:
            return ChainReport(count, first_broken=entry.seq, problem=problem, head=previous)
        previous = entry.entry_hash
        expected_seq += 1
    return ChainReport(count, head=previous)
