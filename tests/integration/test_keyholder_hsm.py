"""The key holder with its keys in an HSM (SoftHSM2 over PKCS#11), as an operator moves it.

A key holder that ran on key files has its keys imported into a token (``vir keyholder
hsm-import``: each OPRF key wrapped by the token's AES key, the plain file destroyed)
and is started with ``VIR_PKCS11_*``: it unwraps the key into memory at start and
gives the same pseudonyms as before; restarted, it unwraps again; with a wrong PIN it
refuses to start and says so; its audit checkpoints are signed inside the token.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import launch, postgres
from support.service import (
    RunningService,
    keyholder_listing,
    run_vir,
    start_service,
    stop_process,
    wait_healthy,
)
from support.softhsm import HsmToken, SoftHsm, session_softhsm, write_private

from vir.audit.checkpoint import SignedNote, parse_verifier_key
from vir.client.canonical import nl_bsn
from vir.client.connection import VirClient
from vir.crypto.signing import ed25519_verify

pytestmark = pytest.mark.skipif(
    postgres.on_postgresql(), reason="keys in the HSM, not storage: runs once, on SQLite"
)

BSN = "123456782"


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    return session_softhsm(tmp_path_factory)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("hsm"))
    try:
        yield running
    finally:
        running.stop()


def _hsm_env(
    service: RunningService, softhsm: SoftHsm, token: HsmToken, pin: Path
) -> dict[str, str]:
    return service.keyholder_env | {
        "SOFTHSM2_CONF": str(softhsm.conf),
        "VIR_PKCS11_MODULE": str(token.module),
        "VIR_PKCS11_TOKEN": token.label,
        "VIR_PKCS11_PIN_FILE": str(pin),
    }


def _start_holder(service: RunningService, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = service.root / "keyholder-hsm.log"
    with log.open("ab") as out:
        process = launch.popen(
            [sys.executable, "-m", "vir.cli", "keyholder", "serve"],
            cwd=service.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_healthy(service.keyholder_urls[0], service.ca, process, log)
    return process


def _pseudonym(service: RunningService) -> str:
    with VirClient.from_dev("gp", service.dev) as gp:
        return gp.pseudonymise([nl_bsn(BSN)]).pseudonyms[0]


def test_a_key_holder_moved_into_an_hsm_keeps_its_pseudonyms(
    service: RunningService, softhsm: SoftHsm
) -> None:
    before = _pseudonym(service)
    keys_dir = Path(keyholder_listing(service.root)[0]["env"]["VIR_KEYHOLDER_KEYS_DIR"])
    secret_hex = (keys_dir / "oprf-epoch-1.key").read_text().split()[0]
    seed_hex = (keys_dir / "checkpoint-ed25519.key").read_text().strip()
    pinned = run_vir(service.root, service.keyholder_env, "keyholder", "key").stdout.strip()
    for process in service.keyholders:
        stop_process(process)
    token = softhsm.new_token()
    env = _hsm_env(service, softhsm, token, token.pin_file)
    root = service.root
    imported = run_vir(root, env, "keyholder", "hsm-import")
    assert "wrapped by the HSM" in imported.stdout
    assert "checkpoint key moved into the HSM" in imported.stdout
    assert "created" not in run_vir(root, env, "keyholder", "init").stdout  # nothing new
    assert not (keys_dir / "oprf-epoch-1.key").exists()
    assert (keys_dir / "oprf-epoch-1.key.wrapped").exists()
    assert not (keys_dir / "checkpoint-ed25519.key").exists()
    for path in keys_dir.iterdir():
        data = path.read_bytes()
        for secret in (secret_hex, seed_hex):
            assert secret.encode() not in data and bytes.fromhex(secret) not in data
    # The log keeps its key: witnesses that pinned it go on verifying.
    assert run_vir(root, env, "keyholder", "key").stdout.strip() == pinned

    holder = _start_holder(service, env)
    try:
        assert _pseudonym(service) == before  # unwrapped at start: the same k
    finally:
        stop_process(holder)
    holder = _start_holder(service, env)  # a restart unwraps again
    try:
        assert _pseudonym(service) == before
        signed = run_vir(root, env, "keyholder", "audit", "checkpoint").stdout.encode()
        name, public_key = parse_verifier_key(pinned)
        note = SignedNote.parse(signed)
        assert any(
            s.name == name and ed25519_verify(public_key, s.signature, note.text)
            for s in note.signatures
        )
    finally:
        stop_process(holder)
    # Two worker processes (VIR_KEYHOLDER_WORKERS): each opens its own session on the
    # token and unwraps the key itself; whichever answers, the same pseudonym.
    log = service.root / "keyholder-hsm.log"
    started = log.read_text().count("Application startup complete")
    holder = _start_holder(service, env | {"VIR_KEYHOLDER_WORKERS": "2"})
    try:
        deadline = time.monotonic() + 30  # the port answers once the first is up
        while log.read_text().count("Application startup complete") < started + 2:
            assert time.monotonic() < deadline, "the second worker did not start"
            time.sleep(0.1)
        assert {_pseudonym(service) for _ in range(6)} == {before}
    finally:
        stop_process(holder)

    wrong = write_private(service.root / "wrong.pin", "not-the-pin\n")
    # One process, and two workers: each says so, and the key holder exits non-zero.
    for workers in ("1", "2"):
        refused = launch.run(
            [sys.executable, "-m", "vir.cli", "keyholder", "serve"],
            cwd=root,
            env=_hsm_env(service, softhsm, token, wrong) | {"VIR_KEYHOLDER_WORKERS": workers},
            capture_output=True,
            text=True,
            timeout=60,
        )
        said = refused.stderr + refused.stdout
        assert refused.returncode != 0, workers
        assert "is not accepted by token" in said
        assert "not-the-pin" not in said
        assert "Traceback" not in said
    # Without the HSM settings the wrapped key is refused too, with how to fix it.
    plain = run_vir(root, service.keyholder_env, "keyholder", "serve", check=False)
    assert plain.returncode != 0
    assert "VIR_PKCS11_MODULE" in plain.stderr
    # Put the key holder back as the module found it, for nothing else uses it afterwards.
    service.keyholders = []
