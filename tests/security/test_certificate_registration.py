"""Client certificates that must not be registered, or used, tried as an attacker would
(issue 11, point 5).

``vir org cert --cert`` (and ``vir org add --cert``) registered an expired, a not yet
valid, a serverAuth-only, a CA:TRUE and an RSA-1024 certificate, and the CA:TRUE one
then logged in. Registration (``services.onboarding``, not only the CLI) now refuses
every unfit certificate with an InputError naming ``certificate``; at use, a CA
certificate or one without EKU clientAuth is refused even when it is in the registry,
by the index and by the key holder (which keeps a registry of its own).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from support.https import Reply, request
from support.instore import ORGS, T0, Store, fresh_store, template
from support.service import RunningService, start_service

from vir.crypto import pki
from vir.domain.errors import CertificateNotForClientAuth, InputError
from vir.domain.organisations import Role
from vir.services.identity import Authenticator, presented
from vir.services.onboarding import register_certificate
from vir.store.db import Database
from vir.store.organisations import add_certificate, get_certificate
from vir.store.tables import AuditEntryRow

EVALUATE = "/v1/oprf/evaluate"
BODY = json.dumps({"blinded_elements": ["YJoK5owVo89pA3ZkYTB-XIuy-V5-ZVDh_6Lcmd5RgDw"]}).encode()
OIN = str(ORGS[0].oin)
CA = pki.create_ca("attacker test CA", T0 - dt.timedelta(days=30))
PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)


def forge(
    ca: pki.Issued = CA,
    *,
    now: dt.datetime = T0,
    key: PrivateKey | None = None,
    serials: tuple[str, ...] = (OIN,),
    not_before: dt.timedelta = dt.timedelta(hours=-1),
    not_after: dt.timedelta = dt.timedelta(days=30),
    usages: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    is_ca: bool | None = False,
    digest: hashes.HashAlgorithm | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate signed by ``ca``, shaped as the caller says (defaults: a good one)."""
    key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forged BV")]
    for serial in serials:
        # PrintableString holds ASCII only; anything else needs a UTF8String.
        kind = _ASN1Type.PrintableString if serial.isascii() else _ASN1Type.UTF8String
        subject.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial, _type=kind))
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, "forged back-office"))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
    )
    if is_ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=None), critical=True
        )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    return builder.sign(ca.key, digest or hashes.SHA256()), key


# Each certificate an attacker (or a careless administrator) might register, and a word
# the refusal must contain. Keys are made lazily: RSA and DSA generation is slow.
BAD: dict[str, tuple[Callable[[], x509.Certificate], str]] = {
    "expired": (lambda: forge(not_after=dt.timedelta(seconds=-1))[0], "expired"),
    "not yet valid": (lambda: forge(not_before=dt.timedelta(minutes=5))[0], "not valid yet"),
    "serverAuth only": (
        lambda: forge(usages=(ExtendedKeyUsageOID.SERVER_AUTH,))[0],
        "clientAuth",
    ),
    "anyExtendedKeyUsage": (
        lambda: forge(usages=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,))[0],
        "clientAuth",
    ),
    "no EKU": (lambda: forge(usages=None)[0], "ExtendedKeyUsage"),
    "CA:TRUE": (lambda: forge(is_ca=True)[0], "CA certificate"),
    "RSA-1024": (lambda: forge(key=rsa.generate_private_key(65537, 1024))[0], "1024 bits"),
    "RSA-2047": (lambda: forge(key=rsa.generate_private_key(65537, 2047))[0], "2047 bits"),
    "EC P-521": (lambda: forge(key=ec.generate_private_key(ec.SECP521R1()))[0], "secp521r1"),
    "EC P-224": (lambda: forge(key=ec.generate_private_key(ec.SECP224R1()))[0], "secp224r1"),
    "EC secp256k1": (
        lambda: forge(key=ec.generate_private_key(ec.SECP256K1()))[0],
        "secp256k1",
    ),
    "Ed448": (lambda: forge(key=ed448.Ed448PrivateKey.generate())[0], "key type"),
    "DSA-2048": (lambda: forge(key=dsa.generate_private_key(2048))[0], "key type"),
    "no serialNumber": (lambda: forge(serials=())[0], "serialNumber"),
    "two serialNumbers": (lambda: forge(serials=(OIN, str(ORGS[1].oin)))[0], "serialNumber"),
    "19-digit OIN": (lambda: forge(serials=(OIN[1:],))[0], "20-digit"),
    "OIN with letters": (lambda: forge(serials=(OIN[:-1] + "x",))[0], "20-digit"),
    # Arabic-Indic digits: str.isdigit() says yes, an OIN is ASCII digits only.
    "OIN in other digits": (
        lambda: forge(serials=("".join(chr(0x660 + int(c)) for c in OIN),))[0],
        "20-digit",
    ),
    "unknown organisation": (
        lambda: forge(serials=("00000009999999999999",))[0],
        "not a registered organisation",
    ),
}

