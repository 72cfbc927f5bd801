"""Keys held in an HSM through PKCS#11: a token AES key that wraps key files, and token
Ed25519 keys that sign inside the token.

Files stay the default. With ``VIR_PKCS11_MODULE`` (the vendor's PKCS#11 library),
``VIR_PKCS11_TOKEN`` (the token label) and ``VIR_PKCS11_PIN_FILE`` (a 0600 file holding the
user PIN) the key holder keeps its OPRF key wrapped by an AES-256 key that never leaves the
token (unwrapped into memory only at start) and signs audit checkpoints with CKM_EDDSA.

A wrapped blob is self-describing::

    version (1 byte, 0x01) ‖ nonce (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)

where the nonce is drawn from the token's random generator (mixed with the operating
system's),

with the version byte and a caller-chosen context (``aad``) as additional authenticated
data, so a blob made for one purpose (one key file) does not unwrap as another.

Nothing here puts a PIN, key bytes or plaintext in an exception message, a log line or a
repr. Every call into the library holds one process-wide lock: python-pkcs11 initialises
the module with ``C_Initialize(NULL)``, which tells it the application will not call it from
several threads at once, and the service signs from a worker thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pkcs11
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from vir.domain.errors import ConfigurationError, CryptoError

WRAP_KEY_LABEL = "vir-oprf-wrap"
WRAP_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
ED25519_PUBLIC_KEY_SIZE = 32
ED25519_SEED_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
_ED25519_OID = "1.3.101.112"  # RFC 8410 id-Ed25519, as EC_PARAMS of a CKK_EC_EDWARDS key
_HEADER = bytes([WRAP_VERSION])
_ENV_HINT = "VIR_PKCS11_MODULE, VIR_PKCS11_TOKEN and VIR_PKCS11_PIN_FILE"

# One lock for every call into any PKCS#11 module of this process (see the module docstring).
_LIBRARY_LOCK = threading.RLock()
# One logged-in session per token per process: PKCS#11 login state belongs to the
# application, not the session, so a second C_Login on the same token fails with
# USER_ALREADY_LOGGED_IN without checking the PIN. Sharing the session (and comparing the
# PIN with the one that logged it in) keeps a wrong PIN refused even then.
_CONNECTIONS: dict[tuple[str, int], _Connection] = {}
# Salt for the in-memory PIN digest above; never stored.
_PIN_SALT = secrets.token_bytes(32)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What a token says about one of its key objects: its security attributes, no values."""

    object_class: str  # "secret", "private" or "public"
    key_type: str  # "AES", "EC_EDWARDS", ...
    on_token: bool  # CKA_TOKEN: persistent, not a session object
    private: bool  # CKA_PRIVATE: visible only after login
    sensitive: bool | None  # CKA_SENSITIVE (None for a public key)
    extractable: bool | None  # CKA_EXTRACTABLE (None for a public key)
    always_sensitive: bool | None
    never_extractable: bool | None
    usages: frozenset[str]  # of encrypt, decrypt, sign, verify, wrap, unwrap, derive


class _Connection:
    __slots__ = ("label", "pin_digest", "references", "session")

    def __init__(self, session: pkcs11.Session, label: str, pin_digest: bytes) -> None:
        self.session = session
        self.label = label
        self.pin_digest = pin_digest
        self.references = 1


