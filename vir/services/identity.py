"""Who is calling: from a verified client certificate to a registered organisation.

The TLS layer (embedded server or trusted proxy) has already checked the chain to
the configured CA. Here the certificate must also be inside its validity period,
registered for an organisation by fingerprint, and not revoked. Every refusal
that gets this far is written to the audit log with the claimed OIN and the
certificate fingerprint, so that a privacy officer sees attempts, not just use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from vir.audit.chain import Outcome
from vir.crypto import pki
from vir.domain.clock import Clock
from vir.domain.errors import (
    AuthenticationError,
    CertificateNotValidNow,
    CertificateRevoked,
    NoClientCertificate,
    UnknownCertificate,
    UnknownOrganisation,
    VirError,
)
from vir.domain.organisations import Organisation
from vir.store import audit_log
from vir.store.organisations import get_certificate, get_organisation

ACTION_REFUSED = "access.refused"


@dataclass(frozen=True)
class Caller:
    organisation: Organisation
    certificate: str  # SHA-256 fingerprint

    @property
    def oin(self) -> str:
        return str(self.organisation.oin)


def reason_code(error: VirError) -> str:
    """A fixed code for an error class, for audit entries (never the message)."""
    name = type(error).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


_REFUSALS = (AuthenticationError, UnknownOrganisation, UnknownCertificate, CertificateRevoked)


@dataclass
class _Presented:
    """What the certificate claims, kept for the audit entry of a refusal."""

    oin: str | None = None
    fingerprint: str | None = None


class Authenticator:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def authenticate(self, cert_pem: str | None, endpoint: str) -> Caller:
        now = self._clock()
        presented = _Presented()
        with self._sessions.begin() as session:
            try:
                return self._identify(session, cert_pem, now, presented)
            except _REFUSALS as refusal:
                # The refusal is recorded in the same transaction, which commits on leaving.
                audit_log.append(
                    session,
                    audit_log.new_event(
                        ACTION_REFUSED,
                        Outcome.REFUSED,
                        now,
                        organisation=presented.oin,
                        certificate=presented.fingerprint,
                        objects={"endpoint": endpoint},
                        reason=reason_code(refusal),
                    ),
                )
                error = refusal
        raise error

    @staticmethod
    def _identify(
        session: Session, cert_pem: str | None, now: dt.datetime, presented: _Presented
    ) -> Caller:
        if cert_pem is None:
            raise NoClientCertificate()
        try:
            cert = pki.load_certificate(cert_pem.encode("ascii"))
        except ValueError:
            raise NoClientCertificate() from None
        presented.fingerprint = pki.fingerprint(cert)
        claimed = pki.oin_of(cert)
        if claimed is not None and claimed.isdigit() and len(claimed) == 20:
            presented.oin = claimed
        not_before, not_after = pki.not_valid_window(cert)
        if not not_before <= now <= not_after:
            raise CertificateNotValidNow()
        organisation = get_organisation(session, presented.oin) if presented.oin else None
        if organisation is None:
            raise UnknownOrganisation()
        row = get_certificate(session, presented.fingerprint)
        if row is None or row.oin != presented.oin:
            raise UnknownCertificate()
        if row.revoked_at is not None and row.revoked_at <= now:
            raise CertificateRevoked()
        return Caller(organisation, presented.fingerprint)