GOOD: dict[str, Callable[[], x509.Certificate]] = {
    "EC P-256": lambda: forge()[0],
    "EC P-384": lambda: forge(key=ec.generate_private_key(ec.SECP384R1()))[0],
    "RSA-2048": lambda: forge(key=rsa.generate_private_key(65537, 2048))[0],
    "Ed25519": lambda: forge(key=ed25519.Ed25519PrivateKey.generate())[0],
    "clientAuth and serverAuth": lambda: forge(
        usages=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    )[0],
    "no BasicConstraints": lambda: forge(is_ca=None)[0],
    "dev PKI": lambda: (
        pki.issue_client_certificate(
            CA, OIN, ORGS[0].name, T0 - dt.timedelta(minutes=5), T0 + dt.timedelta(days=365)
        ).cert
    ),
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "store.db") as opened:
        yield opened


def _audit_size(db: Database) -> int:
    with db.read() as session:
        return session.query(AuditEntryRow).count()


@pytest.mark.parametrize("name", list(BAD))
def test_an_unfit_certificate_is_refused_at_registration(store: Store, name: str) -> None:
    make, reason = BAD[name]
    cert = make()
    before = _audit_size(store.db)
    with pytest.raises(InputError) as refused:
        register_certificate(store.db, cert, T0)
    assert refused.value.field == "certificate"
    assert reason in refused.value.detail
    with store.db.read() as session:
        assert get_certificate(session, pki.fingerprint(cert)) is None
    assert _audit_size(store.db) == before  # nothing registered, nothing audited


@pytest.mark.parametrize("name", list(GOOD))
def test_a_fit_certificate_is_registered(store: Store, name: str) -> None:
    cert = GOOD[name]()
    assert pki.client_certificate_problem(cert, T0) is None
    fingerprint = register_certificate(store.db, cert, T0)
    with store.db.read() as session:
        row = get_certificate(session, fingerprint)
    assert row is not None and row.oin == OIN


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_sha1_signed_certificate_is_refused(store: Store, tmp_path: Path) -> None:
    # cryptography will not sign with SHA-1 any more; the openssl command still does.
    key, cert_path = tmp_path / "sha1.key", tmp_path / "sha1.crt"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha1"
    command += " -days 2 -addext basicConstraints=critical,CA:FALSE"
    command += " -addext extendedKeyUsage=clientAuth"
    subject = f"/O=Forged BV/serialNumber={OIN}/CN=forged"
    subprocess.run(
        [*command.split(), "-subj", subject, "-keyout", str(key), "-out", str(cert_path)],
        check=True,
        capture_output=True,
    )
    cert = pki.load_certificate(cert_path.read_bytes())
    with pytest.raises(InputError, match="SHA1") as refused:
        register_certificate(store.db, cert, dt.datetime.now(dt.UTC))
    assert refused.value.field == "certificate"


def test_a_certificate_for_another_organisation_is_refused(store: Store) -> None:
    # `vir org cert --oin A --cert B's-certificate` must not register it for B.
    cert, _ = forge(serials=(str(ORGS[1].oin),))
    with pytest.raises(InputError) as refused:
        register_certificate(store.db, cert, T0, oin=OIN)
    assert refused.value.field == "certificate"
    assert "not this organisation" in refused.value.detail
    assert register_certificate(store.db, cert, T0, oin=str(ORGS[1].oin))


def test_validity_is_judged_at_the_registration_time(store: Store) -> None:
    cert, _ = forge(not_after=dt.timedelta(days=1))
    with pytest.raises(InputError, match="expired"):
        register_certificate(store.db, cert, T0 + dt.timedelta(days=2))
    assert register_certificate(store.db, cert, T0 + dt.timedelta(hours=23))


@pytest.mark.parametrize("name", ["CA:TRUE", "no EKU", "serverAuth only", "anyExtendedKeyUsage"])
def test_at_use_a_registered_non_client_certificate_is_refused(store: Store, name: str) -> None:
    """Put in the registry behind registration's back (an older vir, a database edit)."""
    cert = BAD[name][0]()
    _register_directly(store.db, cert, T0)
    claim = presented(pki.cert_pem(cert).decode("ascii"))
    with pytest.raises(CertificateNotForClientAuth):
        Authenticator(store.db, lambda: T0).authenticate(claim)


