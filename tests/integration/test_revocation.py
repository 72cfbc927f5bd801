"""Certificate revocation with the embedded server (``vir serve`` and ``vir keyholder
serve`` doing mutual TLS): ``vir org revoke`` (the index's registry) and ``vir keyholder
org revoke`` (the key holder's) take effect for the very next request, and, with
``VIR_CLIENT_CRL`` / ``VIR_KEYHOLDER_CLIENT_CRL``, a revoked certificate no longer
completes the TLS handshake after a restart. Also: the embedded server never believes a
``Client-Cert`` header."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path

import pytest
from support.https import Reply, request
from support.service import (
    RunningService,
    free_port,
    keyholder_listing,
    run_vir,
    service_env,
    start_service,
)

from vir.crypto import pki

EVALUATE = "/v1/oprf/evaluate"
BODY = json.dumps({"blinded_elements": ["YJoK5owVo89pA3ZkYTB-XIuy-V5-ZVDh_6Lcmd5RgDw"]}).encode()
# An index request of every organisation's, audited with its organisation.
PROBE = "/v1/notifications"

pytestmark = pytest.mark.integration


def _audit(service: RunningService) -> list[dict[str, object]]:
    return [
        json.loads(bytes(body))
        for (body,) in service.sql("SELECT body FROM audit_entries ORDER BY seq")
    ]


def _held(service: RunningService) -> list[dict[str, object]]:
    """The key holder's audit log."""
    return [
        json.loads(bytes(body))
        for (body,) in service.keyholder_sql("SELECT body FROM audit_entries ORDER BY seq")
    ]


def _serials(path: Path) -> set[int]:
    crl = pki.load_crl(path)
    assert crl is not None
    return set(pki.crl_serials(crl))


def _index(service: RunningService, files: tuple[str, str]) -> Reply:
    return request(service.port, service.ca, "GET", PROBE, None, files)


def _holder(service: RunningService, files: tuple[str, str]) -> Reply:
    return request(service.keyholder_port, service.ca, "POST", EVALUATE, BODY, files)


def test_embedded_server_ignores_a_client_cert_header(service: RunningService) -> None:
    gp = service.org("gp")
    der = ssl.PEM_cert_to_DER_cert(Path(gp.cert).read_text())
    header = {"Client-Cert": ":" + base64.b64encode(der).decode() + ":"}
    school = service.org("education")
    for port, method, path, body, audit, action in (
        (service.port, "GET", PROBE, None, _audit, "notifications.read"),
        (service.keyholder_port, "POST", EVALUATE, BODY, _held, "oprf.evaluate"),
    ):
        # No certificate on the connection: the header does not stand in for one.
        reply = request(port, service.ca, method, path, body, headers=header)
        assert reply.status == 401
        assert reply.json()["type"].endswith("client-certificate-required")
        # The school's certificate on the connection, the GP's in the header: the school.
        before = len(audit(service))
        reply = request(port, service.ca, method, path, body, (school.cert, school.key), header)
        assert reply.status == 200
        assert [(e["action"], e["organisation"]) for e in audit(service)[before:]] == [
            (action, school.oin)
        ]


def test_revocation_is_immediate_and_the_crl_stops_the_handshake(tmp_path: Path) -> None:
    root = tmp_path / "vir"
    root.mkdir()
    crl_path = root / "dev" / "crl.pem"
    holder_crl = root / "dev" / "keyholder-crl.pem"
    overrides = {
        "VIR_CLIENT_CRL": str(crl_path),
        "VIR_KEYHOLDER_CLIENT_CRL": str(holder_crl),
        "VIR_KEYHOLDER_PORT": str(free_port()),
    }
    env = service_env(root, free_port(), **overrides)
    run_vir(root, env, "dev", "init", "--dev-dir", str(root / "dev"))
    run_vir(root, env, "org", "crl", "--dev-dir", str(root / "dev"))
    holder_env = env | keyholder_listing(root)[0]["env"]
    assert holder_env["VIR_KEYHOLDER_CLIENT_CRL"] == str(holder_crl)
    run_vir(root, holder_env, "keyholder", "org", "crl", "--dev-dir", str(root / "dev"))
    empty = pki.load_crl(crl_path)
    assert empty is not None and pki.crl_serials(empty) == set()
    assert _serials(holder_crl) == set()

    service = start_service(root, **overrides)
    try:
        gp, school = service.org("gp"), service.org("education")
        gp_files, school_files = (gp.cert, gp.key), (school.cert, school.key)
        gp_cert = pki.load_certificate(Path(gp.cert).read_bytes())
        for _ in range(2):  # the second answer comes from the authenticator's cache
            assert _index(service, gp_files).status == 200
            assert _holder(service, gp_files).status == 200

        before = len(_audit(service))
        out = service.vir(
            "org",
            "revoke",
            "--serial",
            format(gp_cert.serial_number, "x"),
            "--dev-dir",
            str(service.dev),
        ).stdout
        assert "is now revoked" in out
        crl = pki.load_crl(crl_path)
        assert crl is not None
        assert pki.crl_serials(crl) == {gp_cert.serial_number}
        assert crl.last_update_utc >= empty.last_update_utc
        assert pki.crl_is_signed_by(crl, pki.load_certificate(Path(service.ca).read_bytes()))

        # Within the cache time, on the same server: refused all the same.
        reply = _index(service, gp_files)
        assert reply.status == 403
        assert reply.json()["type"].endswith("certificate-revoked")
        assert _index(service, school_files).status == 200
        entries = _audit(service)[before:]
        assert [(e["action"], e.get("reason")) for e in entries] == [
            ("admin.certificate_revoked", None),
            ("request.refused", "certificate_revoked"),
            ("notifications.read", None),
        ]
        assert entries[0]["certificate"] == pki.fingerprint(gp_cert)

        # The key holder's operator revokes in the key holder's own registry: from the
        # very next request on, it refuses the certificate too.
        before = len(_held(service))
        out = service.keyholder(
            "org",
            "revoke",
            "--fingerprint",
            pki.fingerprint(gp_cert),
            "--dev-dir",
            str(service.dev),
        ).stdout
        assert "is now revoked" in out
        assert _serials(holder_crl) == {gp_cert.serial_number}
        reply = _holder(service, gp_files)
        assert reply.status == 403
        assert reply.json()["type"].endswith("certificate-revoked")
        assert _holder(service, school_files).status == 200
        entries = _held(service)[before:]
        assert [(e["action"], e.get("reason")) for e in entries] == [
            ("admin.certificate_revoked", None),
            ("request.refused", "certificate_revoked"),
            ("oprf.evaluate", None),
        ]

        # Revoking again changes nothing and is not audited again.
        before = len(_audit(service))
        out = service.vir(
            "org",
            "revoke",
            "--fingerprint",
            pki.fingerprint(gp_cert),
            "--dev-dir",
            str(service.dev),
        ).stdout
        assert "was already revoked" in out
        assert _audit(service)[before:] == []
    finally:
        service.stop()

    # Restarted, each embedded server has the new CRL in its TLS context: no handshake.
    service = start_service(root, **overrides)
    try:
        assert service.keyholders, "the key holder was restarted too"
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _index(service, gp_files)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            _holder(service, gp_files)
        assert _index(service, school_files).status == 200
        assert _holder(service, school_files).status == 200
    finally:
        service.stop()


