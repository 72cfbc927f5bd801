"""The ``vir`` command: start-up refusals, idempotent dev set-up, audit verification."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import launch
from support.service import (
    RunningService,
    free_port,
    free_ports,
    keyholder_listing,
    listening,
    run_vir,
    service_env,
    start_service,
)


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_dev_init_is_idempotent_and_never_overwrites(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))

    def state() -> dict[str, str]:
        return {
            f"{name}/{path}": digest
            for name in ("dev", "keys", "keyholder/keys")
            for path, digest in _digests(tmp_path / name).items()
        }

    before = state()
    assert (tmp_path / "dev" / "ca.key").stat().st_mode & 0o077 == 0
    # The OPRF key is the key holder's; the index's keys directory has none.
    assert any(p.startswith("keyholder/keys/oprf-epoch-1") for p in before)
    assert not [p for p in before if p.startswith("keys/oprf")]
    assert (tmp_path / "keyholder" / "keys").stat().st_mode & 0o077 == 0
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    assert state() == before
    listing = run_vir(tmp_path, env, "org", "list").stdout
    # Four reporting organisations, the municipality and the index operator.
    assert listing.count("\n") == 6
    # The key holder registers the same organisations, in its own database.
    (holder,) = keyholder_listing(tmp_path)
    assert run_vir(tmp_path, env | holder["env"], "keyholder", "org", "list").stdout == listing
    roles = json.loads((tmp_path / "dev" / "roles.json").read_text())
    assert {r["role"] for r in roles} == {
        "privacy_officer",
        "coordinator",
        "national_privacy_officer",
        "address_officer",
        "follow_up_officer",
    }
    endpoints = json.loads((tmp_path / "dev" / "endpoints.json").read_text())
    assert endpoints == {
        "index": f"https://127.0.0.1:{env['VIR_PORT']}",
        "keyholders": [holder["url"]],
        "threshold": 1,
        "portal": "https://127.0.0.1:8445",
    }
    # The development OpenID provider's users and client: kept private, made once.
    idp = tmp_path / "dev" / "idp.json"
    assert idp.stat().st_mode & 0o077 == 0
    assert (tmp_path / "dev" / "portal-client-secret").stat().st_mode & 0o077 == 0


def _dev_run(root: Path, env: dict[str, str], served: list[str]) -> subprocess.Popen[bytes]:
    """``vir dev run`` in ``root``, once something listens at each of ``served``."""
    with (root / "run.log").open("ab") as log:
        process = launch.popen(
            [sys.executable, "-m", "vir.cli", "dev", "run"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while not all(listening(url) for url in served):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError((root / "run.log").read_text())
        time.sleep(0.1)
    return process


def _pid_of_keyholder_on(port: int) -> int:
    """The ``vir keyholder serve`` process started with VIR_KEYHOLDER_PORT=``port``."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            environment = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"keyholder\0serve" in command and f"VIR_KEYHOLDER_PORT={port}".encode() in environment:
            return int(entry.name)
    raise AssertionError(f"no key holder on port {port}")