def _register_directly(db: Database, cert: x509.Certificate, now: dt.datetime) -> None:
    with db.write() as session:
        add_certificate(
            session,
            fingerprint=pki.fingerprint(cert),
            oin=pki.oin_of(cert) or "",
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            now=now,
        )


# --- Against a real `vir serve`, over real TLS ----------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("certificates"))
    yield running
    running.stop()


def _dev_ca(service: RunningService) -> pki.Issued:
    return pki.load_issued(service.dev / "ca.crt", service.dev / "ca.key")


def _files(folder: Path, name: str, cert: x509.Certificate, key: PrivateKey) -> tuple[str, str]:
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(pki.cert_pem(cert))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


@dataclass(frozen=True)
class Server:
    """The index or key holder 1 of a running service: a request that needs a client
    certificate, and the database holding that server's registry and audit log."""

    name: str
    method: str
    path: str
    body: bytes | None

    def port(self, service: RunningService) -> int:
        return service.port if self.name == "index" else service.keyholder_port

    def database_url(self, service: RunningService) -> str:
        return service.database_url if self.name == "index" else service.keyholder_database_url

    def call(self, service: RunningService, files: tuple[str, str]) -> Reply:
        return request(self.port(service), service.ca, self.method, self.path, self.body, files)


SERVERS = [Server("index", "GET", "/v1/signals", None), Server("keyholder", "POST", EVALUATE, BODY)]
on_both = pytest.mark.parametrize("server", SERVERS, ids=[s.name for s in SERVERS])


def _refusals(service: RunningService, server: Server) -> list[dict[str, object]]:
    database = Database.connect(server.database_url(service))
    try:
        database.integrate()  # what the service committed, as its integrator would
        with database.read() as session:
            bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
            entries = [json.loads(bytes(body)) for body in bodies]
    finally:
        database.dispose()
    return [e for e in entries if e["outcome"] == "refused"]


def _register_in(service: RunningService, server: Server, cert: x509.Certificate) -> None:
    database = Database.connect(server.database_url(service))
    try:
        _register_directly(database, cert, dt.datetime.now(dt.UTC))
    finally:
        database.dispose()


def test_the_demo_certificates_pass_the_registration_checks(service: RunningService) -> None:
    now = dt.datetime.now(dt.UTC)
    for org in service.orgs:
        cert = pki.load_certificate(Path(org.cert).read_bytes())
        assert pki.client_certificate_problem(cert, now) is None, org.name
        assert pki.is_client_auth_certificate(cert)


def test_the_member_certificate_logs_in_at_both(service: RunningService) -> None:
    """The control for the refusals below: the same requests with the demo certificate."""
    member = service.org("gp")
    for server in SERVERS:
        reply = server.call(service, (member.cert, member.key))
        assert reply.status == 200, (server.name, reply.body)


@on_both
@pytest.mark.parametrize("name", ["CA:TRUE", "no EKU"])
def test_a_registered_non_client_certificate_is_refused_over_tls(
    service: RunningService, tmp_path: Path, server: Server, name: str
) -> None:
    """OpenSSL completes the handshake for these; the application must refuse them."""
    now = dt.datetime.now(dt.UTC)
    member = service.org("gp")
    if name == "CA:TRUE":
        cert, key = forge(_dev_ca(service), now=now, serials=(member.oin,), is_ca=True)
    else:
        cert, key = forge(_dev_ca(service), now=now, serials=(member.oin,), usages=None)
    _register_in(service, server, cert)
    files = _files(tmp_path, "forged", cert, key)
    before = len(_refusals(service, server))
    reply = server.call(service, files)
    assert reply.status == 401, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["type"] == "urn:vir:problem:certificate-not-for-client-auth"
    (entry,) = _refusals(service, server)[before:]
    assert entry["reason"] == "certificate_not_for_client_auth"
    assert entry["certificate"] == pki.fingerprint(cert)


@on_both
def test_a_server_certificate_does_not_log_in(
    service: RunningService, tmp_path: Path, server: Server
) -> None:
    """serverAuth only, registered behind registration's back: OpenSSL already refuses it
    in the handshake (the application would too)."""
    now = dt.datetime.now(dt.UTC)
    member = service.org("gp")
    cert, key = forge(
        _dev_ca(service), now=now, serials=(member.oin,), usages=(ExtendedKeyUsageOID.SERVER_AUTH,)
    )
    _register_in(service, server, cert)
    files = _files(tmp_path, "server-only", cert, key)
    try:
        reply = server.call(service, files)
    except (ssl.SSLError, ConnectionError):
        return
    assert reply.status == 401, reply.body


