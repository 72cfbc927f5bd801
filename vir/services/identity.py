"""Who is calling: from a verified client certificate to a registered organisation.

The TLS layer (embedded server or trusted proxy) has already checked the chain to
the configured CA. Here the certificate must also be inside its validity period,
registered for an organisation by fingerprint, and not revoked. Refusals are
recorded in the audit log by the API's error handling (``services.refusals``),
with the claimed OIN and the certificate fingerprint from ``presented``.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vir.crypto import pki
from vir.domain.clock import Clock
from vir.domain.errors import (
    CertificateNotValidNow,
    CertificateRevoked,
    NoClientCertificate,
    UnknownCertificate,
    UnknownOrganisation,
)
from vir.domain.organisations import Organisation, Role
from vir.store.db import Database
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
    role: Role = Role.SYSTEM

    @property
    def oin(self) -> str:
        return str(self.organisation.oin)


@functools.lru_cache(maxsize=4096)
def presented(cert_pem: str | None) -> Presented:
    """Parse a client certificate once per distinct PEM (connections repeat it)."""
    if cert_pem is None:
        return Presented()
    try:
        cert = pki.load_certificate(cert_pem.encode("ascii"))
    except ValueError:
        return Presented()
    claimed = pki.oin_of(cert)
    oin = claimed if claimed is not None and claimed.isdigit() and len(claimed) == 20 else None
    return Presented(oin, pki.fingerprint(cert), cert)


@dataclass(frozen=True)
class _Known:
    caller: Caller
    not_before: dt.datetime
    not_after: dt.datetime
    until: float  # monotonic time after which the registration is looked up again


class Authenticator:
    """Checks a presented certificate against the registry.

    A successful lookup is remembered for ``cache_seconds`` (default 5), so a
    revocation or deregistration takes effect within that time; the validity
    period is checked on every request regardless.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        cache_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._known: dict[str, _Known] = {}

    def cached(self, claim: Presented) -> Caller | None:
        """The caller if this certificate was accepted recently and is valid now; no I/O."""
        known = self._known.get(claim.fingerprint or "")
        if known is None or known.until < self._monotonic():
            return None
        if not known.not_before <= self._clock() <= known.not_after:
            return None
        return known.caller

    def authenticate(self, claim: Presented) -> Caller:
        cached = self.cached(claim)
        if cached is not None:
            return cached
        now = self._clock()
        with self._db.read() as session:
            caller = self._identify(session, claim, now)
        assert claim.certificate is not None
        not_before, not_after = pki.not_valid_window(claim.certificate)
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[caller.certificate] = _Known(
            caller, not_before, not_after, self._monotonic() + self._cache_seconds
        )
        return caller

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
        return Caller(organisation, claim.fingerprint, Role(row.role))