@pytest.mark.sqlite_only("make run's development set-up, on SQLite whatever the suite's database")
def test_dev_run_serves_a_threshold_set_up_beside_the_portal(tmp_path: Path) -> None:
    """``make run-threshold`` on the default layout, moved to free ports: the index on
    P, the key holders from P+1, the portal on P+2, its OpenID provider on P+3, as
    8443..8446. Holders 2 and 3 once took P+2 and P+3, and the portal could not start.
    Every process answers, and the portal's address follows its port. Stopped, it
    exits 0. One key holder of three may end (any two pseudonymise); when a second
    does, it names it and stops the others."""
    base = free_ports(6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")} | {
        "VIR_PORT": str(base),
        "VIR_KEYHOLDER_PORT": str(base + 1),
        "VIR_PORTAL_PORT": str(base + 2),
        "VIR_DEV_IDP_PORT": str(base + 3),
    }
    run_vir(tmp_path, env, "dev", "init", "--threshold", "2-of-3")
    dev = tmp_path / ".vir" / "dev"
    endpoints = json.loads((dev / "endpoints.json").read_text())
    portal = f"https://127.0.0.1:{base + 2}"
    assert endpoints["keyholders"] == [
        f"https://127.0.0.1:{p}" for p in (base + 1, base + 4, base + 5)
    ]
    assert endpoints["portal"] == portal
    assert {
        h["env"]["VIR_KEYHOLDER_PORTAL_ORIGINS"] for h in keyholder_listing(tmp_path / ".vir")
    } == {portal}
    served = [endpoints["index"], *endpoints["keyholders"], portal, f"https://127.0.0.1:{base + 3}"]
    process = _dev_run(tmp_path, env, served)
    # `make demo` finds the index in endpoints.json, not in its own VIR_PORT (unset).
    elsewhere = {k: v for k, v in env.items() if k != "VIR_PORT"}
    try:
        context = ssl.create_default_context(cafile=str(dev / "ca.crt"))
        with urllib.request.urlopen(f"{portal}/health", context=context, timeout=5) as answer:
            assert answer.status == 200
        assert "(demo signals withdrawn again)" in run_vir(tmp_path, elsewhere, "demo").stdout
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    stopped = run_vir(tmp_path, elsewhere, "demo", check=False)
    assert stopped.returncode == 1
    assert stopped.stderr.startswith(f"vir: nothing answers at https://127.0.0.1:{base} ")
    assert "Traceback" not in stopped.stderr

    process = _dev_run(tmp_path, env, served)
    try:
        # Any two of the three pseudonymise: one may stop, and make run goes on.
        os.kill(_pid_of_keyholder_on(base + 4), signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=3)
        ran = run_vir(tmp_path, elsewhere, "demo")
        assert "(demo signals withdrawn again)" in ran.stdout
        # A second one leaves fewer than two: everything stops, and says why.
        os.kill(_pid_of_keyholder_on(base + 5), signal.SIGTERM)
        assert process.wait(timeout=30) == 1
    finally:
        process.kill()
    said = (tmp_path / "run.log").read_text()
    first = f"key holder 2 (https://127.0.0.1:{base + 4}) was stopped by signal 15"
    assert f"vir: {first}; 2 of 3 key holders still serve (threshold 2), going on" in said
    second = f"key holder 3 (https://127.0.0.1:{base + 5}) was stopped by signal 15"
    assert f"vir: {second}; stopping the others" in said
    assert not [url for url in served if listening(url)]


def test_dev_init_refuses_a_key_holder_on_the_portals_port(tmp_path: Path) -> None:
    port = free_port()
    env = service_env(
        tmp_path, free_port(), VIR_KEYHOLDER_PORT=str(port), VIR_PORTAL_PORT=str(port)
    )
    refused = run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"), check=False)
    assert refused.returncode != 0
    assert f"VIR_KEYHOLDER_PORT {port} is the portal's port" in refused.stderr


