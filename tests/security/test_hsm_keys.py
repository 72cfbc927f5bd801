"""The key holder's keys in an HSM (SoftHSM2 here): OPRF key files wrapped by a token key
that never leaves the token, and the checkpoint key signing inside the token.

What must hold: no plain key material on disk once a key is wrapped or imported; a
restarted process (a new one) unwraps again; a wrong PIN refuses to start, saying so
without the PIN; a plain key is refused when an HSM is configured and a wrapped one when
none is; a wrapped file that was altered or moved to another epoch is refused.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.softhsm import HsmToken, session_softhsm, write_private

from vir.audit.checkpoint import Checkpoint, SignedNote, parse_verifier_key, verify_note
from vir.crypto import hsm, keys, oprf
from vir.crypto.hsm import Token
from vir.crypto.signing import (
    KEY_FILE_NAME,
    SIGNING_KEY_LABEL,
    ed25519_verify,
    import_signing_key,
    init_signing_key,
    load_signing_key,
)
from vir.domain.errors import ConfigurationError

ORIGIN = "vir.example/keyholder-log"


@pytest.fixture
def hsm_token(tmp_path_factory: pytest.TempPathFactory) -> HsmToken:
    return session_softhsm(tmp_path_factory).new_token()


@pytest.fixture
def token(hsm_token: HsmToken) -> Iterator[Token]:
    with hsm_token.open() as opened:
        yield opened


def leaks(keys_dir: Path, secret: bytes) -> list[str]:
    """Every file under ``keys_dir`` that holds ``secret`` in any spelling a grep finds."""
    spellings = [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.b64encode(secret.hex().encode() + b"\n")[:40],
    ]
    return [
        path.name
        for path in keys_dir.rglob("*")
        if path.is_file() and any(s in path.read_bytes() for s in spellings)
    ]


def plain_files(keys_dir: Path) -> list[str]:
    return sorted(p.name for p in keys_dir.iterdir() if p.name.endswith(".key"))


def write_plain(keys_dir: Path, epoch: int, text: str) -> Path:
    return write_private(keys_dir / f"oprf-epoch-{epoch}.key", text)


# --- Wrapped key files -----------------------------------------------------------------
def test_a_wrapped_keyring_round_trips_with_a_share_index(token: Token, tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    first, second = oprf.random_scalar(), oprf.random_scalar()
    path1 = keys.write_oprf_key(keys_dir, 1, first, token=token)
    path2 = keys.write_oprf_key(keys_dir, 2, second, share_index=3, token=token)
    assert (path1.name, path2.name) == ("oprf-epoch-1.key.wrapped", "oprf-epoch-2.key.wrapped")
    assert plain_files(keys_dir) == []
    for path in (path1, path2):
        assert path.stat().st_mode & 0o777 == 0o600
        base64.b64decode(path.read_bytes().strip(), validate=True)  # base64 text
    ring = keys.load_oprf_keyring(keys_dir, token=token)
    assert ring.current == keys.OprfKey(2, second, share_index=3)
    assert ring.get(1) == keys.OprfKey(1, first, share_index=None)
    assert ring.get(3) is None
    assert "share_index=3" in repr(ring.current) and second.hex() not in repr(ring)
    assert leaks(keys_dir, first) == [] and leaks(keys_dir, second) == []


def test_init_wraps_epoch_one_and_never_overwrites(token: Token, tmp_path: Path) -> None:
    path, created = keys.init_oprf_key(tmp_path, token=token)
    assert created and path.name == "oprf-epoch-1.key.wrapped"
    before = path.read_bytes()
    assert keys.init_oprf_key(tmp_path, token=token) == (path, False)
    assert keys.init_oprf_key(tmp_path) == (path, False)  # a key of any kind counts
    assert path.read_bytes() == before
    secret = keys.load_oprf_keyring(tmp_path, token=token).current.secret
    with pytest.raises(ConfigurationError, match="already exists"):
        keys.write_oprf_key(tmp_path, 1, oprf.random_scalar())  # the plain twin
    with pytest.raises(ConfigurationError, match="already exists"):
        keys.write_oprf_key(tmp_path, 1, oprf.random_scalar(), token=token)
    assert keys.load_oprf_keyring(tmp_path, token=token).current.secret == secret


def test_a_new_process_unwraps_again(
    hsm_token: HsmToken, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    secret = oprf.random_scalar()
    with hsm_token.open() as token:
        keys.write_oprf_key(tmp_path, 1, secret, share_index=7, token=token)
    program = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from vir.crypto.hsm import Token\n"
        "from vir.crypto.keys import load_oprf_keyring\n"
        "module, label, pin_file, keys_dir = map(Path, sys.argv[1:])\n"
        "with Token.open(module, str(label), pin_file) as token:\n"
        "    key = load_oprf_keyring(keys_dir, token=token).current\n"
        "print(hashlib.sha256(key.secret).hexdigest(), key.share_index)\n"
    )
    args = [hsm_token.module, hsm_token.label, hsm_token.pin_file, tmp_path]
    done = subprocess.run(
        [sys.executable, "-c", program, *map(str, args)],
        env=session_softhsm(tmp_path_factory).env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [hashlib.sha256(secret).hexdigest(), "7"]


def test_a_wrong_pin_refuses_to_start(hsm_token: HsmToken, tmp_path: Path) -> None:
    with hsm_token.open() as token:
        keys.init_oprf_key(tmp_path / "keys", token=token)
    wrong = write_private(tmp_path / "wrong.pin", hsm_token.so_pin + "\n")
    with pytest.raises(ConfigurationError) as info:
        Token.from_settings(hsm_token.module, hsm_token.label, wrong)
    message = str(info.value)
    assert message.startswith(f"the PIN in {wrong} is not accepted by token '{hsm_token.label}'")
    assert hsm_token.pin not in message and hsm_token.so_pin not in message


def test_a_readable_pin_file_refuses_to_start(hsm_token: HsmToken) -> None:
    hsm_token.pin_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        Token.from_settings(hsm_token.module, hsm_token.label, hsm_token.pin_file)


def test_import_leaves_no_plain_key_and_loads_the_same_secrets(
    token: Token, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    keys.init_oprf_key(keys_dir)
    share = oprf.random_scalar()
    keys.write_oprf_key(keys_dir, 2, share, share_index=2)
    before = keys.load_oprf_keyring(keys_dir)
    imported = keys.import_to_token(keys_dir, token)
    assert [p.name for p in imported] == ["oprf-epoch-1.key.wrapped", "oprf-epoch-2.key.wrapped"]
    assert plain_files(keys_dir) == []
    assert keys.load_oprf_keyring(keys_dir, token=token) == before
    for key in before.keys:
        assert leaks(keys_dir, key.secret) == []
    assert keys.import_to_token(keys_dir, token) == []  # nothing left to do


def test_import_resumes_after_a_crash_before_the_plain_file_went(
    token: Token, tmp_path: Path
) -> None:
    secret = oprf.random_scalar()
    plain = keys.write_oprf_key(tmp_path, 1, secret, share_index=1)
    # The crash: the wrapped twin was written and checked, the plain file not yet destroyed.
    keys.write_oprf_key(tmp_path / "elsewhere", 1, secret, share_index=1, token=token)
    twin = keys.wrapped_key_path(tmp_path, 1)
    os.replace(keys.wrapped_key_path(tmp_path / "elsewhere", 1), twin)
    assert plain.exists()
    assert keys.import_to_token(tmp_path, token) == [twin]
    assert plain_files(tmp_path) == []
    assert keys.load_oprf_keyring(tmp_path, token=token).current.secret == secret


def test_import_stops_when_the_twin_holds_another_key(token: Token, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    keys.write_oprf_key(tmp_path / "a", 1, oprf.random_scalar(), token=token)
    plain = keys.write_oprf_key(tmp_path, 1, oprf.random_scalar())
    os.replace(tmp_path / "a" / "oprf-epoch-1.key.wrapped", keys.wrapped_key_path(tmp_path, 1))
    with pytest.raises(ConfigurationError, match="does not hold the key in"):
        keys.import_to_token(tmp_path, token)
    assert plain.exists()  # nothing destroyed


def test_a_plain_key_is_refused_when_a_token_is_configured(token: Token, tmp_path: Path) -> None:
    keys.init_oprf_key(tmp_path)
    with pytest.raises(ConfigurationError, match=r"is not wrapped.*vir keyholder hsm-import"):
        keys.load_oprf_keyring(tmp_path, token=token)
    # Also beside wrapped keys of other epochs.
    keys.write_oprf_key(tmp_path, 2, oprf.random_scalar(), token=token)
    with pytest.raises(ConfigurationError, match="is not wrapped"):
        keys.load_oprf_keyring(tmp_path, token=token)


def test_a_wrapped_key_is_refused_without_a_token(token: Token, tmp_path: Path) -> None:
    keys.init_oprf_key(tmp_path, token=token)
    with pytest.raises(ConfigurationError) as info:
        keys.load_oprf_keyring(tmp_path)
    assert "is wrapped by an HSM" in str(info.value)
    assert "VIR_PKCS11_MODULE, VIR_PKCS11_TOKEN and VIR_PKCS11_PIN_FILE" in str(info.value)


@pytest.mark.parametrize("where", [0, 5, 20, -10, -3])
def test_a_tampered_wrapped_file_is_refused_without_leaking(
    token: Token, tmp_path: Path, where: int
) -> None:
    secret = oprf.random_scalar()
    path = keys.write_oprf_key(tmp_path, 1, secret, token=token)
    blob = bytearray(base64.b64decode(path.read_bytes()))
    blob[where] ^= 0x80
    path.write_bytes(base64.b64encode(bytes(blob)) + b"\n")
    with pytest.raises(ConfigurationError, match="does not unwrap with token") as info:
        keys.load_oprf_keyring(tmp_path, token=token)
    assert secret.hex() not in str(info.value) and info.value.__cause__ is None


@pytest.mark.parametrize("content", [b"", b"not base64!\n", b"AAAA\n", b"\xff\xfe"])
def test_a_malformed_wrapped_file_is_refused(token: Token, tmp_path: Path, content: bytes) -> None:
    write_private(tmp_path / "oprf-epoch-1.key.wrapped", "")
    (tmp_path / "oprf-epoch-1.key.wrapped").write_bytes(content)
    with pytest.raises(ConfigurationError, match="does not unwrap"):
        keys.load_oprf_keyring(tmp_path, token=token)


def test_a_wrapped_key_moved_to_another_epoch_is_refused(token: Token, tmp_path: Path) -> None:
    path = keys.write_oprf_key(tmp_path, 1, oprf.random_scalar(), token=token)
    path.rename(keys.wrapped_key_path(tmp_path, 2))
    with pytest.raises(ConfigurationError, match="does not unwrap"):
        keys.load_oprf_keyring(tmp_path, token=token)


def test_an_open_wrapped_file_is_refused(token: Token, tmp_path: Path) -> None:
    path = keys.write_oprf_key(tmp_path, 1, oprf.random_scalar(), token=token)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        keys.load_oprf_keyring(tmp_path, token=token)


def test_the_wrapped_plaintext_is_validated_like_a_plain_file(token: Token, tmp_path: Path) -> None:
    published = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"
    for text, match in (
        (published + "\n", "published test key"),
        ("00" * 32 + "\n", "not a valid ristretto255 scalar"),
        ("01" + "00" * 31 + "\nshare-index 0\n", "malformed second line"),
    ):
        blob = token.wrap(text.encode(), aad=b"vir oprf-epoch-1.key")
        path = write_private(tmp_path / "oprf-epoch-1.key.wrapped", base64.b64encode(blob).decode())
        with pytest.raises(ConfigurationError, match=match):
            keys.load_oprf_keyring(tmp_path, token=token)
        path.unlink()


def test_destroy_removes_plain_and_wrapped_keys(token: Token, tmp_path: Path) -> None:
    keys.write_oprf_key(tmp_path, 1, oprf.random_scalar())
    keys.write_oprf_key(tmp_path, 2, oprf.random_scalar(), token=token)
    assert keys.destroy_oprf_key(tmp_path, 1) is True
    assert keys.destroy_oprf_key(tmp_path, 2) is True
    assert keys.destroy_oprf_key(tmp_path, 2) is False
    assert keys.destroy_oprf_key(tmp_path, 3) is False
    assert list(tmp_path.iterdir()) == []


# --- Plain key files with a share index (what a wrapped file wraps) ---------------------
def test_plain_share_index_round_trip(tmp_path: Path) -> None:
    secret = oprf.random_scalar()
    path = keys.write_oprf_key(tmp_path, 4, secret, share_index=255)
    assert path.read_text() == f"{secret.hex()}\nshare-index 255\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.load_oprf_keyring(tmp_path).get(4) == keys.OprfKey(4, secret, 255)


@pytest.mark.parametrize(
    "second",
    ["share-index 0", "share-index 256", "share-index", "share-index x", "share 3", "3", "  "],
)
def test_a_malformed_share_line_is_refused(tmp_path: Path, second: str) -> None:
    write_plain(tmp_path, 1, "01" + "00" * 31 + "\n" + second + "\nshare-index 1\n")
    with pytest.raises(ConfigurationError):
        keys.load_oprf_keyring(tmp_path)
    write_plain(tmp_path, 1, "01" + "00" * 31 + "\n" + second + "\n")
    if second.strip():
        with pytest.raises(ConfigurationError, match="malformed second line"):
            keys.load_oprf_keyring(tmp_path)


def test_write_refuses_bad_input(tmp_path: Path) -> None:
    good = oprf.random_scalar()
    with pytest.raises(ConfigurationError, match="share index"):
        keys.write_oprf_key(tmp_path, 1, good, share_index=0)
    with pytest.raises(ConfigurationError, match="share index"):
        keys.write_oprf_key(tmp_path, 1, good, share_index=256)
    for bad in (bytes(32), b"\xff" * 32, good[:31]):
        with pytest.raises(ConfigurationError, match="not a valid ristretto255 scalar"):
            keys.write_oprf_key(tmp_path, 1, bad)
    with pytest.raises(ValueError, match="epoch"):
        keys.write_oprf_key(tmp_path, 0, good)
    assert list(tmp_path.iterdir()) == []


# --- The checkpoint key in the token ---------------------------------------------------
def test_the_token_key_signs_a_checkpoint_that_verifies(
    hsm_token: HsmToken, token: Token, tmp_path: Path
) -> None:
    keys_dir = tmp_path / "keys"
    with pytest.raises(ConfigurationError, match="vir keys init"):
        load_signing_key(keys_dir, ORIGIN, token=token)
    where, created = init_signing_key(keys_dir, token=token)
    assert created and str(where) == f"pkcs11:token={hsm_token.label};object={SIGNING_KEY_LABEL}"
    assert init_signing_key(keys_dir, token=token) == (where, False)
    assert not (keys_dir / KEY_FILE_NAME).exists()  # no key file at all
    signer = load_signing_key(keys_dir, ORIGIN, token=token)
    checkpoint = Checkpoint(ORIGIN, 42, bytes(range(32)))
    note = SignedNote.parse(signer.sign(checkpoint))
    name, public_key = parse_verifier_key(signer.verifier_key())
    assert public_key == token.ed25519_public_key(SIGNING_KEY_LABEL)
    assert verify_note(note, name, public_key, ed25519_verify)
    assert Checkpoint.parse_body(note.text) == checkpoint
    tampered = SignedNote(note.text.replace(b"\n42\n", b"\n43\n"), note.signatures)
    assert not verify_note(tampered, name, public_key, ed25519_verify)
    # Cosigning and raw signatures go through the token too.
    assert signer.cosign(signer.sign(checkpoint)) == signer.sign(checkpoint)
    assert ed25519_verify(public_key, signer.sign_bytes(b"rekey\n"), b"rekey\n")
    with pytest.raises(ValueError, match="sign\\(\\)"):
        signer.sign_bytes(checkpoint.body())
    # The private key never leaves the token.
    (private,) = [f for f in token.key_facts(SIGNING_KEY_LABEL) if f.object_class == "private"]
    assert private.sensitive and private.extractable is False and private.never_extractable
    assert "key_hash" in repr(signer) and hsm_token.pin not in repr(signer)


def test_the_token_key_survives_a_restart(
    hsm_token: HsmToken, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with hsm_token.open() as token:
        init_signing_key(tmp_path, token=token)
        before = load_signing_key(tmp_path, ORIGIN, token=token).verifier_key()
    session_softhsm(tmp_path_factory).restart()
    with hsm_token.open() as token:
        signer = load_signing_key(tmp_path, ORIGIN, token=token)
        assert signer.verifier_key() == before
        note = SignedNote.parse(signer.sign(Checkpoint(ORIGIN, 1, bytes(32))))
        assert verify_note(note, ORIGIN, parse_verifier_key(before)[1], ed25519_verify)


# --- Moving a checkpoint key file into the token -----------------------------------------
def _file_signer(keys_dir: Path) -> tuple[bytes, str]:
    """A checkpoint key file as ``vir keyholder init`` makes it without an HSM: its seed,
    and the verifier key witnesses have pinned."""
    init_signing_key(keys_dir)
    seed = bytes.fromhex((keys_dir / KEY_FILE_NAME).read_text().strip())
    return seed, load_signing_key(keys_dir, ORIGIN).verifier_key()


def test_an_imported_checkpoint_key_keeps_its_verifier_key_and_leaves_no_file(
    token: Token, tmp_path: Path
) -> None:
    seed, pinned = _file_signer(tmp_path)
    assert import_signing_key(tmp_path, token) is True
    assert not (tmp_path / KEY_FILE_NAME).exists()
    assert leaks(tmp_path, seed) == []
    signer = load_signing_key(tmp_path, ORIGIN, token=token)
    assert signer.verifier_key() == pinned  # the log's identity is unchanged
    note = SignedNote.parse(signer.sign(Checkpoint(ORIGIN, 7, bytes(range(32)))))
    assert verify_note(note, ORIGIN, parse_verifier_key(pinned)[1], ed25519_verify)
    # In the token: sensitive, not extractable, signing only; and it says it was once
    # outside (not "always sensitive", not "never extractable").
    (private,) = [f for f in token.key_facts(SIGNING_KEY_LABEL) if f.object_class == "private"]
    assert private.sensitive and private.extractable is False
    assert private.always_sensitive is False and private.never_extractable is False
    assert "sign" in private.usages and not private.usages & {"decrypt", "unwrap", "derive"}
    # init afterwards finds the key; nothing new is made.
    assert init_signing_key(tmp_path, token=token)[1] is False
    assert import_signing_key(tmp_path, token) is None  # no file: nothing to do


def test_an_import_run_again_after_a_crash_destroys_the_file_only(
    token: Token, tmp_path: Path
) -> None:
    _, pinned = _file_signer(tmp_path)
    text = (tmp_path / KEY_FILE_NAME).read_text()
    assert import_signing_key(tmp_path, token) is True
    write_private(tmp_path / KEY_FILE_NAME, text)  # as if killed before the file went
    assert import_signing_key(tmp_path, token) is False
    assert not (tmp_path / KEY_FILE_NAME).exists()
    assert load_signing_key(tmp_path, ORIGIN, token=token).verifier_key() == pinned
    assert len([f for f in token.key_facts(SIGNING_KEY_LABEL) if f.object_class == "private"]) == 1


def test_an_import_over_another_token_key_is_refused_and_keeps_the_file(
    token: Token, tmp_path: Path
) -> None:
    token.ensure_ed25519_key(SIGNING_KEY_LABEL)
    in_token = token.ed25519_public_key(SIGNING_KEY_LABEL)
    seed, _ = _file_signer(tmp_path)
    with pytest.raises(ConfigurationError, match="already holds another Ed25519 key") as refused:
        import_signing_key(tmp_path, token)
    assert seed.hex() not in str(refused.value)
    assert bytes.fromhex((tmp_path / KEY_FILE_NAME).read_text().strip()) == seed
    assert token.ed25519_public_key(SIGNING_KEY_LABEL) == in_token


@pytest.mark.parametrize("problem", ["published", "exposed", "malformed"])
def test_an_import_refuses_a_key_file_the_service_would_refuse(
    token: Token, tmp_path: Path, problem: str
) -> None:
    path = tmp_path / KEY_FILE_NAME
    if problem == "published":  # RFC 8032's first test key
        write_private(path, "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n")
    elif problem == "exposed":
        write_private(path, os.urandom(32).hex() + "\n", mode=0o644)
    else:
        write_private(path, "not a key\n")
    with pytest.raises(ConfigurationError):
        import_signing_key(tmp_path, token)
    assert path.exists()
    assert token.key_facts(SIGNING_KEY_LABEL) == ()


def test_a_checkpoint_key_file_beside_a_token_is_refused_until_imported(
    token: Token, tmp_path: Path
) -> None:
    _file_signer(tmp_path)
    for refused in (
        lambda: load_signing_key(tmp_path, ORIGIN, token=token),
        lambda: init_signing_key(tmp_path, token=token),
    ):
        with pytest.raises(ConfigurationError, match="vir keyholder hsm-import"):
            refused()
    assert token.key_facts(SIGNING_KEY_LABEL) == ()  # init made no second key


def test_wrap_nonces_come_from_the_token_too(token: Token, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the operating system's random source stuck, the token's still makes every
    nonce new (a repeated GCM nonce under one key would expose the wrapped keys)."""
    monkeypatch.setattr("vir.crypto.hsm.secrets.token_bytes", lambda n: bytes(n))
    secret = oprf.random_scalar()
    blobs = [token.wrap(secret, aad=b"ctx") for _ in range(16)]
    nonces = {blob[1 : 1 + hsm.NONCE_SIZE] for blob in blobs}
    assert len(nonces) == len(blobs)
    assert all(token.unwrap(blob, aad=b"ctx") == secret for blob in blobs)
