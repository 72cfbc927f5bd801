"""X.509 for mutual TLS: a development CA, organisation and server certificates.

Organisation certificates follow PKIoverheid's shape: the OIN (20 digits) is the
subject's ``serialNumber`` attribute, the organisation name is ``O``.

A certificate is registered for an organisation only when it is fit to be a TLS client
certificate (``client_certificate_problem``): valid now, not a CA, ExtendedKeyUsage
clientAuth, a strong enough key and signature. Every request checks the first two facts
again (``is_client_auth_certificate``): a CA certificate must not log in even if it was
registered some other way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey
Certificate = x509.Certificate


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    def __repr__(self) -> str:
        return f"Issued(subject={self.cert.subject.rfc4514_string()!r})"


def _new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a leaf only signs (TLS handshakes)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(common_name: str, now: dt.datetime, days: int = 3650) -> Issued:
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vir development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        _builder(
            name,
            name,
            key.public_key(),
            now - dt.timedelta(minutes=5),
            now + dt.timedelta(days=days),
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(ca=True),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _leaf(
    ca: Issued,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    not_before: dt.datetime,
    not_after: dt.datetime,
    san: x509.SubjectAlternativeName | None = None,
) -> Issued:
    key = _new_key()
    builder = (
        _builder(subject, ca.cert.subject, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(ca=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def issue_server_certificate(
    ca: Issued, hosts: list[str], now: dt.datetime, days: int = 825
) -> Issued:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    return _leaf(
        ca,
        subject,
        ExtendedKeyUsageOID.SERVER_AUTH,
        now - dt.timedelta(minutes=5),
        now + dt.timedelta(days=days),
        x509.SubjectAlternativeName(names),
    )


def issue_client_certificate(
    ca: Issued,
    oin: str,
    organisation_name: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> Issued:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, oin),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation_name} back-office"),
        ]
    )
    return _leaf(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, not_before, not_after)


def oin_of(cert: x509.Certificate) -> str | None:
    """The subject serialNumber (the OIN in PKIoverheid certificates), if exactly one."""
    values = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 over the DER encoding, lower-case hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def load_certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def load_issued(cert_path: Path, key_path: Path) -> Issued:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC private key")
    return Issued(cert, key)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def save_issued(issued: Issued, cert_path: Path, key_path: Path) -> None:
    """Write certificate (0644) and private key (0600, created exclusively: never overwritten)."""
    key_pem = issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    cert_path.write_bytes(cert_pem(issued.cert))


def not_valid_window(cert: x509.Certificate) -> tuple[dt.datetime, dt.datetime]:
    return cert.not_valid_before_utc, cert.not_valid_after_utc


# --- What a client certificate must be ----------------------------------------------------

# RSA moduli of fewer bits are refused. 2048 is PKIoverheid's floor for end-entity
# certificates (Programma van Eisen) and "voldoende" in NCSC's TLS guidelines, which call
# 3072 "goed": vir is a relying party, and refusing 2048 would refuse certificates that
# PKIoverheid still issues and organisations hold. Raise it here when PKIoverheid does.
MIN_RSA_BITS = 2048
# NIST P-256 and P-384: "goed" in NCSC's guidelines, and what PKIoverheid issues on.
CLIENT_EC_CURVES = frozenset({"secp256r1", "secp384r1"})
_KEYS_ACCEPTED = f"RSA of {MIN_RSA_BITS} bits or more, EC P-256 or P-384, or Ed25519"


def is_client_auth_certificate(cert: x509.Certificate) -> bool:
    """Whether ``cert`` may authenticate a TLS client: it is no CA (BasicConstraints absent
    or CA:FALSE) and its ExtendedKeyUsage lists clientAuth (explicitly: an absent EKU,
    which OpenSSL lets through, or anyExtendedKeyUsage is not enough)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            return False
    except x509.ExtensionNotFound:
        pass
    except ValueError:  # malformed or duplicated extensions: nothing is believed
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usage


def _key_problem(cert: x509.Certificate) -> str | None:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return f"its public key cannot be read; use {_KEYS_ACCEPTED}"
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            return f"its RSA key has {key.key_size} bits, fewer than {MIN_RSA_BITS}"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in CLIENT_EC_CURVES:
            return f"its EC key is on {key.curve.name}; accepted: {_KEYS_ACCEPTED}"
        return None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return None
    return f"its key type is not accepted; use {_KEYS_ACCEPTED}"


def client_certificate_problem(cert: x509.Certificate, now: dt.datetime) -> str | None:
    """Why ``cert`` cannot be registered as a client certificate, or None when it can.

    Checked: the validity period covers ``now``; BasicConstraints is not CA:TRUE;
    ExtendedKeyUsage lists clientAuth; the key is RSA of ``MIN_RSA_BITS`` or more, EC on
    P-256/P-384 or Ed25519; the signature hash is not MD5 or SHA-1. The chain to the
    client CA is not checked here: the TLS layer does that on every connection. The
    answer describes the certificate, which is public; it holds no key material.
    """
    not_before, not_after = not_valid_window(cert)
    if now < not_before:
        return "it is not valid yet (notBefore is in the future)"
    if now > not_after:
        return "it has expired (notAfter is in the past)"
    try:
        extensions = cert.extensions
    except ValueError:
        return "its extensions cannot be parsed (malformed or duplicated)"
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "it is a CA certificate (BasicConstraints CA:TRUE), not a client certificate"
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "it has no ExtendedKeyUsage; a client certificate lists clientAuth"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usage:
        return "its ExtendedKeyUsage does not list clientAuth (TLS client authentication)"
    problem = _key_problem(cert)
    if problem is not None:
        return problem
    try:
        digest = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "its signature algorithm is not supported"
    if isinstance(digest, hashes.SHA1 | hashes.MD5):
        return f"it is signed with {digest.name.upper()}, which is broken"
    return None


# --- Certificate revocation lists -------------------------------------------------------

CRL_DAYS = 30


def build_crl(
    ca: Issued,
    revoked: list[tuple[int, dt.datetime]],
    now: dt.datetime,
    previous: x509.CertificateRevocationList | None = None,
    days: int = CRL_DAYS,
) -> x509.CertificateRevocationList:
    """A CRL signed by ``ca`` listing every ``(serial, revoked_at)``, numbered one higher
    than ``previous``. ``lastUpdate`` is ``now``, never later: a CRL from the future is
    refused by OpenSSL, and with it every client certificate."""
    last_update = now.replace(microsecond=0)
    number = 1
    if previous is not None:
        try:
            number = previous.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
            number += 1
        except x509.ExtensionNotFound:
            pass
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(last_update)
        .next_update(last_update + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    for serial, revoked_at in sorted(revoked):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revoked_at.replace(microsecond=0))
            .build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def load_crl(path: Path) -> x509.CertificateRevocationList | None:
    """The CRL in ``path`` (PEM), or None when there is none yet."""
    try:
        return x509.load_pem_x509_crl(path.read_bytes())
    except FileNotFoundError:
        return None


def write_crl(crl: x509.CertificateRevocationList, path: Path) -> None:
    """Replace ``path`` atomically (0644): a reader sees the old CRL or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    tmp.chmod(0o644)
    os.replace(tmp, path)


def crl_serials(crl: x509.CertificateRevocationList) -> set[int]:
    return {entry.serial_number for entry in crl}


def crl_is_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    public_key = ca.public_key()
    return isinstance(public_key, ec.EllipticCurvePublicKey) and crl.is_signature_valid(public_key)