def test_lifecycle_run_and_a_death_notice_from_the_command_line(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    result = run_vir(tmp_path, env, "lifecycle", "run")
    assert "0 archived, 0 erased, 0 destroyed" in result.stdout
    unknown = "hpgDTODJM7zyvQlm3obljpITEDuEoVVs-qF-UeLOOkY\n"
    result = launch.run(
        [sys.executable, "-m", "vir.cli", "person", "deceased"],
        cwd=tmp_path,
        env=env,
        input=unknown,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "nothing held" in result.stderr
    assert "hpgDTODJM7" not in result.stderr  # never echoes a pseudonym
    bad = launch.run(
        [sys.executable, "-m", "vir.cli", "person", "deceased"],
        cwd=tmp_path,
        env=env,
        input="not-a-pseudonym\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "line 1" in bad.stderr
    verify = run_vir(tmp_path, env, "audit", "verify")
    assert "intact" in verify.stdout + verify.stderr


def test_serve_refuses_to_start_without_a_key_and_says_how(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    for key in (tmp_path / "keys").iterdir():
        key.unlink()
    result = run_vir(tmp_path, env, "serve", check=False)
    assert result.returncode == 2
    assert "vir keys init" in result.stderr
    assert "serving" not in result.stdout  # said only once it does


def test_serve_and_keyholder_serve_say_nothing_of_serving_on_a_port_in_use(
    tmp_path: Path,
) -> None:
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    (holder,) = keyholder_listing(tmp_path)
    with socket.create_server(("127.0.0.1", int(env["VIR_PORT"]))):
        index = run_vir(tmp_path, env, "serve", check=False)
    with socket.create_server(("127.0.0.1", int(holder["env"]["VIR_KEYHOLDER_PORT"]))):
        keyholder = run_vir(tmp_path, env | holder["env"], "keyholder", "serve", check=False)
    for result in (index, keyholder):
        assert result.returncode != 0
        assert "serving" not in result.stdout
        assert "address already in use" in (result.stdout + result.stderr).lower()


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    env["VIR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'other.db'}"
    result = run_vir(tmp_path, env, "serve", check=False)
    assert result.returncode == 2
    assert "vir db upgrade" in result.stderr


def test_audit_verify_names_the_edited_entry(service: RunningService) -> None:
    assert "intact" in service.vir("audit", "verify").stdout
    ((count,),) = service.sql("SELECT count(*) FROM audit_entries")
    target = max(2, count // 2)
    service.sql(
        "UPDATE audit_entries SET organisation = '00000000000000000000' WHERE seq = :seq",
        seq=target,
    )
    try:
        result = service.vir("audit", "verify", check=False)
        assert result.returncode == 1
        assert f"BROKEN at entry {target}" in result.stderr
    finally:
        ((body,),) = service.sql("SELECT body FROM audit_entries WHERE seq = :seq", seq=target)
        service.sql(
            "UPDATE audit_entries SET organisation = :oin WHERE seq = :seq",
            oin=json.loads(bytes(body))["organisation"],
            seq=target,
        )
    assert "intact" in service.vir("audit", "verify").stdout


def test_audit_verify_detects_an_edited_body(service: RunningService) -> None:
    ((body,),) = service.sql("SELECT body FROM audit_entries WHERE seq = 1")
    body = bytes(body)
    service.sql(
        "UPDATE audit_entries SET body = :body WHERE seq = 1",
        body=body.replace(b"success", b"refused"),
    )
    try:
        result = service.vir("audit", "verify", check=False)
        assert "BROKEN at entry 1" in result.stderr
    finally:
        service.sql("UPDATE audit_entries SET body = :body WHERE seq = 1", body=body)


def test_export_verifies_without_the_database_and_names_an_edit(
    service: RunningService, tmp_path: Path
) -> None:
    key = service.vir("audit", "key").stdout.strip()
    assert key.startswith("vir-dev/audit-log+")
    out = tmp_path / "audit.export"
    assert "exported" in service.vir("audit", "export", "--out", str(out)).stdout
    checked = service.vir("audit", "verify", str(out), "--verifier-key", key)
    assert "export verified" in checked.stdout
    lines = out.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"success"', b'"refused"')
    out.write_bytes(b"".join(lines))
    broken = service.vir("audit", "verify", str(out), "--verifier-key", key, check=False)
    assert broken.returncode == 1
    assert "at entry 3" in broken.stderr


def test_serve_refuses_to_start_without_the_checkpoint_key(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port())
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(tmp_path / "dev"))
    (tmp_path / "keys" / "checkpoint-ed25519.key").unlink()
    result = run_vir(tmp_path, env, "serve", check=False)
    assert result.returncode == 2
    assert "vir keys init" in result.stderr


def test_the_server_signs_checkpoints_on_its_own(tmp_path: Path) -> None:
    from support import refclient
    from support.https import request

    from vir.audit.checkpoint import SignedNote, parse_verifier_key, verify_note
    from vir.crypto.signing import ed25519_verify

    service = start_service(
        tmp_path,
        VIR_CHECKPOINT_INTERVAL_SECONDS="0.3",
        VIR_KEYHOLDER_CHECKPOINT_INTERVAL_SECONDS="0.3",
    )
    try:
        org = service.org("gp")
        # Something to log: pseudonyms made at the key holder, and a request at the index.
        refclient.pseudonymise(service.keyholder_url, service.ca, org.cert, org.key, [b"x"])
        request(service.port, service.ca, "GET", "/v1/notifications", cert=(org.cert, org.key))
        deadline = time.monotonic() + 15
        while True:
            reply = request(
                service.port, service.ca, "GET", "/v1/audit/checkpoint", cert=(org.cert, org.key)
            )
            if reply.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert reply.status == 200, reply.body
        name, key = parse_verifier_key(service.vir("audit", "key").stdout.strip())
        assert verify_note(SignedNote.parse(reply.body), name, key, ed25519_verify)
        # The key holder signs checkpoints of its own log, with its own key.
        while not (notes := service.keyholder_sql("SELECT note FROM checkpoints")):
            assert time.monotonic() < deadline, "the key holder signed no checkpoint"
            time.sleep(0.2)
        name, key = parse_verifier_key(service.keyholder("key").stdout.strip())
        assert name.startswith("vir-dev/keyholder-log")
        assert verify_note(SignedNote.parse(notes[-1][0].encode()), name, key, ed25519_verify)
    finally:
        service.stop()


def test_proofs_over_the_api_verify_against_the_signed_checkpoint(
    service: RunningService,
) -> None:
    import base64

    from support.https import request

    from vir.audit import merkle
    from vir.audit.checkpoint import Checkpoint, SignedNote

    org = service.org("education")
    service.vir("audit", "checkpoint")
    first = Checkpoint.parse_body(
        SignedNote.parse(
            request(
                service.port, service.ca, "GET", "/v1/audit/checkpoint", cert=(org.cert, org.key)
            ).body
        ).text
    )
    request(service.port, service.ca, "GET", "/v1/notifications", cert=(org.cert, org.key))
    service.vir("audit", "checkpoint")
    proof = request(
        service.port, service.ca, "GET", "/v1/audit/proof/inclusion?seq=2", cert=(org.cert, org.key)
    ).json()
    checkpoint = Checkpoint.parse_body(SignedNote.parse(proof["checkpoint"].encode()).text)
    assert checkpoint.size > first.size
    assert merkle.verify_inclusion(
        base64.b64decode(proof["leaf_hash"]),
        1,
        checkpoint.size,
        [base64.b64decode(h) for h in proof["audit_path"]],
        checkpoint.root_hash,
    )
    consistency = request(
        service.port,
        service.ca,
        "GET",
        f"/v1/audit/proof/consistency?from={first.size}",
        cert=(org.cert, org.key),
    ).json()
    assert merkle.verify_consistency(
        first.size,
        checkpoint.size,
        first.root_hash,
        checkpoint.root_hash,
        [base64.b64decode(h) for h in consistency["proof"]],
    )
    bad = request(
        service.port, service.ca, "GET", "/v1/audit/proof/inclusion?seq=0", cert=(org.cert, org.key)
    )
    assert bad.status == 422


def test_demo_says_what_is_wrong_with_a_broken_set_up(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port())
    dev = tmp_path / "dev"
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(dev))
    (dev / "endpoints.json").write_text('{"index": "https://127.0.0.1:1"')
    broken = run_vir(tmp_path, env, "demo", "--dev-dir", str(dev), check=False)
    assert broken.returncode == 1
    assert broken.stderr == (
        f"vir: demo: {dev / 'endpoints.json'} is not an endpoints file"
        " (index, keyholders, threshold)\n"
    )
    missing = run_vir(tmp_path, env, "demo", "--dev-dir", str(tmp_path / "none"), check=False)
    assert missing.returncode == 1
    assert "no development set-up in" in missing.stderr and "Traceback" not in missing.stderr