class Token:
    """A logged-in PKCS#11 token. Open with :meth:`open` or :meth:`from_settings`; close it
    (or use it as a context manager) when done. Safe to share between threads."""

    __slots__ = ("_closed", "_key", "_label", "_module")

    def __init__(self, module: Path, label: str, key: tuple[str, int]) -> None:
        # Use Token.open: this constructor assumes the connection is already registered.
        self._module = module
        self._label = label
        self._key = key
        self._closed = False

    # --- opening and closing --------------------------------------------------------------
    @classmethod
    def open(cls, module: Path, token_label: str, pin_file: Path) -> Token:
        """Load ``module``, find the token labelled ``token_label`` and log in with the PIN
        in ``pin_file``; refuse with a :class:`ConfigurationError` that says how to fix it."""
        if not token_label:
            raise ConfigurationError("VIR_PKCS11_TOKEN is empty; set it to the token's label")
        if not module.is_file():
            raise ConfigurationError(
                f"PKCS#11 module {module} does not exist; install the HSM's PKCS#11 library "
                "or correct VIR_PKCS11_MODULE"
            )
        pin = _read_pin(pin_file)
        with _LIBRARY_LOCK, _opening_alone(pin_file):
            try:
                lib = pkcs11.lib(str(module))
            except p11.PKCS11Error:
                raise ConfigurationError(
                    f"{module} could not be loaded as a PKCS#11 module (not a PKCS#11 "
                    "library, built for another platform, or its configuration is missing); "
                    "correct VIR_PKCS11_MODULE"
                ) from None
            resolved = str(module.resolve())
            alone = not any(key[0] == resolved for key in _CONNECTIONS)
            token = _find_token(lib, module, token_label, may_reinitialize=alone)
            flags = TokenFlag(token.flags)
            if TokenFlag.TOKEN_INITIALIZED not in flags:
                raise ConfigurationError(
                    f"token '{token_label}' is not initialised; initialise it with the HSM's "
                    "tools (SoftHSM2: softhsm2-util --init-token)"
                )
            if TokenFlag.USER_PIN_LOCKED in flags:
                raise ConfigurationError(_locked_message(token_label))
            if TokenFlag.USER_PIN_INITIALIZED not in flags:
                raise ConfigurationError(_no_user_pin_message(token_label))
            key = (resolved, int(token.slot.slot_id))
            digest = _pin_digest(pin)
            connection = _CONNECTIONS.get(key)
            if connection is not None:
                if not hmac.compare_digest(connection.pin_digest, digest):
                    raise ConfigurationError(_wrong_pin_message(pin_file, token_label))
                connection.references += 1
            else:
                session = _login(token, pin, pin_file, token_label)
                _CONNECTIONS[key] = _Connection(session, token_label, digest)
        return cls(module, token_label, key)

    @classmethod
    def from_settings(
        cls, module: Path | None, token_label: str | None, pin_file: Path | None
    ) -> Token | None:
        """The configured token, or None when no PKCS#11 module is configured (key files)."""
        given = {
            "VIR_PKCS11_MODULE": module is not None,
            "VIR_PKCS11_TOKEN": bool(token_label),
            "VIR_PKCS11_PIN_FILE": pin_file is not None,
        }
        if not any(given.values()):
            return None
        if not all(given.values()):
            missing = ", ".join(name for name, present in given.items() if not present)
            raise ConfigurationError(
                f"an HSM needs all of {_ENV_HINT}; {missing} not set (set all three, or "
                "none to keep keys in files)"
            )
        assert module is not None and token_label and pin_file is not None
        return cls.open(module, token_label, pin_file)

    def close(self) -> None:
        """Log out and close the session once no other :class:`Token` of this process uses
        it. Closing twice is harmless."""
        with _LIBRARY_LOCK:
            if self._closed:
                return
            self._closed = True
            connection = _CONNECTIONS.get(self._key)
            if connection is None:
                return
            connection.references -= 1
            if connection.references == 0:
                del _CONNECTIONS[self._key]
                # The session may already be gone (module finalised, token removed).
                with contextlib.suppress(p11.PKCS11Error):
                    connection.session.close()

    def __enter__(self) -> Token:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def label(self) -> str:
        return self._label

    @property
    def module(self) -> Path:
        return self._module

    def __repr__(self) -> str:  # never a PIN, a handle or key material
        state = "closed" if self._closed else "open"
        return f"Token(label={self._label!r}, module={str(self._module)!r}, {state})"

    # --- wrapping with the token AES key --------------------------------------------------
    def wrap(self, secret: bytes, label: str = WRAP_KEY_LABEL, aad: bytes = b"") -> bytes:
        """AES-256-GCM encryption of ``secret`` inside the token with the AES key ``label``,
        created on first use (a token object: sensitive, never extractable, ENCRYPT and
        DECRYPT only). ``aad`` binds the blob to its purpose; give the same to unwrap."""

        def encrypt(session: pkcs11.Session) -> bytes:
            key = self._aes_key(session, label, create=True)
            nonce = _nonce(session)
            params = pkcs11.GCMParams(nonce, _HEADER + aad, TAG_SIZE * 8)
            sealed = key.encrypt(secret, mechanism=Mechanism.AES_GCM, mechanism_param=params)
            return nonce + bytes(sealed)

        return _HEADER + self._run(encrypt, f"encrypting with token key '{label}'")

    def unwrap(self, blob: bytes, label: str = WRAP_KEY_LABEL, aad: bytes = b"") -> bytes:
        """The secret in ``blob``. Raises :class:`CryptoError` (which check failed is not
        said) when the blob was altered, has another ``aad`` or was made with another key,
        and :class:`ConfigurationError` when the token has no AES key ``label``."""
        if len(blob) < 1 + NONCE_SIZE + TAG_SIZE or blob[:1] != _HEADER:
            raise CryptoError()
        nonce, sealed = blob[1 : 1 + NONCE_SIZE], blob[1 + NONCE_SIZE :]
        params = pkcs11.GCMParams(nonce, _HEADER + aad, TAG_SIZE * 8)

        def decrypt(session: pkcs11.Session) -> bytes:
            key = self._aes_key(session, label, create=False)
            try:
                return bytes(
                    key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=params)
                )
            except p11.PKCS11Error:
                # Modules report a failed tag check differently (SoftHSM2: GeneralError).
                raise CryptoError() from None

        return self._run(decrypt, f"decrypting with token key '{label}'")

    def _aes_key(self, session: pkcs11.Session, label: str, *, create: bool) -> Any:
        found = _find(session, ObjectClass.SECRET_KEY, label)
        if not found:
            if not create:
                raise ConfigurationError(
                    f"token '{self._label}' has no AES key labelled '{label}'; the wrapped "
                    "file was made with another token (or the key was deleted): configure "
                    "that token, or restore the key files from a backup"
                )
            return session.generate_key(
                KeyType.AES,
                256,
                label=label,
                store=True,
                # ENCRYPT and DECRYPT only; every other capability false.
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.MODIFIABLE: False,
                },
            )
        key = _only(found, self._label, label)
        facts = _facts(key)
        if facts.key_type != "AES" or not facts.sensitive or facts.extractable:
            raise ConfigurationError(
                f"token key '{label}' on token '{self._label}' is not a sensitive, "
                "non-extractable AES key; vir refuses to wrap keys with it"
            )
        return key

    # --- Ed25519 in the token -------------------------------------------------------------
    def ensure_ed25519_key(self, label: str) -> tuple[bytes, bool]:
        """(public key, created): the Ed25519 key pair ``label``, generated as token objects
        (private key sensitive, never extractable, SIGN only) when there is none."""

        def ensure(session: pkcs11.Session) -> tuple[bytes, bool]:
            if _find(session, ObjectClass.PUBLIC_KEY, label) or _find(
                session, ObjectClass.PRIVATE_KEY, label
            ):
                return self._ed25519_public(session, label), False
            session.generate_keypair(
                KeyType.EC_EDWARDS,
                label=label,
                id=label.encode(),
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.EC_PARAMS: encode_named_curve_parameters(_ED25519_OID),
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: False,
                },
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
            return self._ed25519_public(session, label), True

        return self._run(ensure, f"creating Ed25519 key '{label}'")

    def import_ed25519_key(self, label: str, seed: bytes) -> bool:
        """Store the Ed25519 key whose 32-byte private key is ``seed`` as the token's key
        pair ``label`` (private key sensitive, not extractable, SIGN only), so that a key
        that has signed from a file goes on signing, with the same public key, inside the
        token. True when stored; False when the token already holds this very key (an
        import run again). Refuses another key under ``label``, and checks that the token
        signs with the key before answering.

        The token reports the imported private key as not always sensitive and not never
        extractable: it once was a file, and PKCS#11 says so."""
        if len(seed) != ED25519_SEED_SIZE:
            raise CryptoError()
        file_key = Ed25519PrivateKey.from_private_bytes(seed)
        public = file_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

        def store(session: pkcs11.Session) -> bool:
            if _find(session, ObjectClass.PUBLIC_KEY, label) or _find(
                session, ObjectClass.PRIVATE_KEY, label
            ):
                if not hmac.compare_digest(self._ed25519_public(session, label), public):
                    raise ConfigurationError(
                        f"token '{self._label}' already holds another Ed25519 key labelled "
                        f"'{label}'; the log can be signed by one key only: keep the file "
                        "(and remove the token's key with the HSM's tools) or keep the token's"
                    )
                self._ed25519_private(session, label)  # the pair is whole
                return False
            params = encode_named_curve_parameters(_ED25519_OID)
            common = {
                Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
                Attribute.TOKEN: True,
                Attribute.LABEL: label,
                Attribute.ID: label.encode(),
                Attribute.EC_PARAMS: params,
            }
            private: Any = session.create_object(
                common
                | {
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    # SIGN only: modules default the others to true (SoftHSM2 does).
                    Attribute.SIGN_RECOVER: False,
                    Attribute.DECRYPT: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                    Attribute.VALUE: seed,
                }
            )
            stored = [private]
            try:
                stored.append(
                    session.create_object(
                        common
                        | {
                            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                            Attribute.PRIVATE: False,
                            Attribute.VERIFY: True,
                            Attribute.VERIFY_RECOVER: False,
                            Attribute.ENCRYPT: False,
                            Attribute.WRAP: False,
                            Attribute.DERIVE: False,
                            Attribute.EC_POINT: b"\x04\x20" + public,  # DER OCTET STRING
                        }
                    )
                )
                probe = secrets.token_bytes(32)
                signed = bytes(private.sign(probe, mechanism=Mechanism.EDDSA))
                file_key.public_key().verify(signed, probe)
            except (p11.PKCS11Error, InvalidSignature):
                for made in stored:
                    made.destroy()
                raise ConfigurationError(
                    f"token '{self._label}' did not sign with the imported Ed25519 key "
                    f"'{label}'; nothing was kept in the token and the key file is untouched"
                ) from None
            return True

        return self._run(store, f"importing Ed25519 key '{label}'")

    def ed25519_public_key(self, label: str, create: bool = False) -> bytes:
        """The 32-byte raw public key of the token's Ed25519 key pair ``label``; generates
        the pair when ``create`` and there is none, else refuses a missing one."""
        if create:
            return self.ensure_ed25519_key(label)[0]
        return self._run(
            lambda session: self._ed25519_public(session, label),
            f"reading Ed25519 key '{label}'",
        )

    def ed25519_sign(self, label: str, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature over ``message``, made inside the token (CKM_EDDSA)."""

        def sign(session: pkcs11.Session) -> bytes:
            key = self._ed25519_private(session, label)
            try:
                signature = bytes(key.sign(message, mechanism=Mechanism.EDDSA))
            except p11.PKCS11Error:
                raise CryptoError() from None
            if len(signature) != ED25519_SIGNATURE_SIZE:
                raise CryptoError()
            return signature

        return self._run(sign, f"signing with Ed25519 key '{label}'")

    def _ed25519_public(self, session: pkcs11.Session, label: str) -> bytes:
        found = _find(session, ObjectClass.PUBLIC_KEY, label)
        if not found:
            raise ConfigurationError(self._missing_ed25519(label))
        key = _only(found, self._label, label)
        if key[Attribute.KEY_TYPE] != KeyType.EC_EDWARDS:
            raise ConfigurationError(
                f"token key '{label}' on token '{self._label}' is not an Ed25519 key"
            )
        # CKA_EC_POINT is a DER OCTET STRING (04 20 ‖ key) in PKCS#11 3.0; some modules give
        # the 32 raw bytes.
        point = bytes(key[Attribute.EC_POINT])
        if len(point) == 2 + ED25519_PUBLIC_KEY_SIZE and point[:2] == b"\x04\x20":
            point = point[2:]
        if len(point) != ED25519_PUBLIC_KEY_SIZE:
            raise ConfigurationError(
                f"token key '{label}' on token '{self._label}' is not an Ed25519 key "
                "(Ed448 or another curve)"
            )
        return point

    def _ed25519_private(self, session: pkcs11.Session, label: str) -> Any:
        found = _find(session, ObjectClass.PRIVATE_KEY, label)
        if not found:
            raise ConfigurationError(self._missing_ed25519(label))
        key = _only(found, self._label, label)
        if key[Attribute.KEY_TYPE] != KeyType.EC_EDWARDS:
            raise ConfigurationError(
                f"token key '{label}' on token '{self._label}' is not an Ed25519 key"
            )
        return key

    def _missing_ed25519(self, label: str) -> str:
        return (
            f"token '{self._label}' has no Ed25519 key pair labelled '{label}'; create it "
            f"with: vir keys init (with {_ENV_HINT} set)"
        )

    # --- inspection -----------------------------------------------------------------------
    def key_facts(self, label: str) -> tuple[KeyFacts, ...]:
        """The security attributes of every key object labelled ``label`` (never values)."""

        def read(session: pkcs11.Session) -> tuple[KeyFacts, ...]:
            found: list[Any] = []
            for object_class in (
                ObjectClass.SECRET_KEY,
                ObjectClass.PRIVATE_KEY,
                ObjectClass.PUBLIC_KEY,
            ):
                found.extend(_find(session, object_class, label))
            return tuple(_facts(key) for key in found)

        return self._run(read, f"reading key '{label}'")

    # --- plumbing -------------------------------------------------------------------------
    def _run(self, operation: Callable[[pkcs11.Session], _T], what: str) -> _T:
        with _LIBRARY_LOCK:
            connection = _CONNECTIONS.get(self._key)
            if self._closed or connection is None:
                raise ConfigurationError(f"token '{self._label}' is closed")
            try:
                return operation(connection.session)
            except p11.MultipleObjectsReturned:
                raise ConfigurationError(
                    f"token '{self._label}' holds more than one object for {what}; remove "
                    "the duplicates with the HSM's tools"
                ) from None
            except (p11.DeviceRemoved, p11.TokenNotPresent, p11.SessionClosed):
                raise ConfigurationError(
                    f"token '{self._label}' is no longer available ({what}); check the HSM "
                    "and restart the service"
                ) from None
            except p11.PKCS11Error as error:
                # The class name says what the module refused; it holds no key material.
                raise ConfigurationError(
                    f"token '{self._label}' refused {what} (PKCS#11 {type(error).__name__})"
                ) from None


def _nonce(session: pkcs11.Session) -> bytes:
    """A GCM nonce from the token's random generator, mixed (XOR) with the operating
    system's: unpredictable if either source is, and drawn where the key lives."""
    drawn = bytes(session.generate_random(NONCE_SIZE * 8))
    if len(drawn) != NONCE_SIZE:
        raise CryptoError()
    local = secrets.token_bytes(NONCE_SIZE)
    return bytes(a ^ b for a, b in zip(drawn, local, strict=True))


def _read_pin(pin_file: Path) -> str:
    try:
        mode = pin_file.stat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(
            f"PIN file {pin_file} does not exist; write the token's user PIN to it and run: "
            f"chmod 600 {pin_file}"
        ) from None
    except OSError:
        raise ConfigurationError(f"PIN file {pin_file} cannot be read") from None
    if not stat.S_ISREG(mode):
        raise ConfigurationError(f"PIN file {pin_file} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"PIN file {pin_file} is accessible by group or others; run: chmod 600 {pin_file}"
        )
    try:
        text = pin_file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigurationError(f"PIN file {pin_file} cannot be read as UTF-8 text") from None
    pin = text.strip("\r\n")  # a trailing newline from an editor or echo is not the PIN's
    if not pin or "\n" in pin:
        raise ConfigurationError(
            f"PIN file {pin_file} must hold the token's user PIN on one line, and nothing else"
        )
    return pin


def _pin_digest(pin: str) -> bytes:
    return hashlib.sha256(_PIN_SALT + pin.encode("utf-8")).digest()


def _wrong_pin_message(pin_file: Path, token_label: str) -> str:
    return (
        f"the PIN in {pin_file} is not accepted by token '{token_label}'; write the token's "
        "user PIN to that file (repeated wrong PINs may lock the token)"
    )


def _no_user_pin_message(token_label: str) -> str:
    return (
        f"token '{token_label}' has no user PIN yet; the security officer must set one "
        "(C_InitPIN) before vir can log in"
    )


def _locked_message(token_label: str) -> str:
    return (
        f"token '{token_label}' has locked its user PIN after too many wrong PINs; the "
        "security officer must unlock it (set a new user PIN) before vir can start"
    )


# SoftHSM2 reads its token files once, when the library is initialised, and leaves
# out a token whose files another process is rewriting at that moment (a sibling
# worker logging in to the same token). A token not found is therefore looked for
# again, the library initialised anew, after these pauses (seconds); only while this
# process has no session open on the module, which re-initialising would close.
FIND_TOKEN_PAUSES = (0.05, 0.2, 0.5)


def _listed(lib: Any, token_label: str) -> list[Any] | None:
    """The module's tokens labelled ``token_label``; None when the listing failed.
    Listing reads every token's files (SoftHSM2): one being written by another process
    at that moment (a token made, a key stored) fails it with a GeneralError now and
    then, and it is listed again as a token not found is."""
    try:
        return list(lib.get_tokens(token_label=token_label))
    except p11.GeneralError:
        return None


def _find_token(lib: Any, module: Path, token_label: str, *, may_reinitialize: bool) -> Any:
    tokens = _listed(lib, token_label)
    for pause in FIND_TOKEN_PAUSES if may_reinitialize else ():
        if tokens:
            break
        time.sleep(pause)
        lib.reinitialize()
        tokens = _listed(lib, token_label)
    if tokens is None:
        raise ConfigurationError(
            f"the PKCS#11 module could not list its tokens (GeneralError) while "
            f"looking for '{token_label}'; check the HSM and its configuration"
        )
    if len(tokens) > 1:
        raise ConfigurationError(
            f"PKCS#11 module {module} has more than one token labelled '{token_label}'; "
            "give each token a unique label"
        )
    if not tokens:
        labels = sorted({t.label for t in lib.get_tokens() if t.label})
        known = ", ".join(f"'{label}'" for label in labels) or "none initialised"
        raise ConfigurationError(
            f"PKCS#11 module {module} has no token labelled '{token_label}' (tokens: {known}); "
            "correct VIR_PKCS11_TOKEN or initialise the token"
        )
    return tokens[0]


def _open_session(token: Any, pin: str) -> pkcs11.Session:
    session: pkcs11.Session = token.open(rw=True, user_pin=pin)
    return session


@contextlib.contextmanager
def _opening_alone(pin_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``pin_file`` (flock) while this process finds the token
    and logs in. SoftHSM2 reads the token's files to list it and at each login, and a
    login rewrites them: worker processes starting together (``VIR_KEYHOLDER_WORKERS``)
    read each other's half-written file and were refused ("no user PIN",
    CKR_GENERAL_ERROR). Every vir process that opens the token reads the same PIN file,
    so locking it lets them open the token one at a time."""
    descriptor = os.open(pin_file, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _login(token: Any, pin: str, pin_file: Path, token_label: str) -> pkcs11.Session:
    try:
        return _open_session(token, pin)
    except p11.UserPinNotInitialized:
        raise ConfigurationError(_no_user_pin_message(token_label)) from None
    except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
        raise ConfigurationError(_wrong_pin_message(pin_file, token_label)) from None
    except p11.PinLocked:
        raise ConfigurationError(_locked_message(token_label)) from None
    except p11.PinExpired:
        raise ConfigurationError(
            f"the user PIN of token '{token_label}' has expired; set a new one and write it "
            f"to {pin_file}"
        ) from None
    except p11.UserAlreadyLoggedIn:
        raise ConfigurationError(
            f"token '{token_label}' already has a logged-in session in this process that "
            "vir did not open; close it first"
        ) from None
    except p11.PKCS11Error as error:
        raise ConfigurationError(
            f"cannot open a session on token '{token_label}' (PKCS#11 {type(error).__name__})"
        ) from None


def _find(session: pkcs11.Session, object_class: ObjectClass, label: str) -> list[Any]:
    # list() runs the search to its end, so C_FindObjectsFinal is always called.
    return list(session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label}))


def _only(found: list[Any], token_label: str, label: str) -> Any:
    if len(found) != 1:
        raise ConfigurationError(
            f"token '{token_label}' holds {len(found)} objects labelled '{label}' of one "
            "kind; remove the duplicates with the HSM's tools"
        )
    return found[0]


_USAGES = (
    ("encrypt", Attribute.ENCRYPT),
    ("decrypt", Attribute.DECRYPT),
    ("sign", Attribute.SIGN),
    ("verify", Attribute.VERIFY),
    ("wrap", Attribute.WRAP),
    ("unwrap", Attribute.UNWRAP),
    ("derive", Attribute.DERIVE),
)
_CLASS_NAMES = {
    ObjectClass.SECRET_KEY: "secret",
    ObjectClass.PRIVATE_KEY: "private",
    ObjectClass.PUBLIC_KEY: "public",
}


def _attribute(key: Any, attribute: Attribute) -> Any:
    try:
        return key[attribute]
    except (p11.AttributeTypeInvalid, p11.AttributeSensitive):
        return None


def _name(enum: type[ObjectClass] | type[KeyType], value: Any) -> str:
    try:
        return enum(value).name
    except ValueError:  # a vendor-defined value
        return f"0x{int(value):x}"


def _facts(key: Any) -> KeyFacts:
    object_class = key[Attribute.CLASS]
    secret = object_class != ObjectClass.PUBLIC_KEY

    def flag(attribute: Attribute) -> bool | None:
        value = _attribute(key, attribute)
        return None if value is None else bool(value)

    return KeyFacts(
        object_class=_CLASS_NAMES.get(object_class) or _name(ObjectClass, object_class).lower(),
        key_type=_name(KeyType, key[Attribute.KEY_TYPE]),
        on_token=bool(_attribute(key, Attribute.TOKEN)),
        private=bool(_attribute(key, Attribute.PRIVATE)),
        sensitive=flag(Attribute.SENSITIVE) if secret else None,
        extractable=flag(Attribute.EXTRACTABLE) if secret else None,
        always_sensitive=flag(Attribute.ALWAYS_SENSITIVE) if secret else None,
        never_extractable=flag(Attribute.NEVER_EXTRACTABLE) if secret else None,
        usages=frozenset(name for name, attribute in _USAGES if _attribute(key, attribute)),
    )