def test_vir_org_cert_refuses_each_unfit_certificate(
    service: RunningService, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = _dev_ca(service)
    member = service.org("gp")
    cases = {
        "expired": forge(ca, now=now, serials=(member.oin,), not_after=dt.timedelta(seconds=-1)),
        "ca-true": forge(ca, now=now, serials=(member.oin,), is_ca=True),
        "rsa-1024": forge(
            ca, now=now, serials=(member.oin,), key=rsa.generate_private_key(65537, 1024)
        ),
        "other-organisation": forge(ca, now=now, serials=(service.org("education").oin,)),
    }
    for name, (cert, key) in cases.items():
        cert_path, _ = _files(tmp_path, name, cert, key)
        result = service.vir(
            "org", "cert", "--oin", member.oin, "--role", "system", "--cert", cert_path, check=False
        )
        assert result.returncode == 2, (name, result.stdout)
        assert result.stderr.startswith("vir: certificate: "), (name, result.stderr)
        assert not service.sql(
            "SELECT fingerprint FROM certificates WHERE fingerprint = :fp",
            fp=pki.fingerprint(cert),
        ), name


def test_vir_org_add_with_an_unfit_certificate_registers_nothing(
    service: RunningService, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    oin = "00000009000000000555"
    cert, key = forge(_dev_ca(service), now=now, serials=(oin,), is_ca=True)
    cert_path, _ = _files(tmp_path, "onboard", cert, key)
    args = ["org", "add", "--oin", oin, "--name", "Nieuw BV", "--category", "education"]
    args += ["--region", "Rotterdam", "--convenant", "RTM-1", "--cert", cert_path]
    result = service.vir(*args, check=False)
    assert result.returncode == 2
    assert "CA certificate" in result.stderr
    assert oin not in service.vir("org", "list").stdout  # the organisation is not left behind


@pytest.mark.parametrize("content", [b"not a certificate\n", b"", None])
def test_a_file_that_is_no_certificate_is_a_clean_refusal(
    service: RunningService, tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "cert.pem"
    if content is not None:
        path.write_bytes(content)
    member = service.org("education")
    result = service.vir(
        "org", "cert", "--oin", member.oin, "--role", "system", "--cert", str(path), check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("vir: cert: ")
    assert "Traceback" not in result.stderr
    if content is None:  # the path it tried, absolute: vir-admin may run elsewhere
        assert result.stderr == f"vir: cert: cannot read the certificate file {path}\n"


def test_a_certificate_registered_twice_is_refused_by_name(store: Store) -> None:
    # Before: the second insert hit the primary key, and `vir org cert` ended in an
    # IntegrityError traceback (on PostgreSQL, UniqueViolation on certificates_pkey).
    cert, _ = forge()
    register_certificate(store.db, cert, T0, Role.SYSTEM)
    before = _audit_size(store.db)
    for role in (Role.SYSTEM, Role.COORDINATOR):
        with pytest.raises(InputError) as refused:
            register_certificate(store.db, cert, T0, role, oin=OIN)
        assert refused.value.field == "certificate"
        assert refused.value.detail == (
            f"this certificate is already registered, for organisation {OIN} with role system"
        )
    assert _audit_size(store.db) == before


def test_vir_org_cert_on_a_registered_certificate_is_one_line(service: RunningService) -> None:
    member = service.org("gp")
    index = service.vir(
        "org", "cert", "--oin", member.oin, "--role", "system", "--cert", member.cert, check=False
    )
    # The index's own certificate at the key holder, which `vir dev init` registered there.
    operator = pki.load_certificate((service.dev / "index-service.crt").read_bytes())
    operator_oin = pki.oin_of(operator)
    assert operator_oin is not None
    holder = service.keyholder(
        "org",
        "cert",
        "--oin",
        operator_oin,
        "--role",
        "index_service",
        "--cert",
        str(service.dev / "index-service.crt"),
        check=False,
    )
    for result, oin, role in (
        (index, member.oin, "system"),
        (holder, operator_oin, "index_service"),
    ):
        assert result.returncode == 2, result.stdout
        assert result.stderr == (
            "vir: certificate: this certificate is already registered, "
            f"for organisation {oin} with role {role}\n"
        )


def test_revoking_without_a_development_ca_says_nothing_of_one(
    store: Store, tmp_path: Path
) -> None:
    """In production there is no development CA, and the operator never gave --dev-dir:
    the reminder is about their own CA's CRL (before: "no CA key in --dev-dir")."""
    from support.clirun import run_vir

    cert, _ = forge()
    fingerprint = register_certificate(store.db, cert, T0)
    empty = tmp_path / "no-dev-ca"
    ran = run_vir(store.db, "org", "revoke", "--fingerprint", fingerprint, "--dev-dir", str(empty))
    assert ran.code == 0, ran.err
    assert "publish the revocation through your CA's CRL" in ran.out
    assert "dev" not in ran.out.lower()