def test_revoke_refuses_an_unknown_certificate(service: RunningService) -> None:
    result = service.vir("org", "revoke", "--fingerprint", "00" * 32, check=False)
    assert result.returncode == 2
    assert "no registered certificate" in result.stderr


def test_each_register_is_told_of_the_other_and_keeps_its_own_crl(tmp_path: Path) -> None:
    """In one development folder, without CRL settings, the index's and the key holder's
    revocations each go to a CRL of their own (the second once replaced the first's),
    and each command says that the other register must revoke the certificate too: the
    key holder keeps its own, and a certificate revoked at the index only could still
    turn any BSN into a pseudonym there."""
    env = service_env(tmp_path, free_port())
    dev = tmp_path / "dev"
    run_vir(tmp_path, env, "dev", "init", "--dev-dir", str(dev))
    holder_env = env | keyholder_listing(tmp_path)[0]["env"]
    orgs = {o["category"]: o for o in json.loads((dev / "orgs.json").read_text())}
    gp, school = (
        pki.load_certificate((dev / orgs[c]["cert"]).read_bytes()) for c in ("gp", "education")
    )
    index = run_vir(
        tmp_path,
        env,
        "org",
        "revoke",
        "--serial",
        format(gp.serial_number, "x"),
        "--dev-dir",
        str(dev),
    ).stdout
    holder = run_vir(
        tmp_path,
        holder_env,
        "keyholder",
        "org",
        "revoke",
        "--serial",
        format(school.serial_number, "x"),
        "--dev-dir",
        str(dev),
    ).stdout
    assert "The key holders keep their own register" in index
    assert "vir keyholder org revoke --fingerprint " in index
    assert "Revoke it at the index too" in holder
    assert "vir org revoke --fingerprint " in holder
    assert _serials(dev / "crl.pem") == {gp.serial_number}
    assert _serials(dev / "keyholder-crl.pem") == {school.serial_number}


def test_without_a_crl_revocation_is_refused_from_the_next_request_on(tmp_path: Path) -> None:
    """As ``make run`` starts them: no VIR_CLIENT_CRL, no VIR_KEYHOLDER_CLIENT_CRL. The
    answers just before the revocation come from a warm authenticator, the one after
    it must not."""
    service = start_service(tmp_path / "vir")
    try:
        gp = service.org("gp")
        gp_files = (gp.cert, gp.key)
        fingerprint = pki.fingerprint(pki.load_certificate(Path(gp.cert).read_bytes()))
        for _ in range(3):
            assert _index(service, gp_files).status == 200
            assert _holder(service, gp_files).status == 200
        service.vir("org", "revoke", "--fingerprint", fingerprint, "--dev-dir", str(service.dev))
        reply = _index(service, gp_files)
        assert reply.status == 403
        assert reply.json()["type"].endswith("certificate-revoked")
        assert _holder(service, gp_files).status == 200  # its own register: not yet
        service.keyholder(
            "org", "revoke", "--fingerprint", fingerprint, "--dev-dir", str(service.dev)
        )
        reply = _holder(service, gp_files)
        assert reply.status == 403
        assert reply.json()["type"].endswith("certificate-revoked")
    finally:
        service.stop()
