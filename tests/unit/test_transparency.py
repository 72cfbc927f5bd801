"""Checkpoints are signed over the stored log and never over a log that contradicts one."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from support.instore import T0, fresh_store, template

from vir.audit import merkle
from vir.audit.actions import Action
from vir.audit.checkpoint import Checkpoint, SignedNote, parse_verifier_key, verify_note
from vir.audit.export import verify
from vir.crypto.signing import CheckpointSigner, ed25519_verify
from vir.domain.errors import InputError, LogInconsistent, NotFound
from vir.domain.progress import Progress
from vir.services.transparency import TransparencyLog
from vir.store import audit_log

SIGNER = CheckpointSigner.from_seed(hashlib.sha256(b"transparency test").digest(), "test/log")


def _append(log_db, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        with log_db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(Action.REPORT_GENERATED, "success", T0, objects={"i": i}),
            )


def test_checkpoints_follow_the_log_and_verify_with_the_public_key(tmp_path: Path) -> None:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        log = TransparencyLog(store.db, SIGNER, lambda: T0)
        first = log.checkpoint()
        assert log.checkpoint() == first  # nothing new: the same checkpoint
        _append(store.db, 3)
        second = log.checkpoint()
        assert second.size == first.size + 3
        note = SignedNote.parse(second.note)
        name, key = parse_verifier_key(log.verifier_key)
        assert verify_note(note, name, key, ed25519_verify)
        assert Checkpoint.parse_body(note.text).root_hash == second.root_hash
        report = verify(list(log.export()), ed25519_verify, log.verifier_key)
        assert report.ok and report.entries == second.size


def _edit(connection: Connection) -> None:
    body = bytes(
        connection.execute(text("SELECT body FROM audit_entries WHERE seq = 2")).scalar_one()
    )
    connection.execute(
        text("UPDATE audit_entries SET body = :body WHERE seq = 2"),
        {"body": body.replace(b"success", b"refused")},
    )


def _truncate(connection: Connection) -> None:
    connection.execute(
        text("DELETE FROM audit_entries WHERE seq = (SELECT max(seq) FROM audit_entries)")
    )


@pytest.mark.parametrize(("tamper", "full"), [(_edit, True), (_truncate, True), (_truncate, False)])
def test_no_checkpoint_over_an_edited_or_truncated_log(
    tmp_path: Path, tamper: Callable[[Connection], None], full: bool
) -> None:
    """The whole-log check finds either; the periodic one (what is new since the last
    checkpoint) finds the last signed entry gone. An edit of a signed entry leaves the
    tree as signed: see test_tiles.py."""
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        log = TransparencyLog(store.db, SIGNER, lambda: T0)
        _append(store.db, 3)
        log.checkpoint()
        with store.db.engine.begin() as connection:  # behind the service's back
            tamper(connection)
        with pytest.raises(LogInconsistent):
            log.checkpoint(full=full)


def test_inclusion_and_consistency_proofs_verify_against_signed_roots(tmp_path: Path) -> None:
    from vir.audit import merkle

    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        log = TransparencyLog(store.db, SIGNER, lambda: T0)
        _append(store.db, 5)
        old = log.checkpoint()
        _append(store.db, 7)
        new = log.checkpoint()
        for seq in (1, old.size, new.size):
            signed, leaf, path = log.inclusion(seq)
            assert signed == new
            assert merkle.verify_inclusion(leaf, seq - 1, new.size, path, new.root_hash)
        signed, leaf, path = log.inclusion(2, size=old.size)
        assert merkle.verify_inclusion(leaf, 1, old.size, path, old.root_hash)
        signed, proof = log.consistency(old.size)
        assert merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        with pytest.raises(InputError):
            log.inclusion(new.size + 1)
        with pytest.raises(NotFound):
            log.inclusion(1, size=new.size + 100)


def test_after_a_key_rotation_the_same_tree_head_is_cosigned(tmp_path: Path) -> None:
    rotated = CheckpointSigner.from_seed(hashlib.sha256(b"the next key").digest(), "test/log")
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        _append(store.db, 4)
        old = TransparencyLog(store.db, SIGNER, lambda: T0).checkpoint()
        log = TransparencyLog(store.db, rotated, lambda: T0)
        new = log.checkpoint()
        assert (new.size, new.root_hash) == (old.size, old.root_hash)
        note = SignedNote.parse(new.note)
        assert len(note.signatures) == 2
        for verifier in (SIGNER.verifier_key(), rotated.verifier_key()):
            name, key = parse_verifier_key(verifier)
            assert verify_note(note, name, key, ed25519_verify)
        assert log.checkpoint().note == new.note  # cosigned once
        report = verify(list(log.export()), ed25519_verify, rotated.verifier_key())
        assert report.ok


def test_a_write_goes_through_while_a_checkpoint_checks_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking every entry takes time in proportion to the log: it reads outside any
    write transaction, so a writer halfway through commits at once (on SQLite it waited
    for the whole check before)."""
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        _append(store.db, 30)
        log = TransparencyLog(store.db, SIGNER, lambda: T0)
        written = threading.Event()
        leaf_hash = merkle.leaf_hash
        hashed = [0]

        def hashing(body: bytes) -> bytes:
            hashed[0] += 1
            if hashed[0] == 10:
                writer = threading.Thread(target=lambda: (_append(store.db, 1), written.set()))
                writer.start()
                assert written.wait(10), "a writer waited for the checkpoint's check"
            return leaf_hash(body)

        monkeypatch.setattr(merkle, "leaf_hash", hashing)
        signed = log.checkpoint()
        monkeypatch.undo()
        assert written.is_set() and hashed[0] >= 30
        # The checkpoint covers what was integrated when its check began, and verifies.
        assert signed.size >= 30
        report = verify(list(log.export()), ed25519_verify, log.verifier_key)
        assert report.ok and report.entries == log.checkpoint().size


def test_a_checkpoint_signed_by_another_process_meanwhile_is_checked_against(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the check and the signing another process signs a checkpoint: the check
    runs again against it, and the two are consistent."""
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        _append(store.db, 5)
        log = TransparencyLog(store.db, SIGNER, lambda: T0)
        other = TransparencyLog(store.db, SIGNER, lambda: T0)
        check = TransparencyLog._check
        calls = [0]

        def racing(self: TransparencyLog, full: bool, progress: Progress | None = None) -> object:
            calls[0] += 1
            found = check(self, full, progress)
            if calls[0] == 1:  # the other signs after this check, over one entry more
                _append(store.db, 1)
                monkeypatch.setattr(TransparencyLog, "_check", check)
                other.checkpoint()
                monkeypatch.setattr(TransparencyLog, "_check", racing)
            return found

        monkeypatch.setattr(TransparencyLog, "_check", racing)
        signed = log.checkpoint()
        assert calls[0] == 2
        monkeypatch.undo()
        assert signed == log.checkpoint() == other.checkpoint()
