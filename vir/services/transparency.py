"""Signed checkpoints over the audit log, and portable exports.

A checkpoint is signed inside a write transaction, over every entry stored at
that moment. Before signing, the stored log must still agree with the newest
checkpoint already signed (same entries, same Merkle root for that prefix):
the service never signs two inconsistent checkpoints, so an edit or truncation
of the log stops checkpointing instead of being papered over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.audit import merkle
from vir.audit.chain import verify_chain
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
        with self._db.write() as session:
            return self._checkpoint(session, self._clock())

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
        """Sign (if needed) and export every entry up to that checkpoint, line by line."""
        with self._db.write() as session:
            signed = self._checkpoint(session, self._clock())
            entries = [
                ExportedEntry(e.seq, e.entry_hash, e.body)
                for e in stored_entries(session)
                if e.seq <= signed.size
            ]
        return render(self._signer.origin, self._signer.verifier_key(), signed.note, entries)

    def _checkpoint(self, session: Session, now: dt.datetime) -> Signed:
        entries = list(stored_entries(session))
        chain = verify_chain(entries)
        if not chain.intact:
            raise LogInconsistent(f"audit entry {chain.first_broken}: {chain.problem}")
        leaves = [merkle.leaf_hash(e.body) for e in entries]
        latest = session.scalars(
            select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
        ).first()
        if latest is not None:
            if latest.size > len(leaves) or merkle.root(leaves[: latest.size]) != latest.root_hash:
                raise LogInconsistent(
                    f"the audit log no longer matches the checkpoint signed at size "
                    f"{latest.size}; refusing to sign"
                )
            if latest.size == len(leaves):
                note = self._signer.cosign(latest.note.encode("utf-8"))
                latest.note = note.decode("utf-8")  # unchanged unless the key was rotated
                return Signed(latest.size, latest.root_hash, note)
        root_hash = merkle.root(leaves)
        note = self._signer.sign(Checkpoint(self._signer.origin, len(leaves), root_hash))
        session.add(
            CheckpointRow(
                size=len(leaves), root_hash=root_hash, note=note.decode("utf-8"), created_at=now
            )
        )
        return Signed(len(leaves), root_hash, note)
