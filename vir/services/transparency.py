"""Signed checkpoints over the audit log, and portable exports.

A checkpoint covers every entry integrated when it is made. Before signing, the
stored log must still agree with the newest checkpoint already signed (same
entries, same Merkle root for that prefix): the service never signs two
inconsistent checkpoints, so an edit or truncation of the log stops checkpointing
instead of being papered over.

The periodic checkpoint (every five minutes while the service runs) and the reports
check what is new: the entries since the newest signed checkpoint, chained on from
its last entry, and the stored tree (``vir.store.tiles``) still giving its root. That
takes time in proportion to what is new, not to the log: a whole-log check every few
minutes would grow into a core's worth of work as the log grows. The new tree is
built on the tiles that give the signed root, so it extends the signed tree by
construction. ``vir audit checkpoint``, an export and every checkpoint before the
tiles cover the signed tree check the whole log from the entries: the chain walked
entry by entry and the Merkle root grown in a compact range (O(log n) memory), in a
read transaction. An edit of an entry that is already signed is caught there, by
``vir audit verify`` of an export (the daily timer in deploy/), and by any inclusion
proof of that entry.

Only signing and storing take a write transaction, a short one, which first makes
sure the newest checkpoint is still the one the check compared against (another
process may have signed meanwhile; then the check runs again). An export streams its
entries the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
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
from vir.domain.progress import Progress, told
from vir.store import tiles
from vir.store.audit_log import as_bytes, count_entries, stored_entries
from vir.store.db import Database
from vir.store.tables import AuditEntryRow, CheckpointRow


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

    def checkpoint(self, *, full: bool = False, progress: Progress | None = None) -> Signed:
        """The checkpoint over all entries now, signing a new one if the log has grown.

        Checked first: the entries since the newest signed checkpoint (their chain, linked
        to its last entry) and the stored tree against its root, in time proportional to
        what is new (the periodic checkpoint and the reports). ``full``: the whole chain
        and tree from the entries, as ``vir audit checkpoint`` and an export do (and
        every checkpoint while the tiles do not cover the newest one yet). ``progress``
        is told how far the check has come."""
        self._db.integrate()
        checking, tiling = _check_then_tile(self._db, progress)
        for _attempt in range(_ATTEMPTS):
            checked = self._check(full, checking)
            with self._db.write(exclusive=True) as session:
                latest = _latest(session)
                if _seen(latest) != checked.against:
                    continue  # signed by another process meanwhile: check against that one
                signed = self._sign(session, latest, checked, self._clock())
            # So that proofs on it read O(log n) hashes (after an upgrade: the whole log,
            # once, as the second part of the progress bar).
            tiles.extend(self._db, signed.size, tiling)
            return signed
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
        one of ``size``): (checkpoint, leaf hash, audit path). The leaf hash is the stored
        entry's; the path comes from the tiles and is verified before it is answered."""
        signed = self._signed(size)
        if not 1 <= seq <= signed.size:
            raise InputError("seq", f"no entry {seq} in the tree of size {signed.size}")
        with self._tree(signed.size) as tree:
            leaf = tree.leaf(seq - 1)
            path = merkle.inclusion_path(tree, seq - 1, signed.size)
        if not merkle.verify_inclusion(leaf, seq - 1, signed.size, path, signed.root_hash):
            raise _inconsistent(signed)
        return signed, leaf, path

    def consistency(self, old_size: int, size: int | None = None) -> tuple[Signed, list[bytes]]:
        """Proof that the tree of ``old_size`` is a prefix of a signed checkpoint's tree,
        verified against the signed root before it is answered."""
        signed = self._signed(size)
        if not 1 <= old_size <= signed.size:
            raise InputError("from", f"must be between 1 and {signed.size}")
        with self._tree(signed.size) as tree:
            proof = merkle.consistency_path(tree, old_size, signed.size)
            old_root = merkle.range_hash(tree, 0, old_size)
        if not merkle.verify_consistency(old_size, signed.size, old_root, signed.root_hash, proof):
            raise _inconsistent(signed)
        return signed, proof

    def _signed(self, size: int | None) -> Signed:
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
            return Signed(row.size, bytes(row.root_hash), row.note.encode("utf-8"))

    @contextmanager
    def _tree(self, size: int) -> Iterator[tiles.StoredTree]:
        """The tree of the first ``size`` entries, from the tiles (extended first if they
        cover less, as after an upgrade: once, in batches)."""
        with self._db.read() as session:
            short = tiles.covered(session) < size
        if short:
            tiles.extend(self._db, size)
        with self._db.read() as session:
            yield tiles.StoredTree(session, size)

    def export(self, progress: Progress | None = None) -> Iterator[bytes]:
        """Sign (if needed) and export every entry up to that checkpoint, line by line,
        read as they are written out; ``progress`` told of both, as halves of one bar."""
        checking = writing = None
        if progress is not None:
            tell = progress

            def checking(done: int, total: int) -> None:
                tell(done, 2 * total)

            def writing(done: int, total: int) -> None:
                tell(total + done, 2 * total)

        signed = self.checkpoint(full=True, progress=checking)
        with self._db.read() as session:
            upto = takewhile(lambda e: e.seq <= signed.size, stored_entries(session))
            entries = (
                ExportedEntry(e.seq, e.entry_hash, e.body) for e in told(upto, signed.size, writing)
            )
            yield from render(
                self._signer.origin, self._signer.verifier_key(), signed.note, entries
            )

    def _check(self, full: bool, progress: Progress | None = None) -> _Checked:
        """The chain and the Merkle root of every integrated entry, and the newest signed
        checkpoint's agreement with them; LogInconsistent when either is broken."""
        with self._db.read() as session:
            latest = _latest(session)
            tiled = tiles.covered(session)
        if full or latest is None or latest.size == 0 or tiled < latest.size:
            return self._check_all(progress)
        return self._check_since(latest)

    def _check_since(self, latest: CheckpointRow) -> _Checked:
        """The entries after ``latest`` chained on from its last entry, and the tiles (the
        tree of every entry up to it, grown since) still giving its root."""
        against = _seen(latest)
        assert against is not None
        old_size, old_root = against
        with self._db.read() as session:
            last = session.scalar(
                select(AuditEntryRow.entry_hash).where(AuditEntryRow.seq == old_size)
            )
            if last is None:
                raise LogInconsistent(
                    f"audit entry {old_size}, the last of the signed checkpoint, is missing"
                )
            chain = verify_chain(
                stored_entries(session, after=old_size),
                previous=as_bytes(last),
                first=old_size + 1,
            )
        if not chain.intact:
            raise LogInconsistent(f"audit entry {chain.first_broken}: {chain.problem}")
        size = old_size + chain.entries
        tiles.extend(self._db, size)
        with self._db.read() as session:
            tree = tiles.StoredTree(session, size)
            if merkle.range_hash(tree, 0, old_size) != old_root:
                raise LogInconsistent(
                    f"the audit log no longer matches the checkpoint signed at size "
                    f"{old_size}; refusing to sign"
                )
            return _Checked(size, merkle.range_hash(tree, 0, size), against)

    def _check_all(self, progress: Progress | None) -> _Checked:
        """Every entry from the start: the chain walked and the Merkle root grown in a
        compact range (O(log n) memory), in a read transaction."""
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

            total = count_entries(session) if progress is not None else 0
            chain = verify_chain(told(growing(stored_entries(session)), total, progress))
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


def _inconsistent(signed: Signed) -> LogInconsistent:
    return LogInconsistent(f"the stored log no longer matches checkpoint {signed.size}")


def _check_then_tile(
    db: Database, progress: Progress | None
) -> tuple[Progress | None, Progress | None]:
    """``progress`` split over a checkpoint's two long parts, one bar: the check of the
    entries, then the tiles still to build (all of them after an upgrade). The check's
    total grows by the entries the tiles do not cover yet; the tiles continue from it."""
    if progress is None:
        return None, None
    tell = progress
    with db.read() as session:
        tiled = tiles.covered(session)
    checked = [0]

    def checking(done: int, total: int) -> None:
        checked[0] = total
        tell(done, total + max(0, total - tiled))

    def tiling(done: int, total: int) -> None:
        tell(checked[0] + done, checked[0] + total)

    return checking, tiling


def _latest(session: Session) -> CheckpointRow | None:
    return session.scalars(
        select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
    ).first()


def _seen(row: CheckpointRow | None) -> tuple[int, bytes] | None:
    return None if row is None else (row.size, bytes(row.root_hash))
