"""Signed checkpoints over the audit log, and portable exports.

A checkpoint covers every entry integrated when it is made. Before signing, the
stored log must still agree with the newest checkpoint already signed (same
entries, same Merkle root for that prefix): the service never signs two
inconsistent checkpoints, so an edit or truncation of the log stops checkpointing
instead of being papered over.

Checking the whole log takes time in proportion to its length, so it is done in a
read transaction, streaming: the chain is walked entry by entry and the Merkle root
grown in a compact range (O(log n) memory). Only signing and storing take a write
transaction, a short one, which first makes sure the newest checkpoint is still the
one the check compared against (another process may have signed meanwhile; then the
check runs again). An export streams its entries the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import takewhile

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.audit import merkle
from vir.audit.chain import StoredEntry, verify_chain
from vir.audit.checkpoint import Checkpoint
from vir.audit.export import ExportedEntry, render
from vir.crypto.signing import CheckpointSigner
from vir.domain.clock import Clock
from vir.domain.errors import InputError, LogInconsistent, NotFound
from vir.store.audit_log import stored_entries
from vir.store.db import Database
from vir.store.tables import CheckpointRow


@dataclass(frozen=True)
class Signed:
    size: int
    root_hash: bytes
    note: bytes


class TransparencyLog:
    def __init__(self, db: Database, signer: CheckpointSigner, clock: Clock) -> None:
        self._db = db
        self._signer = signer
        self._clock = clock

    @property
    def verifier_key(self) -> str:
        return self._signer.verifier_key()

    def checkpoint(self) -> Signed:
        """The checkpoint over all entries now, signing a new one if the log has grown."""
        self._db.integrate()
        for _attempt in range(_ATTEMPTS):
            checked = self._check()
            with self._db.write(exclusive=True) as session:
                latest = _latest(session)
                if _seen(latest) != checked.against:
                    continue  # signed by another process meanwhile: check against that one
                return self._sign(session, latest, checked, self._clock())
        raise LogInconsistent("checkpoints were signed by another process throughout; try again")

    def latest(self) -> Signed | None:
        """The newest stored checkpoint, without signing anything."""
        with self._db.read() as session:
            row = session.scalars(
                select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
            ).first()
        return Signed(row.size, row.root_hash, row.note.encode("utf-8")) if row else None

    def inclusion(self, seq: int, size: int | None = None) -> tuple[Signed, bytes, list[bytes]]:
        """Proof that entry ``seq`` is in the tree of a signed checkpoint (the newest, or the
        one of ``size``): (checkpoint, leaf hash, audit path)."""
        signed, leaves = self._signed_tree(size)
        if not 1 <= seq <= signed.size:
            raise InputError("seq", f"no entry {seq} in the tree of size {signed.size}")
        return signed, leaves[seq - 1], merkle.inclusion_proof(leaves[: signed.size], seq - 1)

    def consistency(self, old_size: int, size: int | None = None) -> tuple[Signed, list[bytes]]:
        """Proof that the tree of ``old_size`` is a prefix of a signed checkpoint's tree."""
        signed, leaves = self._signed_tree(size)
        if not 1 <= old_size <= signed.size:
            raise InputError("from", f"must be between 1 and {signed.size}")
        return signed, merkle.consistency_proof(leaves[: signed.size], old_size)

    def _signed_tree(self, size: int | None) -> tuple[Signed, list[bytes]]:
        with self._db.read() as session:
            query = select(CheckpointRow)
            query = (
                query.where(CheckpointRow.size == size)
                if size is not None
                else query.order_by(CheckpointRow.size.desc()).limit(1)
            )
            row = session.scalars(query).first()
            if row is None:
                raise NotFound("no signed checkpoint of that size")
            leaves = [
                merkle.leaf_hash(e.body) for e in stored_entries(session) if e.seq <= row.size
            ]
        if merkle.root(leaves) != row.root_hash:
            raise LogInconsistent(f"the stored log no longer matches checkpoint {row.size}")
        return Signed(row.size, row.root_hash, row.note.encode("utf-8")), leaves

    def export(self) -> Iterator[bytes]:
        """Sign (if needed) and export every entry up to that checkpoint, line by line,
        read as they are written out."""
        signed = self.checkpoint()
        with self._db.read() as session:
            entries = (
                ExportedEntry(e.seq, e.entry_hash, e.body)
                for e in takewhile(lambda e: e.seq <= signed.size, stored_entries(session))
            )
            yield from render(
                self._signer.origin, self._signer.verifier_key(), signed.note, entries
            )

    def _check(self) -> _Checked:
        """The chain and the Merkle root of every integrated entry, and the newest signed
        checkpoint's agreement with them; LogInconsistent when either is broken."""
        with self._db.read() as session:
            latest = _latest(session)
            tree = merkle.CompactRange()
            prefix = tree.root() if latest is not None and latest.size == 0 else None

            def growing(entries: Iterator[StoredEntry]) -> Iterator[StoredEntry]:
                nonlocal prefix
                for entry in entries:
                    tree.append(merkle.leaf_hash(entry.body))
                    if latest is not None and tree.size == latest.size:
                        prefix = tree.root()
                    yield entry

            chain = verify_chain(growing(stored_entries(session)))
            against = _seen(latest)
        if not chain.intact:
            raise LogInconsistent(f"audit entry {chain.first_broken}: {chain.problem}")
        if against is not None and prefix != against[1]:
            raise LogInconsistent(
                f"the audit log no longer matches the checkpoint signed at size "
                f"{against[0]}; refusing to sign"
            )
        return _Checked(tree.size, tree.root(), against)

    def _sign(
        self, session: Session, latest: CheckpointRow | None, checked: _Checked, now: dt.datetime
    ) -> Signed:
        if latest is not None and latest.size == checked.size:
            note = self._signer.cosign(latest.note.encode("utf-8"))
            latest.note = note.decode("utf-8")  # unchanged unless the key was rotated
            return Signed(latest.size, latest.root_hash, note)
        note = self._signer.sign(Checkpoint(self._signer.origin, checked.size, checked.root_hash))
        session.add(
            CheckpointRow(
                size=checked.size,
                root_hash=checked.root_hash,
                note=note.decode("utf-8"),
                created_at=now,
            )
        )
        return Signed(checked.size, checked.root_hash, note)


# How often a checkpoint is checked again when another process signs one meanwhile.
_ATTEMPTS = 5


@dataclass(frozen=True)
class _Checked:
    """What a streaming check of the log found: its size and Merkle root, and the newest
    signed checkpoint (size, root) it was checked against (None: there was none)."""

    size: int
    root_hash: bytes
    against: tuple[int, bytes] | None


def _latest(session: Session) -> CheckpointRow | None:
    return session.scalars(
        select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
    ).first()


def _seen(row: CheckpointRow | None) -> tuple[int, bytes] | None:
    return None if row is None else (row.size, bytes(row.root_hash))
