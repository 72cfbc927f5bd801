"""Ed25519 signing of log checkpoints, and the checkpoint key file or token key.

The key file is ``<keys_dir>/checkpoint-ed25519.key`` holding the 32-byte Ed25519 seed
(RFC 8032 private key) in hex, created by ``vir keys init``. The service refuses to start
on a missing key, a key readable by group or others, a malformed seed, or a published
test key, and says how to make one. With an HSM (``vir.crypto.hsm``) the key is instead
the token's Ed25519 key pair labelled ``vir-checkpoint``, which signs inside the token.
Formats (checkpoint body, signed note, verifier key) live in ``vir.audit.checkpoint``;
this module adds only the cryptography.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from vir.audit.checkpoint import (
    ED25519_PUBLIC_KEY_SIZE,
    Checkpoint,
    NoteSignature,
    SignedNote,
    ed25519_key_hash,
    format_verifier_key,
    is_valid_key_name,
)
from vir.crypto.keyfile import create_hex_key, destroy_key_file, read_hex_key
from vir.domain.errors import ConfigurationError, CryptoError

if TYPE_CHECKING:
    from vir.crypto.hsm import Token

SEED_SIZE = 32
SIGNATURE_SIZE = 64
KEY_FILE_NAME = "checkpoint-ed25519.key"
SIGNING_KEY_LABEL = "vir-checkpoint"  # a label, not a secret
# Signed once by a signer built from a callable, to check the function and public key
# belong together. Not a checkpoint body (no tree size line), and never published.
_SELF_TEST = b"vir checkpoint signer self-test\n"

# Seeds printed in specifications and reference test suites: public, so anyone could
# sign checkpoints with them. Never acceptable as a production key.
_PUBLISHED_TEST_SEEDS = frozenset(
    {
        bytes(SEED_SIZE),
        # RFC 8032 section 7.1, TEST 1.
        bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
        # golang.org/x/mod/sumdb/note note_test.go, "PRIVATE+KEY+PeterNeumann+c74f20a3+...".
        bytes.fromhex("810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173"),
    }
)
_HOW_TO = "create one with: {create}"
# A missing key is most often a keys folder looked for in the wrong place (a relative
# VIR_KEYS_DIR from another directory): a new key there would be a new identity of the
# log, which its witnesses and verifiers do not know, so init is named for a first set-up only.
_MISSING = (
    "{setting} is {dir} ({where}) and holds none: set {setting} to the {whose}'s keys "
    "folder. Only when setting up a new {whose}: {set_up}"
)


@dataclass(frozen=True)
class KeyFolder:
    """Whose keys folder the checkpoint key is looked for in, for what a refusal advises:
    the setting that names the folder, whose it is, the command that makes a checkpoint
    key in a folder in use (``create``: a new identity of the log), and the one that
    sets up a new service's keys (``set_up``). ``{dir}`` in a command is the folder."""

    setting: str
    whose: str
    create: str
    set_up: str


INDEX_KEYS: Final = KeyFolder(
    "VIR_KEYS_DIR", "index", "vir keys init --keys-dir {dir}", "vir keys init --keys-dir {dir}"
)


def keyholder_keys(set_up: str) -> KeyFolder:
    """A key holder's keys folder; ``set_up``: how a new one is set up, which depends on
    the deployment (``vir.crypto.keys.keyholder_set_up``)."""
    return KeyFolder("VIR_KEYHOLDER_KEYS_DIR", "key holder", "vir keyholder init", set_up)


