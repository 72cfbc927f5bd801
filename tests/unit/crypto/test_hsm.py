"""The PKCS#11 layer against a real SoftHSM2 token: wrapping, Ed25519 in the token, PINs."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11
from support.softhsm import HsmToken, session_softhsm, write_private

from vir.crypto import hsm
from vir.crypto.hsm import NONCE_SIZE, TAG_SIZE, WRAP_KEY_LABEL, Token
from vir.crypto.signing import ed25519_verify
from vir.domain.errors import ConfigurationError, CryptoError

SECRET = bytes(range(1, 33))
CONTEXT = b"test context"


@pytest.fixture
def hsm_token(tmp_path_factory: pytest.TempPathFactory) -> HsmToken:
    return session_softhsm(tmp_path_factory).new_token()


@pytest.fixture
def token(hsm_token: HsmToken) -> Iterator[Token]:
    with hsm_token.open() as opened:
        yield opened


def refuses(hsm_token: HsmToken, pin_file: Path, match: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError, match=match) as info:
        Token.open(hsm_token.module, hsm_token.label, pin_file)
    for secret in (hsm_token.pin, hsm_token.so_pin):
        assert secret not in str(info.value)
    return info.value


# --- Wrapping with the token AES key ---------------------------------------------------
def test_wrap_round_trip(token: Token) -> None:
    blob = token.wrap(SECRET, aad=CONTEXT)
    assert blob[0] == 1 and len(blob) == 1 + NONCE_SIZE + len(SECRET) + TAG_SIZE
    assert SECRET not in blob
    assert token.unwrap(blob, aad=CONTEXT) == SECRET
    # A fresh nonce each time: the same secret never wraps to the same blob.
    again = token.wrap(SECRET, aad=CONTEXT)
    assert again != blob and token.unwrap(again, aad=CONTEXT) == SECRET
    assert token.unwrap(token.wrap(b""), WRAP_KEY_LABEL) == b""


def test_the_aes_key_is_a_sensitive_non_extractable_token_object(
    hsm_token: HsmToken, token: Token
) -> None:
    token.wrap(SECRET)
    (facts,) = token.key_facts(WRAP_KEY_LABEL)
    assert (facts.object_class, facts.key_type, facts.on_token, facts.private) == (
        "secret",
        "AES",
        True,
        True,
    )
    assert facts.sensitive and facts.always_sensitive
    assert facts.extractable is False and facts.never_extractable
    assert facts.usages == {"encrypt", "decrypt"}
    token.close()
    # The same, read by python-pkcs11 directly, and the value itself cannot be read.
    with hsm_token.raw_session() as session:
        key = session.get_key(ObjectClass.SECRET_KEY, label=WRAP_KEY_LABEL)
        assert key[Attribute.VALUE_LEN] == 32
        assert key[Attribute.SENSITIVE] is True and key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.WRAP] is False and key[Attribute.UNWRAP] is False
        with pytest.raises(p11.AttributeSensitive):
            key[Attribute.VALUE]


def test_the_key_is_made_once_and_reused(token: Token) -> None:
    blobs = [token.wrap(SECRET) for _ in range(3)]
    assert len(token.key_facts(WRAP_KEY_LABEL)) == 1
    assert all(token.unwrap(blob) == SECRET for blob in blobs)


def test_a_restart_unwraps_again(
    hsm_token: HsmToken, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with hsm_token.open() as token:
        blob = token.wrap(SECRET, aad=CONTEXT)
    # C_Finalize + C_Initialize: the module reads the token back from its folder.
    session_softhsm(tmp_path_factory).restart()
    with hsm_token.open() as token:
        assert token.unwrap(blob, aad=CONTEXT) == SECRET


@pytest.mark.parametrize(
    "where",
    [0, 1, NONCE_SIZE, 1 + NONCE_SIZE, 1 + NONCE_SIZE + len(SECRET) - 1, -TAG_SIZE, -1],
    ids=["version", "nonce", "nonce-end", "ciphertext", "ciphertext-end", "tag", "tag-end"],
)
def test_a_tampered_blob_is_refused_opaquely(token: Token, where: int) -> None:
    blob = bytearray(token.wrap(SECRET, aad=CONTEXT))
    blob[where] ^= 0x01
    with pytest.raises(CryptoError) as info:
        token.unwrap(bytes(blob), aad=CONTEXT)
    assert str(info.value) == "cryptographic operation failed"
    # Nothing of the module's answer is chained on for a traceback to show.
    error = info.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_a_short_blob_another_context_or_key_is_refused(
    token: Token, tmp_path_factory: pytest.TempPathFactory
) -> None:
    blob = token.wrap(SECRET, aad=CONTEXT)
    for bad in (b"", blob[:1], blob[: 1 + NONCE_SIZE + TAG_SIZE - 1], blob[:-1]):
        with pytest.raises(CryptoError):
            token.unwrap(bad, aad=CONTEXT)
    with pytest.raises(CryptoError):
        token.unwrap(blob, aad=b"another context")
    token.wrap(SECRET, label="another-key")
    with pytest.raises(CryptoError):
        token.unwrap(blob, label="another-key", aad=CONTEXT)
    with pytest.raises(ConfigurationError, match="no AES key labelled 'absent'"):
        token.unwrap(blob, label="absent", aad=CONTEXT)
    # Another token's key of the same label is another key.
    other = session_softhsm(tmp_path_factory).new_token()
    token.close()  # new_token restarted the module: this session is gone
    with other.open() as second:
        second.wrap(SECRET)
        with pytest.raises(CryptoError):
            second.unwrap(blob, aad=CONTEXT)


# --- Opening: module, token, PIN -------------------------------------------------------
def test_a_wrong_pin_is_refused_clearly(hsm_token: HsmToken, tmp_path: Path) -> None:
    wrong = write_private(tmp_path / "wrong.pin", "0000" + hsm_token.pin[4:] + "\n")
    error = refuses(hsm_token, wrong, "is not accepted by token")
    assert str(wrong) in str(error) and f"'{hsm_token.label}'" in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    # Also while this process is logged in to the token already.
    with hsm_token.open():
        refuses(hsm_token, wrong, "is not accepted by token")
        with hsm_token.open() as second:  # the right PIN shares the session
            assert second.unwrap(second.wrap(SECRET)) == SECRET


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o601, 0o620, 0o700 | 0o070])
def test_a_pin_file_open_to_group_or_others_is_refused(hsm_token: HsmToken, mode: int) -> None:
    hsm_token.pin_file.chmod(mode)
    refuses(hsm_token, hsm_token.pin_file, "chmod 600")


@pytest.mark.parametrize("content", [b"", b"\n", b"\xff\xfe\n", b"1234\n5678\n"])
def test_an_empty_or_malformed_pin_file_is_refused(
    hsm_token: HsmToken, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "pin"
    path.write_bytes(content)
    path.chmod(0o600)
    refuses(hsm_token, path, "PIN file")


def test_a_missing_pin_file_says_how_to_make_one(hsm_token: HsmToken, tmp_path: Path) -> None:
    refuses(hsm_token, tmp_path / "absent.pin", "does not exist.*chmod 600")
    (tmp_path / "dir.pin").mkdir(mode=0o700)
    refuses(hsm_token, tmp_path / "dir.pin", "not a regular file")


def test_the_pin_may_end_in_a_newline_or_not(hsm_token: HsmToken, tmp_path: Path) -> None:
    for text in (hsm_token.pin, hsm_token.pin + "\r\n"):
        path = write_private(tmp_path / "pin", text)
        Token.open(hsm_token.module, hsm_token.label, path).close()


def test_a_missing_or_unloadable_module_is_refused(hsm_token: HsmToken, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"does not exist.*VIR_PKCS11_MODULE"):
        Token.open(tmp_path / "libnothing.so", hsm_token.label, hsm_token.pin_file)
    not_a_library = write_private(tmp_path / "libfake.so", "not a shared object\n")
    with pytest.raises(ConfigurationError, match="could not be loaded as a PKCS#11 module"):
        Token.open(not_a_library, hsm_token.label, hsm_token.pin_file)


def test_an_unknown_token_label_is_refused(hsm_token: HsmToken) -> None:
    with pytest.raises(ConfigurationError) as info:
        Token.open(hsm_token.module, "no-such-token", hsm_token.pin_file)
    message = str(info.value)
    assert "no token labelled 'no-such-token'" in message and "VIR_PKCS11_TOKEN" in message
    assert f"'{hsm_token.label}'" in message  # the labels it does have
    assert hsm_token.pin not in message


@pytest.mark.parametrize("looks_again", [True, False])
def test_a_token_the_module_has_not_read_yet_is_looked_for_again(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, looks_again: bool
) -> None:
    """SoftHSM2 reads its token files when initialised: a token made (or being
    rewritten by another process) after that is missing from the slot list until the
    module is initialised again, which ``Token.open`` does before it gives up."""
    softhsm = session_softhsm(tmp_path_factory)
    softhsm.restart()
    unseen = softhsm.new_token(restart=False)
    if not looks_again:
        monkeypatch.setattr(hsm, "FIND_TOKEN_PAUSES", ())
        refuses(unseen, unseen.pin_file, f"no token labelled '{unseen.label}'")
        return
    with Token.open(unseen.module, unseen.label, unseen.pin_file) as opened:
        assert opened.unwrap(opened.wrap(SECRET, aad=CONTEXT), aad=CONTEXT) == SECRET


def test_processes_open_the_token_one_at_a_time(hsm_token: HsmToken) -> None:
    """SoftHSM2 reads the token's files to list it and at each login, and a login
    rewrites them: workers starting together read each other's half-written file
    ("no user PIN", CKR_GENERAL_ERROR in CI). Token.open holds a lock on the PIN file,
    which every process opening the token reads, while it finds the token and logs in:
    here another open description of the file holds it, as a sibling process would."""
    opened: list[Token] = []
    descriptor = os.open(hsm_token.pin_file, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        opener = threading.Thread(
            target=lambda: opened.append(
                Token.open(hsm_token.module, hsm_token.label, hsm_token.pin_file)
            )
        )
        opener.start()
        opener.join(0.5)
        assert opener.is_alive() and not opened  # waits for the sibling's login
    finally:
        os.close(descriptor)
    opener.join(10)
    assert len(opened) == 1
    with opened[0] as token:
        assert token.unwrap(token.wrap(SECRET, aad=CONTEXT), aad=CONTEXT) == SECRET


def test_a_locked_pin_is_reported(hsm_token: HsmToken, monkeypatch: pytest.MonkeyPatch) -> None:
    # SoftHSM2 never locks a PIN, so the module's answer is simulated.
    def locked(token: object, pin: str) -> pkcs11.Session:
        raise p11.PinLocked()

    monkeypatch.setattr(hsm, "_open_session", locked)
    refuses(hsm_token, hsm_token.pin_file, "locked its user PIN.*security officer")


def test_from_settings(hsm_token: HsmToken) -> None:
    assert Token.from_settings(None, None, None) is None
    assert Token.from_settings(None, "", None) is None
    partial = [
        (hsm_token.module, None, None),
        (None, hsm_token.label, None),
        (None, None, hsm_token.pin_file),
        (hsm_token.module, hsm_token.label, None),
        (hsm_token.module, None, hsm_token.pin_file),
    ]
    for module, label, pin_file in partial:
        with pytest.raises(ConfigurationError, match="needs all of VIR_PKCS11_MODULE") as info:
            Token.from_settings(module, label, pin_file)
        assert "not set" in str(info.value)
    token = Token.from_settings(hsm_token.module, hsm_token.label, hsm_token.pin_file)
    assert token is not None
    with token:
        assert token.label == hsm_token.label


def test_repr_and_close(hsm_token: HsmToken) -> None:
    token = hsm_token.open()
    text = repr(token)
    assert hsm_token.label in text and hsm_token.pin not in text and "open" in text
    assert not hasattr(token, "__dict__")
    token.close()
    token.close()  # harmless
    assert "closed" in repr(token)
    with pytest.raises(ConfigurationError, match="is closed"):
        token.wrap(SECRET)
    # Closing the last Token logged out: a session of our own can log in again.
    hsm_token.raw_session().close()


# --- Ed25519 in the token --------------------------------------------------------------
def test_ed25519_key_pair_signs_inside_the_token(hsm_token: HsmToken, token: Token) -> None:
    with pytest.raises(ConfigurationError, match=r"no Ed25519 key pair labelled 'log'.*keys init"):
        token.ed25519_public_key("log")
    public_key = token.ed25519_public_key("log", create=True)
    assert len(public_key) == 32
    assert token.ensure_ed25519_key("log") == (public_key, False)
    assert token.ed25519_public_key("log") == public_key
    signature = token.ed25519_sign("log", b"message")
    assert len(signature) == 64
    assert ed25519_verify(public_key, signature, b"message")
    assert not ed25519_verify(public_key, signature, b"massage")
    # RFC 8032 signatures are deterministic, as a software key's are.
    assert token.ed25519_sign("log", b"message") == signature
    facts = {f.object_class: f for f in token.key_facts("log")}
    assert facts.keys() == {"private", "public"}
    private = facts["private"]
    assert private.key_type == "EC_EDWARDS" and private.on_token and private.private
    assert private.sensitive and private.extractable is False and private.never_extractable
    assert private.usages == {"sign"}
    token.close()
    with hsm_token.raw_session() as session:
        key = session.get_key(ObjectClass.PRIVATE_KEY, label="log")
        assert key[Attribute.EXTRACTABLE] is False and key[Attribute.SENSITIVE] is True
        with pytest.raises(p11.AttributeSensitive):
            key[Attribute.VALUE]


def test_signing_from_many_threads(token: Token) -> None:
    public_key = token.ed25519_public_key("log", create=True)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                message = f"{n}-{i}".encode()
                assert ed25519_verify(public_key, token.ed25519_sign("log", message), message)
                assert token.unwrap(token.wrap(message)) == message
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_token_listing_that_fails_now_and_then_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SoftHSM2 fails a listing with GeneralError while another process writes a
    token's files (seen once in make test, starting a holder beside others): listed
    again after a pause; a module that keeps failing is one line, not a traceback."""
    monkeypatch.setattr(hsm.time, "sleep", lambda _s: None)

    class Lib:
        def __init__(self, failures: int) -> None:
            self.failures = failures
            self.reinitialized = 0

        def get_tokens(self, token_label: str) -> list[str]:
            if self.failures:
                self.failures -= 1
                raise p11.GeneralError()
            return [token_label]

        def reinitialize(self) -> None:
            self.reinitialized += 1

    flaky = Lib(failures=2)
    assert hsm._find_token(flaky, Path("m.so"), "vir", may_reinitialize=True) == "vir"
    assert flaky.reinitialized == 2
    broken = Lib(failures=100)
    with pytest.raises(ConfigurationError, match="could not list its tokens"):
        hsm._find_token(broken, Path("m.so"), "vir", may_reinitialize=True)
    with pytest.raises(ConfigurationError, match="could not list its tokens"):
        hsm._find_token(Lib(failures=1), Path("m.so"), "vir", may_reinitialize=False)
