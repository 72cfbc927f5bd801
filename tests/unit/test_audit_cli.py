"""``vir audit verify`` and ``vir audit export`` as the user meets them: the stored log is
held to its newest signed checkpoint, an export is verified only with the published key,
each refusal is one line that says what to do, and a file is written whole, 0600, or
not at all."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from support.audit_export import synthetic_export
from support.audit_tiles import append_events, edit_entry
from support.clirun import Ran, run_vir
from support.instore import T0, fresh_store, template

from vir.audit.chain import GENESIS, chain_hash
from vir.audit.checkpoint import Checkpoint, SignedNote
from vir.crypto.signing import CheckpointSigner, init_signing_key
from vir.services.transparency import Signed, TransparencyLog
from vir.store.db import Database

SIGNER = CheckpointSigner.from_seed(hashlib.sha256(b"audit cli test").digest(), "test/log")
FORGER = CheckpointSigner.from_seed(hashlib.sha256(b"a fresh key").digest(), "test/log")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        yield store.db


def _export(folder: Path, signer: CheckpointSigner = SIGNER, entries: int = 4) -> Path:
    path = folder / "log.export"
    path.write_bytes(b"".join(synthetic_export(entries, signer)))
    return path


def _one_line(ran: Ran) -> str:
    assert ran.out == ""
    assert ran.err.count("\n") == 1, ran.err
    return ran.err


def test_an_export_verifies_with_the_published_key_and_prints_its_root_in_base64(
    db: Database, tmp_path: Path
) -> None:
    path = _export(tmp_path)
    ran = run_vir(db, "audit", "verify", str(path), "--verifier-key", SIGNER.verifier_key())
    assert ran.code == 0, ran.err
    note = SignedNote.parse(json.loads(path.read_bytes().splitlines()[0])["checkpoint"].encode())
    root = base64.b64encode(Checkpoint.parse_body(note.text).root_hash).decode("ascii")
    assert f"export verified: 4 entries, Merkle root {root}, signed by" in ran.out


def test_an_export_is_not_verified_without_the_published_key(db: Database, tmp_path: Path) -> None:
    """A forger signs a rewritten log with a fresh key of their own: the key the file
    names proves nothing, so there is nothing to verify it with."""
    forged = _export(tmp_path, FORGER)
    ran = run_vir(db, "audit", "verify", str(forged))
    assert ran.code == 2
    assert _one_line(ran) == (
        "vir: verifier-key: required to verify an export: give the log's published key, "
        "as vir audit key prints it\n"
    )
    ran = run_vir(db, "audit", "verify", str(forged), "--verifier-key", SIGNER.verifier_key())
    assert ran.code == 1
    assert "wrong key: the export names another key than the one given" in ran.err


def test_a_malformed_key_is_said_to_be_one(db: Database, tmp_path: Path) -> None:
    path = _export(tmp_path)
    ran = run_vir(db, "audit", "verify", str(path), "--verifier-key", "abc")
    assert ran.code == 2
    assert _one_line(ran).startswith("vir: verifier-key: not a verifier key: ")
    key_file = tmp_path / "checkpoint.pub"
    key_file.write_text(SIGNER.verifier_key() + "\n", encoding="utf-8")
    ran = run_vir(db, "audit", "verify", str(path), "--verifier-key", str(key_file))
    assert ran.code == 2
    assert _one_line(ran) == (
        'vir: verifier-key: is a path: give the key itself, e.g. --verifier-key "$(cat FILE)"\n'
    )


@pytest.mark.parametrize(
    ("name", "why"), [("missing.export", "no such file or folder"), (".", "it is a folder")]
)
def test_a_file_that_cannot_be_read_is_named_in_one_line(
    db: Database, tmp_path: Path, name: str, why: str
) -> None:
    path = tmp_path / name
    ran = run_vir(db, "audit", "verify", str(path), "--verifier-key", SIGNER.verifier_key())
    assert ran.code == 2
    assert _one_line(ran) == f"vir: file: cannot read {path}: {why}\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "the file is empty: an export starts with a header"),
        (b"\x89PNG\r\n\x1a\n", "not a vir-audit-export/1 file: its first line is not UTF-8"),
    ],
    ids=["empty", "binary"],
)
def test_what_is_not_an_export_is_said_to_be_none(
    db: Database, tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "junk.export"
    path.write_bytes(content)
    ran = run_vir(db, "audit", "verify", str(path), "--verifier-key", SIGNER.verifier_key())
    assert ran.code == 1
    assert _one_line(ran).startswith(f"vir: export does NOT verify: {problem}")


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    init_signing_key(folder)
    return folder


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _export_to(db: Database, keys: Path, out: Path) -> Ran:
    return run_vir(db, "audit", "export", "--out", str(out), keys_dir=str(keys))


def test_an_export_is_written_for_its_owner_alone(db: Database, keys: Path, tmp_path: Path) -> None:
    append_events(db, 5)
    out = _folder(tmp_path) / "keep.export"
    old = os.umask(0o022)
    try:
        ran = _export_to(db, keys, out)
    finally:
        os.umask(old)
    assert ran.code == 0, ran.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["keep.export"]  # no temporary left


def test_a_failed_export_leaves_the_earlier_one_as_it_was(
    db: Database, keys: Path, tmp_path: Path
) -> None:
    append_events(db, 30)
    out = _folder(tmp_path) / "keep.export"
    assert _export_to(db, keys, out).code == 0
    kept = out.read_bytes()
    edit_entry(db, 20)
    ran = _export_to(db, keys, out)
    assert ran.code == 2
    assert _one_line(ran) == "vir: audit entry 20: content does not match its hash\n"
    assert out.read_bytes() == kept
    assert [p.name for p in out.parent.iterdir()] == ["keep.export"]  # no temporary left


def test_an_export_to_a_folder_that_is_not_there_is_refused_in_one_line(
    db: Database, keys: Path, tmp_path: Path
) -> None:
    append_events(db, 3)
    out = tmp_path / "nodir" / "x.export"
    ran = _export_to(db, keys, out)
    assert ran.code == 1
    assert _one_line(ran) == f"vir: cannot write {out}: no such folder: {out.parent}\n"
    ran = _export_to(db, keys, tmp_path)
    assert ran.code == 1
    assert _one_line(ran) == f"vir: cannot write {tmp_path}: it is a folder\n"


def _signed_log(db: Database, entries: int) -> Signed:
    """A checkpoint signed over the store's first entries and ``entries`` more."""
    append_events(db, entries)
    return TransparencyLog(db, SIGNER, lambda: T0).checkpoint()


