"""Merkle tiles: proofs from the stored tiles equal proofs over every leaf, read O(log n)
hashes, and a tile or entry edited behind the service's back gives an error, never a
false proof."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from support.audit_tiles import append_events, leaf_hashes
from support.instore import T0, fresh_store, template

from vir.audit import merkle
from vir.crypto.signing import CheckpointSigner
from vir.services.transparency import TransparencyLog
from vir.store import tiles
from vir.store.db import Database
from vir.store.tables import AuditTileRow

SIGNER = CheckpointSigner.from_seed(hashlib.sha256(b"tiles test").digest(), "test/log")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        yield store.db


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles of 4 nodes, so that a few hundred entries make four levels."""
    monkeypatch.setattr(tiles, "HEIGHT", 2)
    monkeypatch.setattr(tiles, "WIDTH", 4)
    monkeypatch.setattr(tiles, "BATCH", 7)


def test_every_proof_from_tiles_equals_the_proof_over_every_leaf(
    db: Database, narrow: None
) -> None:
    """Grown in uneven steps (as checkpoints come), at each size: every subtree the RFC's
    proofs ask for, every inclusion path and every consistency proof."""
    rng = random.Random(7)
    size = 0
    while size < 300:
        step = rng.choice([1, 2, 3, 5, 16, 37])
        append_events(db, step)
        size += step
        covered = tiles.extend(db, size - rng.choice([0, 0, 1, 3]) if size > 3 else size)
        leaves = leaf_hashes(db)
        assert len(leaves) >= size
        with db.read() as session:
            assert tiles.covered(session) == covered
            tree = tiles.StoredTree(session, size)
            for index in [*rng.sample(range(size), min(size, 12)), 0, size - 1]:
                assert tree.leaf(index) == leaves[index]
                assert merkle.inclusion_path(tree, index, size) == merkle.inclusion_proof(
                    leaves[:size], index
                )
            for old in [*rng.sample(range(1, size + 1), min(size, 12)), 1, size]:
                assert merkle.consistency_path(tree, old, size) == merkle.consistency_proof(
                    leaves[:size], old
                )
                assert merkle.range_hash(tree, 0, old) == merkle.root(leaves[:old])


