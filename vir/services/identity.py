"""Who is calling: from a verified client certificate to a registered organisation.

The TLS layer (embedded server or trusted proxy) has already checked the chain to
the configured CA. Here the certificate must also be inside its validity period,
registered for an organisation by fingerprint, and not revoked. Refusals are
recorded in the audit log by the API's error handling (``services.refusals``),
with the claimed OIN and the certificate fingerprint from ``presented``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from vir.crypto import pki
from vir.domain.clock import Clock
from vir.domain.errors import (
    CertificateNotValidNow,
    CertificateRevoked,
    NoClientCertificate,
    UnknownCertificate,
    UnknownOrganisation,
)
from vir.domain.organisations import Organisation
from vir.store.organisations import get_certificate, get_organisation


@dataclass(frozen=True)
class Presented:
    """What a client certificate claims, before it is checked (for audit entries)."""

    oin: str | None = None
    fingerprint: str | None = None
    certificate: pki.Certificate | None = None


@dataclass(frozen=True)
class Caller:
    organisation: Organisation
    certificate: str  # SHA-256 fingerprint

    @property
    def oin(self) -> str:
        return str(self.organisation.oin)


def presented(cert_pem: str | None) -> Presented:
    if cert_pem is None:
        return Presented()
    try:
        cert = pki.load_certificate(cert_pem.encode("ascii"))
    except ValueError:
        return Presented()
    claimed = pki.oin_of(cert)
    oin = claimed if claimed is not None and claimed.isdigit() and len(claimed) == 20 else None
    return Presented(oin, pki.fingerprint(cert), cert)


class Authenticator:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def authenticate(self, claim: Presented) -> Caller:
        now = self._clock()
        with self._sessions() as session:
            return self._identify(session, claim, now)

    @staticmethod
    def _identify(session: Session, claim: Presented, now: dt.datetime) -> Caller:
        if claim.certificate is None or claim.fingerprint is None:
            raise NoClientCertificate()
        not_before, not_after = pki.not_valid_window(claim.certificate)
        if not not_before <= now <= not_after:
            raise CertificateNotValidNow()
        organisation = get_organisation(session, claim.oin) if claim.oin else None
        if organisation is None:
            raise UnknownOrganisation()
        row = get_certificate(session, claim.fingerprint)
        if row is None or row.oin != claim.oin:
            raise UnknownCertificate()
        if row.revoked_at is not None and row.revoked_at <= now:
            raise CertificateRevoked()
        return Caller(organisation, claim.fingerprint)