class CheckpointSigner:
    """Signs checkpoints of one log; the key name in the signature line is the log's origin.

    The tlog-checkpoint spec says the key name SHOULD equal the origin, and tying the two
    together means this signer cannot be used to sign another log's tree heads.
    """

    __slots__ = ("_key_hash", "_origin", "_public_key", "_sign")

    def __init__(self, private_key: Ed25519PrivateKey, origin: str) -> None:
        self._setup(private_key.sign, private_key.public_key().public_bytes_raw(), origin)

    def _setup(self, sign: Callable[[bytes], bytes], public_key: bytes, origin: str) -> None:
        if not is_valid_key_name(origin):
            raise ValueError(
                "checkpoint origin must be non-empty without spaces, '+' or control "
                "characters, because it is also the signature key name"
            )
        if len(public_key) != ED25519_PUBLIC_KEY_SIZE:
            raise ValueError(f"Ed25519 public key is not {ED25519_PUBLIC_KEY_SIZE} bytes")
        self._sign = sign
        self._origin = origin
        self._public_key = public_key
        self._key_hash = ed25519_key_hash(origin, public_key)

    @classmethod
    def from_seed(cls, seed: bytes, origin: str) -> CheckpointSigner:
        """Build from a 32-byte RFC 8032 seed."""
        if len(seed) != SEED_SIZE:
            raise ValueError(f"Ed25519 seed is not {SEED_SIZE} bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed), origin)

    @classmethod
    def from_callable(
        cls, sign: Callable[[bytes], bytes], public_key: bytes, origin: str
    ) -> CheckpointSigner:
        """Build from a function that makes Ed25519 signatures for ``public_key`` elsewhere
        (an HSM). It is tried once here: a function whose signatures do not verify under
        ``public_key`` is refused, before it can sign a checkpoint nobody can check."""
        signer = cls.__new__(cls)
        signer._setup(sign, public_key, origin)
        if not ed25519_verify(public_key, signer._signature(_SELF_TEST), _SELF_TEST):
            raise ConfigurationError(
                "the checkpoint signing key's signatures do not verify under its public key"
            )
        return signer

    @classmethod
    def from_token(cls, token: Token, label: str, origin: str) -> CheckpointSigner:
        """Sign inside ``token`` (CKM_EDDSA) with its Ed25519 key pair ``label``; refuses a
        missing key pair and says how to create it."""
        public_key = token.ed25519_public_key(label)
        return cls.from_callable(
            lambda message: token.ed25519_sign(label, message), public_key, origin
        )

    def _signature(self, message: bytes) -> bytes:
        signature = self._sign(message)
        if len(signature) != SIGNATURE_SIZE:
            raise CryptoError()
        return signature

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def key_hash(self) -> bytes:
        """The 4-byte signed-note key ID."""
        return self._key_hash

    def public_key(self) -> bytes:
        """The 32-byte raw Ed25519 public key."""
        return self._public_key

    def verifier_key(self) -> str:
        """The ``<origin>+<key hash>+<key>`` text a verifier or witness is configured with."""
        return format_verifier_key(self._origin, self._public_key)

    def sign(self, checkpoint: Checkpoint) -> bytes:
        """The checkpoint as a signed note with this log's signature line."""
        if checkpoint.origin != self._origin:
            # Signing another origin would let one log vouch for another's tree head.
            raise ValueError("checkpoint origin is not this signer's log origin")
        text = checkpoint.body()
        signature = NoteSignature(self._origin, self._key_hash, self._signature(text))
        return SignedNote(text, (signature,)).render()

    def sign_bytes(self, message: bytes) -> bytes:
        """A raw 64-byte Ed25519 signature over ``message``, for another signed format of
        this log (a rekey token). Refuses a message that parses as a checkpoint body: tree
        heads are signed only by :meth:`sign`, which checks their origin."""
        try:
            Checkpoint.parse_body(message)
        except ValueError:
            return self._signature(message)
        raise ValueError("a checkpoint is signed with sign(), not sign_bytes()")

    def cosign(self, note: bytes) -> bytes:
        """``note`` with this key's signature added, unless it already carries one.

        After a key rotation the newest checkpoint was signed by the old key; adding
        the new key's signature to the same tree head (not a new, different one)
        lets exports made before the log grows verify with the current key.
        """
        parsed = SignedNote.parse(note)
        if any(s.key_hash == self._key_hash for s in parsed.signatures):
            return note
        if Checkpoint.parse_body(parsed.text).origin != self._origin:
            raise ValueError("checkpoint origin is not this signer's log origin")
        signature = NoteSignature(self._origin, self._key_hash, self._signature(parsed.text))
        return SignedNote(parsed.text, (*parsed.signatures, signature)).render()

    def __repr__(self) -> str:  # never show key material in logs or tracebacks
        return f"CheckpointSigner(origin={self._origin!r}, key_hash={self._key_hash.hex()})"


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """RFC 8032 verification; False for a bad signature, key or length, and never raises."""
    if len(public_key) != ED25519_PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except Exception:
        # Deliberately broad: callers get one opaque answer whatever went wrong, and a
        # malformed key from an untrusted note must not turn into an unhandled error.
        return False
    return True


def signing_key_path(keys_dir: Path) -> Path:
    return keys_dir / KEY_FILE_NAME


def token_key_uri(token: Token, label: str = SIGNING_KEY_LABEL) -> Path:
    """Where a token key is, as an RFC 7512 PKCS#11 URI (shown where a key file's path is)."""
    return Path(f"pkcs11:token={quote(token.label, safe='')};object={quote(label, safe='')}")


def init_signing_key(keys_dir: Path, token: Token | None = None) -> tuple[Path, bool]:
    """Create the checkpoint key if none exists. Returns (path, created); never overwrites.

    With ``token``: the token's Ed25519 key pair ``vir-checkpoint`` (the private key a
    sensitive, non-extractable token object), and its PKCS#11 URI in place of a path.
    """
    if token is not None:
        _refuse_a_file_beside(token, keys_dir)
        _, created = token.ensure_ed25519_key(SIGNING_KEY_LABEL)
        return token_key_uri(token), created
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = signing_key_path(keys_dir)
    # An existing key (the log's identity, pinned by every witness) is never replaced.
    return path, create_hex_key(path, SEED_SIZE)


def import_signing_key(keys_dir: Path, token: Token, folder: KeyFolder = INDEX_KEYS) -> bool | None:
    """Move the checkpoint key file into ``token`` as its ``vir-checkpoint`` key pair, so
    the log keeps its signing key (witnesses and verifiers have pinned its public key):
    the seed is stored in the token, the token is checked to sign with it, then the file
    is destroyed. True when moved; False when the token already held this key (an import
    run again: the file is destroyed); None when there is no key file. Refuses a file
    key that is exposed, malformed or published (advice for ``folder``), and a token
    holding another key."""
    path = signing_key_path(keys_dir)
    if not path.exists():
        return None
    seed = _read_seed(keys_dir, folder)
    stored = token.import_ed25519_key(SIGNING_KEY_LABEL, seed)
    destroy_key_file(path)
    return stored


def _refuse_a_file_beside(token: Token, keys_dir: Path) -> None:
    """With an HSM, a checkpoint key file still in the keys directory has not been moved
    into the token: signing with the token's key instead would change the log's key."""
    path = signing_key_path(keys_dir)
    if path.exists():
        raise ConfigurationError(
            f"checkpoint signing key {path} is a file, but an HSM is configured (token "
            f"'{token.label}'); move it into the token with: vir keyholder hsm-import"
        )


def _read_seed(keys_dir: Path, folder: KeyFolder = INDEX_KEYS) -> bytes:
    path = signing_key_path(keys_dir)
    how_to = _HOW_TO.format(create=folder.create.format(dir=keys_dir))
    seed = read_hex_key(
        path,
        "checkpoint signing key",
        _MISSING.format(
            setting=folder.setting,
            dir=keys_dir,
            where=keys_dir.resolve(),
            whose=folder.whose,
            set_up=folder.set_up.format(dir=keys_dir),
        ),
        "restore it from a backup, or remove it and " + how_to,
    )
    if seed in _PUBLISHED_TEST_SEEDS:
        raise ConfigurationError(
            f"checkpoint signing key {path} is a published test key; remove it and " + how_to
        )
    return seed


def load_signing_key(
    keys_dir: Path, origin: str, token: Token | None = None, folder: KeyFolder = INDEX_KEYS
) -> CheckpointSigner:
    """Load the checkpoint key, refusing a missing, exposed, malformed or published one,
    with advice for ``folder`` (the index's, or a key holder's: ``keyholder_keys``).

    With ``token``: a signer that signs inside the token with its ``vir-checkpoint`` key
    pair; a key file still in ``keys_dir`` is refused (it has not been imported).
    """
    if not is_valid_key_name(origin):
        raise ConfigurationError(
            "the checkpoint origin must be non-empty without spaces, '+' or control "
            "characters, because it is also the signature key name"
        )
    if token is not None:
        _refuse_a_file_beside(token, keys_dir)
        return CheckpointSigner.from_token(token, SIGNING_KEY_LABEL, origin)
    return CheckpointSigner.from_seed(_read_seed(keys_dir, folder), origin)
