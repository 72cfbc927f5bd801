"""Throwaway SoftHSM2 tokens for tests of the PKCS#11 layer (``vir.crypto.hsm``).

SoftHSM2 reads ``SOFTHSM2_CONF`` (and so its token folder) in C_Initialize, and
python-pkcs11 loads and initialises a module once per process. So a test session has one
SoftHSM2 of its own: one config and token folder under pytest's tmp dir, with
``SOFTHSM2_CONF`` pointing at it for the rest of the process. Each test gets a fresh
token (unique label, random PINs) made with ``softhsm2-util --init-token --free``; the
module sees tokens made after its C_Initialize only after C_Finalize + C_Initialize, so
:meth:`SoftHsm.new_token` re-initialises it (any Token still open is then dead: close
yours). :meth:`SoftHsm.restart` does the same to stand in for a service restart.

There is no skip: without SoftHSM2 the tests fail and say how to install it.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest

from vir.crypto.hsm import Token

_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)
_INSTALL = "SoftHSM2 is not installed; run scripts/ensure-softhsm.sh (make test does)"


def softhsm_module() -> Path:
    """The SoftHSM2 PKCS#11 module; fails the test (no skip) when there is none."""
    candidates = [os.environ.get("VIR_TEST_SOFTHSM_MODULE", ""), *_MODULE_CANDIDATES]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail(f"{_INSTALL} (no libsofthsm2.so found)")


def softhsm_util() -> str:
    found = shutil.which("softhsm2-util")
    if found is None:
        pytest.fail(f"{_INSTALL} (no softhsm2-util on PATH)")
    return found


def write_private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@dataclass(frozen=True)
class HsmToken:
    """One initialised SoftHSM2 token: what ``Token.open`` takes, and its PINs for tests."""

    module: Path
    label: str
    pin_file: Path
    pin: str
    so_pin: str
    conf: Path

    def open(self) -> Token:
        return Token.open(self.module, self.label, self.pin_file)

    def raw_session(self) -> pkcs11.Session:
        """A logged-in python-pkcs11 session of the test's own, to check what the token
        holds without vir's code in between. Close every vir Token of this token first
        (login belongs to the process: a second C_Login fails)."""
        token = pkcs11.lib(str(self.module)).get_token(token_label=self.label)
        return token.open(user_pin=self.pin)


class SoftHsm:
    """This test session's SoftHSM2: one config and token folder, many tokens."""

    def __init__(self, root: Path) -> None:
        self.module = softhsm_module()
        self.util = softhsm_util()
        self.root = root
        self.tokens = root / "tokens"
        self.tokens.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {self.tokens}\n"
            "objectstore.backend = file\n"
            "log.level = ERROR\n"
            "slots.removable = false\n"
        )
        self._counter = itertools.count(1)

    @property
    def env(self) -> dict[str, str]:
        """The environment a subprocess needs to see this session's tokens."""
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def new_token(self, *, restart: bool = True) -> HsmToken:
        """A new initialised token with a user PIN; ``restart=False``: this process's
        module is not initialised again, so it does not see the token yet."""
        label = f"vir-test-{next(self._counter)}-{secrets.token_hex(3)}"
        pin, so_pin = secrets.token_hex(6), secrets.token_hex(6)
        command = [self.util, "--init-token", "--free", "--label", label]
        done = subprocess.run(
            [*command, "--pin", pin, "--so-pin", so_pin],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"softhsm2-util --init-token failed: {done.stderr or done.stdout}")
        pin_file = write_private(self.root / "pins" / f"{label}.pin", pin + "\n")
        if restart:
            self.restart()  # the module sees the new token only after C_Initialize
        return HsmToken(self.module, label, pin_file, pin, so_pin, self.conf)

    def restart(self) -> None:
        """C_Finalize + C_Initialize of the module in this process, as a restarted service
        would do: token objects are read back from the token folder."""
        pkcs11.lib(str(self.module)).reinitialize()


_SESSION: SoftHsm | None = None


def session_softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    """The process's one SoftHSM2 (see the module docstring); sets ``SOFTHSM2_CONF``."""
    global _SESSION
    if _SESSION is None:
        softhsm = SoftHsm(tmp_path_factory.mktemp("softhsm"))
        # Read by the module at C_Initialize, which happens at most once before restart().
        os.environ["SOFTHSM2_CONF"] = str(softhsm.conf)
        _SESSION = softhsm
    return _SESSION