def _sql(db: Database, statement: str, **values: object) -> None:
    with db.engine.begin() as connection:  # behind the service's back
        connection.execute(text(statement), values)


def test_a_log_cut_short_of_its_signed_checkpoint_is_broken(db: Database) -> None:
    size = _signed_log(db, 116).size
    _sql(db, "DELETE FROM audit_entries WHERE seq = :seq", seq=size)
    _sql(db, "DELETE FROM audit_tiles")  # what the tiles' message once advised
    ran = run_vir(db, "audit", "verify")
    assert ran.code == 1
    assert _one_line(ran) == (
        f"vir: audit log BROKEN: it holds {size - 1} entries, fewer than the {size} of its "
        "newest signed checkpoint: entries were removed\n"
    )


def test_a_log_rewritten_with_its_chain_recomputed_is_broken(db: Database) -> None:
    size = _signed_log(db, 20).size
    with db.engine.begin() as connection:
        rows = connection.execute(text("SELECT seq, body FROM audit_entries ORDER BY seq"))
        previous = GENESIS
        for seq, body in list(rows):
            body = bytes(body).replace(b"success", b"refused") if seq == 3 else bytes(body)
            entry = chain_hash(previous, body)
            connection.execute(
                text(
                    "UPDATE audit_entries SET body = :b, outcome = :o, prev_hash = :p, "
                    "entry_hash = :e WHERE seq = :s"
                ),
                {"b": body, "o": json.loads(body)["outcome"], "p": previous, "e": entry, "s": seq},
            )
            previous = entry
    _sql(db, "DELETE FROM audit_tiles")
    ran = run_vir(db, "audit", "verify")
    assert ran.code == 1
    assert _one_line(ran) == (
        f"vir: audit log BROKEN: its first {size} entries do not give the root of its "
        "newest signed checkpoint: entries were changed\n"
    )


def test_an_intact_log_is_said_to_extend_its_signed_checkpoint(db: Database) -> None:
    signed = _signed_log(db, 7)
    append_events(db, 2)  # not signed yet: the log may hold more than it signed
    ran = run_vir(db, "audit", "verify")
    assert ran.code == 0, ran.err
    root = base64.b64encode(signed.root_hash).decode("ascii")
    assert f"the log extends its newest signed checkpoint ({signed.size} entries, root {root})" in (
        ran.out
    )


def test_tiles_over_removed_entries_are_not_called_stale(db: Database) -> None:
    """Someone who removes entries and the checkpoints that counted them still leaves the
    tiles: those say entries were removed, and are not to be deleted."""
    size = _signed_log(db, 300).size
    _sql(db, "DELETE FROM audit_entries WHERE seq > :kept", kept=size - 10)
    _sql(db, "DELETE FROM checkpoints")
    ran = run_vir(db, "audit", "verify")
    assert ran.code == 1
    assert "delete" not in ran.err
    assert ran.err == (
        f"vir: the Merkle tiles cover {size} entries, the log holds {size - 10}: the log "
        "holds fewer entries than were sequenced: entries were removed\n"
    )


def test_the_database_is_verified_with_a_key_only_if_its_checkpoints_are_signed_by_it(
    db: Database,
) -> None:
    ran = run_vir(db, "audit", "verify", "--verifier-key", SIGNER.verifier_key())
    assert ran.code == 2
    assert _one_line(ran) == (
        "vir: verifier-key: no signed checkpoint in the database to check it against "
        "(vir audit checkpoint signs one)\n"
    )
    size = _signed_log(db, 5).size
    ran = run_vir(db, "audit", "verify", "--verifier-key", "garbage")
    assert ran.code == 2
    assert _one_line(ran).startswith("vir: verifier-key: not a verifier key: ")
    ran = run_vir(db, "audit", "verify", "--verifier-key", FORGER.verifier_key())
    assert ran.code == 2
    assert _one_line(ran) == (
        f"vir: verifier-key: the newest signed checkpoint ({size} entries) is not signed by "
        "this key\n"
    )
    ran = run_vir(db, "audit", "verify", "--verifier-key", SIGNER.verifier_key())
    assert ran.code == 0, ran.err
    assert f"({size} entries, root " in ran.out and "signed by the key given)" in ran.out
