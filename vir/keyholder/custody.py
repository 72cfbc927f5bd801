"""Where the key holder's keys are kept: files in its keys directory (the default), or
an HSM over PKCS#11 (``VIR_PKCS11_MODULE``, ``VIR_PKCS11_TOKEN``, ``VIR_PKCS11_PIN_FILE``):
then each OPRF key (or share) is stored wrapped by an AES key that never leaves the
token and is unwrapped into memory only at start, and the checkpoint key is a token
object that signs inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vir.crypto import keys, polynomial_file
from vir.crypto.hsm import Token
from vir.crypto.keyfile import require_private
from vir.crypto.signing import (
    CheckpointSigner,
    KeyFolder,
    init_signing_key,
    keyholder_keys,
    load_signing_key,
    signing_key_path,
)
from vir.keyholder.settings import KeyholderSettings


@dataclass(frozen=True)
class Custody:
    keys_dir: Path
    token: Token | None
    # VIR_KEYHOLDER_THRESHOLD: what a refusal advises for a new holder (init, or the key
    # generation or repair of a t-of-n deployment: keys.keyholder_set_up).
    threshold: int = 1

    @classmethod
    def open(cls, settings: KeyholderSettings) -> Custody:
        """ConfigurationError when only part of the HSM settings is given, the module or
        token is missing, or the PIN is refused."""
        token = Token.from_settings(
            settings.pkcs11_module, settings.pkcs11_token, settings.pkcs11_pin_file
        )
        return cls(settings.keys_dir, token, settings.threshold)

    def __repr__(self) -> str:
        return f"Custody(keys_dir={str(self.keys_dir)!r}, hsm={self.token is not None})"

    def close(self) -> None:
        """Log out of the token, if there is one (closing twice is harmless)."""
        if self.token is not None:
            self.token.close()

    @property
    def token_backed(self) -> bool:
        return self.token is not None

    @property
    def folder(self) -> KeyFolder:
        """The keys folder, for what a refused checkpoint key advises."""
        return keyholder_keys(keys.keyholder_set_up(self.threshold))

    def load_keyring(self, keys_dir: Path) -> keys.OprfKeyring:
        return keys.load_oprf_keyring(keys_dir, token=self.token, threshold=self.threshold)

    def write_key(
        self, keys_dir: Path, epoch: int, secret: bytes, share_index: int | None = None
    ) -> Path:
        return keys.write_oprf_key(keys_dir, epoch, secret, share_index, token=self.token)

    def write_polynomial(self, path: Path, coefficients: list[bytes]) -> Path:
        """A key generation dealer's polynomial, kept until finish: a file, or with an
        HSM wrapped by it as an OPRF key is."""
        return polynomial_file.write_polynomial(path, coefficients, self.token)

    def read_polynomial(self, path: Path, t: int) -> list[bytes]:
        return polynomial_file.read_polynomial(path, t, self.token)

    def signer(self, origin: str) -> CheckpointSigner:
        return load_signing_key(self.keys_dir, origin, token=self.token, folder=self.folder)

    def init(self) -> list[tuple[str, Path, bool]]:
        """Create what is missing: the epoch-1 OPRF key and the checkpoint key."""
        oprf_path, oprf_made = keys.init_oprf_key(self.keys_dir, token=self.token)
        signing_path, signing_made = init_signing_key(self.keys_dir, token=self.token)
        return [
            ("OPRF key", oprf_path, oprf_made),
            ("checkpoint signing key", signing_path, signing_made),
        ]

    def key_files(self, epoch: int) -> list[Path]:
        """The files a restart would read (for ``/ready``): the served epoch's key and,
        without an HSM, the checkpoint key."""
        if self.token is not None:
            return [keys.key_path(self.keys_dir, epoch).with_suffix(".key.wrapped")]
        return [keys.key_path(self.keys_dir, epoch), signing_key_path(self.keys_dir)]

    def check_key_files(self, epoch: int) -> None:
        """For ``/ready``: the permission check start-up makes of each key file a restart
        would read (``require_private``, which loading them calls); raises when one would
        be refused."""
        for path in self.key_files(epoch):
            require_private(path, "key file")
