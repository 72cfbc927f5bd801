"""Ed25519 checkpoint signing: verify with only the public key, tampering, key files."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.note_vectors import SUMDB_NOTE, SUMDB_VKEY

from vir.audit.checkpoint import (
    Checkpoint,
    NoteSignature,
    SignedNote,
    ed25519_key_hash,
    parse_verifier_key,
    verify_note,
)
from vir.crypto.signing import (
    KEY_FILE_NAME,
    CheckpointSigner,
    ed25519_verify,
    init_signing_key,
    load_signing_key,
)
from vir.domain.errors import ConfigurationError

ORIGIN = "vir.example/audit-log"
SEED = bytes.fromhex("a3" * 16 + "5c" * 16)  # arbitrary; not a published key
SIGNER = CheckpointSigner.from_seed(SEED, ORIGIN)
CHECKPOINT = Checkpoint(ORIGIN, 1234, bytes(range(32)), ("ext",))
SIGNED = SIGNER.sign(CHECKPOINT)

# golang.org/x/mod sumdb/note/note_test.go: signer and verifier key, text and signature.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
).encode()
# transparency-dev/formats log/note_test.go: a test signer and its verifier key
# (the sum.golang.org checkpoint is in support/note_vectors.py).
FORMATS_LOG_SKEY = "PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ"
FORMATS_LOG_VKEY = "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs"


def _seed_from_signer_key(skey: str) -> bytes:
    """The seed in a sumdb/note signer key: ``PRIVATE+KEY+<name>+<hash>+<b64(0x01 ‖ seed)>``."""
    raw = base64.b64decode(skey.split("+", 4)[4])
    assert raw[0] == 0x01 and len(raw) == 33
    return raw[1:]


def accepts(data: bytes, verifier_key: str) -> bool:
    """What a verifier holding only the verifier key does: parse, then verify_note."""
    name, public_key = parse_verifier_key(verifier_key)
    try:
        note = SignedNote.parse(data)
    except ValueError:
        return False
    return verify_note(note, name, public_key, ed25519_verify)


# --- Sign, then verify with the public key alone ---------------------------------------
def test_signed_checkpoint_verifies_with_only_the_verifier_key() -> None:
    assert accepts(SIGNED, SIGNER.verifier_key())
    note = SignedNote.parse(SIGNED)
    assert Checkpoint.parse_body(note.text) == CHECKPOINT
    assert [s.name for s in note.signatures] == [ORIGIN]
    assert note.signatures[0].key_hash == SIGNER.key_hash
    assert note.signatures[0].key_hash == ed25519_key_hash(ORIGIN, SIGNER.public_key())
    assert len(SIGNER.public_key()) == 32


def test_signature_is_deterministic() -> None:
    assert SIGNER.sign(CHECKPOINT) == SIGNED


@given(data=st.data())
def test_any_tampered_byte_of_the_text_fails(data: st.DataObject) -> None:
    text = SignedNote.parse(SIGNED).text
    index = data.draw(st.integers(0, len(text) - 1))
    mask = data.draw(st.integers(1, 255))
    tampered = bytearray(SIGNED)
    tampered[index] ^= mask
    assert not accepts(bytes(tampered), SIGNER.verifier_key())


@given(data=st.data())
def test_any_tampered_byte_of_the_signature_fails(data: st.DataObject) -> None:
    note = SignedNote.parse(SIGNED)
    good = note.signatures[0]
    index = data.draw(st.integers(0, len(good.signature) - 1))
    mask = data.draw(st.integers(1, 255))
    signature = bytearray(good.signature)
    signature[index] ^= mask
    tampered = SignedNote(note.text, (NoteSignature(good.name, good.key_hash, bytes(signature)),))
    assert not accepts(tampered.render(), SIGNER.verifier_key())


@given(data=st.data())
def test_any_tampered_byte_of_the_whole_note_fails(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(SIGNED) - 1))
    mask = data.draw(st.integers(1, 255))
    tampered = bytearray(SIGNED)
    tampered[index] ^= mask
    assert not accepts(bytes(tampered), SIGNER.verifier_key())


@given(st.binary(min_size=32, max_size=32).filter(lambda seed: seed != SEED))
def test_another_key_fails(seed: bytes) -> None:
    other = CheckpointSigner.from_seed(seed, ORIGIN)
    assert not accepts(SIGNED, other.verifier_key())
    # Even when the line claims the other key's hash, the Ed25519 check refuses it.
    note = SignedNote.parse(SIGNED)
    good = note.signatures[0]
    relabelled = NoteSignature(ORIGIN, other.key_hash, good.signature)
    assert not accepts(SignedNote(note.text, (relabelled,)).render(), other.verifier_key())
    assert not ed25519_verify(other.public_key(), good.signature, note.text)


def test_another_name_fails() -> None:
    note = SignedNote.parse(SIGNED)
    assert not verify_note(note, "vir.example/other-log", SIGNER.public_key(), ed25519_verify)
    assert not accepts(SIGNED.replace(ORIGIN.encode() + b" ", b"other "), SIGNER.verifier_key())


def test_signer_refuses_another_logs_checkpoint() -> None:
    with pytest.raises(ValueError, match="origin"):
        SIGNER.sign(Checkpoint("vir.example/other-log", 1, bytes(32)))


@pytest.mark.parametrize("origin", ["", "has space", "a+b", "tab\there"])
def test_signer_refuses_an_origin_that_is_not_a_key_name(origin: str) -> None:
    with pytest.raises(ValueError, match="key name"):
        CheckpointSigner.from_seed(SEED, origin)


def test_signer_refuses_a_short_seed() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CheckpointSigner.from_seed(SEED[:31], ORIGIN)


@given(st.binary(max_size=40), st.binary(max_size=80), st.binary(max_size=20))
def test_ed25519_verify_never_raises(public_key: bytes, signature: bytes, message: bytes) -> None:
    assert ed25519_verify(public_key, signature, message) is False


def test_ed25519_verify_refuses_garbage_keys_quietly() -> None:
    note = SignedNote.parse(SIGNED)
    signature = note.signatures[0].signature
    assert ed25519_verify(SIGNER.public_key(), signature, note.text)
    for key in (b"", bytes(31), bytes(33), b"\xff" * 32, SIGNER.public_key()[:-1] + b"\x80"):
        assert ed25519_verify(key, signature, note.text) is False
    assert ed25519_verify(SIGNER.public_key(), signature[:-1], note.text) is False


# --- Known answers ---------------------------------------------------------------------
def test_peter_neumann_seed_gives_the_published_verifier_key() -> None:
    signer = CheckpointSigner.from_seed(_seed_from_signer_key(PETER_SKEY), "PeterNeumann")
    assert signer.verifier_key() == PETER_VKEY
    assert signer.key_hash.hex() == "c74f20a3"
    # Our signature over a checkpoint verifies under the published key.
    assert accepts(signer.sign(Checkpoint("PeterNeumann", 1, bytes(32))), PETER_VKEY)


def test_formats_test_seed_gives_the_published_verifier_key() -> None:
    signer = CheckpointSigner.from_seed(_seed_from_signer_key(FORMATS_LOG_SKEY), "Log")
    assert signer.verifier_key() == FORMATS_LOG_VKEY


def test_published_notes_verify() -> None:
    assert accepts(PETER_NOTE, PETER_VKEY)
    assert accepts(SUMDB_NOTE, SUMDB_VKEY)
    assert not accepts(PETER_NOTE.replace(b"cryptography", b"cryptographY"), PETER_VKEY)
    assert not accepts(SUMDB_NOTE.replace(b"6476701", b"6476702"), SUMDB_VKEY)
    assert not accepts(PETER_NOTE, SUMDB_VKEY)


# --- Key files -------------------------------------------------------------------------
def test_init_creates_a_private_key_once(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    path, created = init_signing_key(keys_dir)
    assert created and path == keys_dir / KEY_FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys_dir.stat().st_mode & 0o777 == 0o700
    before = path.read_text()
    assert len(before.strip()) == 64 and bytes.fromhex(before.strip())
    assert init_signing_key(keys_dir) == (path, False)
    assert path.read_text() == before
    first = load_signing_key(keys_dir, ORIGIN)
    assert load_signing_key(keys_dir, ORIGIN).public_key() == first.public_key()
    assert accepts(first.sign(Checkpoint(ORIGIN, 0, bytes(32))), first.verifier_key())


def test_init_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_text("not mine to replace\n")
    os.chmod(path, 0o600)
    assert init_signing_key(tmp_path) == (path, False)
    assert path.read_text() == "not mine to replace\n"


def test_two_inits_make_different_keys(tmp_path: Path) -> None:
    init_signing_key(tmp_path / "a")
    init_signing_key(tmp_path / "b")
    a = load_signing_key(tmp_path / "a", ORIGIN)
    b = load_signing_key(tmp_path / "b", ORIGIN)
    assert a.public_key() != b.public_key()


def test_missing_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="vir keys init"):
        load_signing_key(tmp_path / "nothing", ORIGIN)
    with pytest.raises(ConfigurationError, match="vir keys init"):
        load_signing_key(tmp_path, ORIGIN)


def _write(keys_dir: Path, content: bytes, mode: int = 0o600) -> Path:
    path = keys_dir / KEY_FILE_NAME
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o601, 0o620, 0o700 | 0o070])
def test_refuses_a_key_open_to_group_or_others(tmp_path: Path, mode: int) -> None:
    _write(tmp_path, SEED.hex().encode(), mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_signing_key(tmp_path, ORIGIN)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n",
        b"zz" * 32,
        SEED.hex()[:-1].encode(),
        SEED.hex().encode() + b"0",
        SEED.hex().encode() + b"00",
        " ".join(SEED.hex()[i : i + 2] for i in range(0, 64, 2)).encode(),
        b"\xff" * 64,
        base64.b64encode(SEED),
        SEED,
    ],
)
def test_refuses_a_malformed_key(tmp_path: Path, content: bytes) -> None:
    _write(tmp_path, content)
    with pytest.raises(ConfigurationError, match="vir keys init"):
        load_signing_key(tmp_path, ORIGIN)


@pytest.mark.parametrize(
    "seed",
    [
        bytes(32),
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
        _seed_from_signer_key(PETER_SKEY),
    ],
)
def test_refuses_a_published_test_key(tmp_path: Path, seed: bytes) -> None:
    _write(tmp_path, seed.hex().encode() + b"\n")
    with pytest.raises(ConfigurationError, match="published test key"):
        load_signing_key(tmp_path, ORIGIN)


def test_accepts_surrounding_whitespace_and_uppercase_hex(tmp_path: Path) -> None:
    _write(tmp_path, b"  " + SEED.hex().upper().encode() + b"\n\n")
    assert load_signing_key(tmp_path, ORIGIN).public_key() == SIGNER.public_key()


def test_refuses_a_directory_in_place_of_the_key(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).mkdir(mode=0o700)
    with pytest.raises(ConfigurationError, match="regular file"):
        load_signing_key(tmp_path, ORIGIN)


def test_refuses_an_origin_that_is_not_a_key_name(tmp_path: Path) -> None:
    init_signing_key(tmp_path)
    with pytest.raises(ConfigurationError, match="origin"):
        load_signing_key(tmp_path, "go.sum database tree")


# --- No key material in reprs ----------------------------------------------------------
def test_repr_shows_no_key_material(tmp_path: Path) -> None:
    init_signing_key(tmp_path)
    loaded = load_signing_key(tmp_path, ORIGIN)
    seed_hex = (tmp_path / KEY_FILE_NAME).read_text().strip()
    for signer, seed in ((SIGNER, SEED.hex()), (loaded, seed_hex)):
        public = signer.public_key()
        secrets_and_keys = [
            seed,
            seed.upper(),
            base64.b64encode(bytes.fromhex(seed)).decode(),
            public.hex(),
            base64.b64encode(public).decode(),
            base64.b64encode(b"\x01" + public).decode(),
            repr(bytes.fromhex(seed)),
            repr(public),
        ]
        for text in (repr(signer), str(signer), f"{signer}", f"{signer!r}"):
            assert ORIGIN in text
            for secret in secrets_and_keys:
                assert secret not in text
        assert not hasattr(signer, "__dict__")  # no attribute dump via vars()