def test_tiles_hold_complete_nodes_only_and_the_roots_of_full_tiles_above(
    db: Database, narrow: None
) -> None:
    append_events(db, 70)
    assert tiles.extend(db, 70) == 70
    leaves = leaf_hashes(db)[:70]
    with db.read() as session:
        stored = {
            (row.level, row.idx): bytes(row.hashes) for row in session.scalars(select(AuditTileRow))
        }
    level = leaves
    for height in range(4):
        # Level ``height`` holds every complete node at height 2·height, 4 to a tile.
        expected = b"".join(level)
        got = b"".join(stored[height, i] for i in range(-(-len(level) // 4)))
        assert got == expected
        level = [merkle.root(level[i : i + 4]) for i in range(0, len(level) - 3, 4)]
    assert len(stored) == 18 + 5 + 1 + 1  # over 70 leaves, 17 nodes, 4 nodes, 1 node


def test_a_proof_reads_one_entry_and_a_few_tiles(db: Database) -> None:
    """At the real width, a log of 70,000 entries: one body (the leaf's) and under 30
    tiles per proof, where the proof used to read every entry."""
    for _ in range(7):
        append_events(db, 10_000)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    size = signed.size  # 70,000 and the store's own first entries
    assert size >= 70_000
    reads: list[str] = []
    real_tile, real_leaves = tiles.StoredTree._tile, tiles.StoredTree._leaves

    def tile(self: tiles.StoredTree, level: int, idx: int) -> list[bytes]:
        reads.append(f"tile {level}/{idx}")
        return real_tile(self, level, idx)

    def leaves(self: tiles.StoredTree, first: int, count: int) -> list[bytes]:
        reads.append(f"{count} entries")
        return real_leaves(self, first, count)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tiles.StoredTree, "_tile", tile)
        patch.setattr(tiles.StoredTree, "_leaves", leaves)
        for seq in (1, 31_337, 65_536, size - 1, size):
            reads.clear()
            _, leaf, path = log.inclusion(seq)
            assert merkle.verify_inclusion(leaf, seq - 1, size, path, signed.root_hash)
            assert reads.count("1 entries") == 1 and len(reads) < 30, reads
        reads.clear()
        _, proof = log.consistency(40_001)
        assert not any("entries" in r for r in reads) and len(reads) < 30, reads
    with db.read() as session:
        old_root = merkle.range_hash(tiles.StoredTree(session, 40_001), 0, 40_001)
    assert old_root == merkle.root(leaf_hashes(db)[:40_001])
    assert merkle.verify_consistency(40_001, size, old_root, signed.root_hash, proof)


def test_tiles_are_built_after_an_upgrade_and_again_after_they_are_deleted(
    db: Database,
) -> None:
    append_events(db, 600)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    with db.engine.begin() as connection:  # as before migration 0023, or wiped
        connection.execute(text("DELETE FROM audit_tiles"))
    _, leaf, path = log.inclusion(300)
    assert merkle.verify_inclusion(leaf, 299, signed.size, path, signed.root_hash)
    with db.read() as session:
        assert tiles.covered(session) == signed.size


def test_two_extenders_at_once_build_the_tiles_once(db: Database) -> None:
    append_events(db, 20_000)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            tiles.extend(db, 20_000)
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    leaves = leaf_hashes(db)
    with db.read() as session:
        assert tiles.covered(session) == 20_000
        tree = tiles.StoredTree(session, 20_000)
        assert merkle.range_hash(tree, 0, 20_000) == merkle.root(leaves[:20_000])
        assert session.scalar(text("SELECT count(*) FROM audit_tiles WHERE level = 0")) == 79


def test_the_check_allows_tiles_grown_after_the_walk_read_the_entries(
    db: Database, narrow: None
) -> None:
    """On PostgreSQL each statement reads at its own moment: while vir audit verify walks
    the entries, the service may integrate and tile more. Tiles read longer than the walk
    went agree, as long as the entries stored when it ends make them."""
    append_events(db, 50)
    leaves = leaf_hashes(db)
    append_events(db, 20)
    total = len(leaf_hashes(db))
    tiles.extend(db, total)
    with db.read() as session:
        check = tiles.Check(session)
        for leaf in leaves:  # the walk saw the first 54 entries only
            check.add(leaf)
        assert check.problem(total) is None
        assert check.covered == total
        check = tiles.Check(session)
        for leaf in leaves:
            check.add(leaf)
        # Had the entries not grown, the same tiles hold more than they make.
        assert check.problem(len(leaves)) == (
            f"the Merkle tiles cover {total} entries, the log holds {len(leaves)}"
        )


def test_a_checkpoint_tells_the_tiles_it_builds_after_the_check(db: Database, narrow: None) -> None:
    """One bar: the entries checked, then the tiles still to build (after an upgrade,
    every leaf), never going back; without a tile to build, the check alone."""
    append_events(db, 600)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    log.checkpoint()
    told: list[tuple[int, int]] = []
    signed = log.checkpoint(full=True, progress=lambda done, total: told.append((done, total)))
    assert told[-1] == (signed.size, signed.size)  # the tiles were there: the check alone
    with db.engine.begin() as connection:  # as before migration 0023
        connection.execute(text("DELETE FROM audit_tiles"))
    told.clear()
    signed = log.checkpoint(full=True, progress=lambda done, total: told.append((done, total)))
    both = 2 * signed.size  # every entry checked, then every leaf tiled
    assert told[-1] == (both, both)
    assert {total for _done, total in told} == {both}
    assert [done for done, _total in told] == sorted(done for done, _total in told)
    assert any(signed.size < done < both for done, _total in told)  # told while tiling
    with db.read() as session:
        assert tiles.covered(session) == signed.size
