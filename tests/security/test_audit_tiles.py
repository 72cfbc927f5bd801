"""Merkle tiles edited or entries removed behind the service's back: a proof or a
checkpoint gives an error (LogInconsistent), never a false proof or a tree that does not
extend the signed one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from support.audit_tiles import append_events, edit_entry, store_tile, tile_blob
from support.clirun import run_vir
from support.instore import T0, fresh_store, template

from vir.audit import merkle
from vir.crypto.signing import CheckpointSigner
from vir.domain.errors import LogInconsistent
from vir.services.transparency import TransparencyLog
from vir.store import tiles
from vir.store.db import Database

SIGNER = CheckpointSigner.from_seed(hashlib.sha256(b"tiles test").digest(), "test/log")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        yield store.db


@pytest.mark.parametrize("edit", ["a hash", "a byte less"])
def test_an_edited_tile_gives_an_error_not_a_false_proof(db: Database, edit: str) -> None:
    append_events(db, 1000)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    blob = tile_blob(db, 0, 0)
    # Entry 5's leaf hash (which entry 6's path holds), or the tile a byte short.
    blob = blob[: 4 * 32] + bytes(32) + blob[5 * 32 :] if edit == "a hash" else blob[:-1]
    store_tile(db, 0, 0, blob)
    wrong = f"no longer matches checkpoint {signed.size}"
    with pytest.raises(LogInconsistent, match=wrong):
        log.inclusion(6)
    with pytest.raises(LogInconsistent, match=wrong):
        log.consistency(5)
    # Entry 900's path holds the edited tile only through its root, a node of level 1
    # stored when the tile was full: that proof is still true, and is answered.
    _, leaf, path = log.inclusion(900)
    assert merkle.verify_inclusion(leaf, 899, signed.size, path, signed.root_hash)


def test_an_edited_entry_is_refused_its_proof(db: Database) -> None:
    append_events(db, 300)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    edit_entry(db, 7)
    with pytest.raises(LogInconsistent, match=f"no longer matches checkpoint {signed.size}"):
        log.inclusion(7)
    with pytest.raises(LogInconsistent, match="audit entry 7: content does not match its hash"):
        log.checkpoint(full=True)
    # The periodic checkpoint checks what is new, and builds on the tree as signed (which
    # holds entry 7 as it was): what it signs still extends the signed tree.
    append_events(db, 5)
    newer = log.checkpoint()
    assert newer.size == signed.size + 5
    _, proof = log.consistency(signed.size, newer.size)
    assert merkle.verify_consistency(
        signed.size, newer.size, signed.root_hash, newer.root_hash, proof
    )


def test_a_missing_entry_stops_the_tiles_with_a_clear_error(db: Database) -> None:
    append_events(db, 600)
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 300"))
    with pytest.raises(LogInconsistent, match=r"audit entries 1\.\.600 are not all stored"):
        tiles.extend(db, 600)
    with db.read() as session:
        assert tiles.covered(session) == 0


def test_the_periodic_checkpoint_refuses_a_tree_that_no_longer_gives_the_signed_root(
    db: Database,
) -> None:
    append_events(db, 1000)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    blob = tile_blob(db, 1, 0)  # the roots of the first full tiles: the left of every tree
    store_tile(db, 1, 0, bytes(32) + blob[32:])
    append_events(db, 3)
    with pytest.raises(LogInconsistent, match=f"checkpoint signed at size {signed.size}"):
        log.checkpoint()
    assert log.latest() == signed  # nothing signed


def test_the_periodic_checkpoint_checks_the_chain_of_what_is_new(db: Database) -> None:
    append_events(db, 300)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    append_events(db, 10)
    seq = signed.size + 4
    edit_entry(db, seq)
    with pytest.raises(LogInconsistent, match=f"audit entry {seq}: content does not match"):
        log.checkpoint()
    assert log.latest() == signed


def _verify(db: Database) -> tuple[int, str, str]:
    ran = run_vir(db, "audit", "verify")
    return ran.code, ran.out, ran.err


def test_vir_audit_verify_checks_the_tiles_against_the_entries(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiles of 4, so that a hundred entries make four levels (in this process, where
    # run_vir runs the command).
    monkeypatch.setattr(tiles, "HEIGHT", 2)
    monkeypatch.setattr(tiles, "WIDTH", 4)
    monkeypatch.setattr(tiles, "BATCH", 9)
    append_events(db, 100)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    code, out, err = _verify(db)
    assert code == 0, err
    assert f"the Merkle tiles agree with the entries ({signed.size} covered)" in out

    append_events(db, 30)  # not tiled yet: the tiles cover fewer, and still agree
    assert _verify(db)[0] == 0

    blob = tile_blob(db, 1, 0)
    store_tile(db, 1, 0, blob[:64] + bytes(32) + blob[96:])  # its third node
    code, _, err = _verify(db)
    assert code == 1 and "Merkle tile 1/0 differs from the entries" in err
    store_tile(db, 1, 0, blob)

    store_tile(db, 0, 7, tile_blob(db, 0, 7) + bytes(32))  # a hash more than its entries
    code, _, err = _verify(db)
    assert code == 1 and "Merkle tile 0/7 is not a tile" in err

    with db.engine.begin() as connection:  # the advice given: delete them
        connection.execute(text("DELETE FROM audit_tiles"))
    code, out, _ = _verify(db)
    assert code == 0 and "(0 covered)" in out
    log.checkpoint()  # builds them again
    code, out, _ = _verify(db)
    assert code == 0 and f"({signed.size + 30} covered)" in out


def test_vir_audit_verify_finds_tiles_over_entries_that_are_gone(db: Database) -> None:
    append_events(db, 600)
    log = TransparencyLog(db, SIGNER, lambda: T0)
    signed = log.checkpoint()
    with db.engine.begin() as connection:  # the newest entries deleted: the chain holds
        connection.execute(text("DELETE FROM audit_entries WHERE seq > 500"))
        connection.execute(text("DELETE FROM audit_refs WHERE seq > 500"))
    code, _, err = _verify(db)
    assert code == 1
    assert f"fewer than the {signed.size} of its newest signed checkpoint" in err
    with db.engine.begin() as connection:  # and the checkpoint that counted them
        connection.execute(text("DELETE FROM checkpoints"))
    code, _, err = _verify(db)
    assert code == 1
    assert f"the Merkle tiles cover {signed.size} entries, the log holds 500" in err
    assert "entries were removed" in err and "delete" not in err
