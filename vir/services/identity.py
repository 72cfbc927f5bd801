"""Who is calling: from a verified client certificate to a registered organisation.

The TLS layer (embedded server or trusted proxy) has already checked the chain to
the configured CA. Here the certificate must also be a client certificate (no CA,
ExtendedKeyUsage clientAuth: OpenSSL lets a CA:TRUE leaf, or one without any EKU,
through), inside its validity period, registered for an organisation by fingerprint,
and not revoked. Refusals are recorded in the audit log by the API's error handling
(``services.refusals``), with the claimed OIN and the certificate fingerprint from
``presented``.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy.exc
from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import pki
from vir.domain.caller import Caller as Caller  # where the store can see it
from vir.domain.clock import Clock
from vir.domain.errors import (
    CertificateNotForClientAuth,
    CertificateNotValidNow,
    CertificateRevoked,
    InputError,
    NoClientCertificate,
    UnknownCertificate,
    UnknownOrganisation,
)
from vir.domain.organisations import Role
from vir.store import audit_log
from vir.store.certificate_probe import CertificateProbe, CertificateState, certificate_state
from vir.store.db import Database
from vir.store.organisations import get_certificate, get_organisation
from vir.store.tables import CertificateRow


@dataclass(frozen=True)
class Presented:
    """What a client certificate claims, before it is checked (for audit entries)."""

    oin: str | None = None
    fingerprint: str | None = None
    certificate: pki.Certificate | None = None


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
    oin = None
    # isascii: str.isdigit() also accepts other scripts' digits; an OIN is 20 ASCII digits.
    if claimed is not None and claimed.isascii() and claimed.isdigit() and len(claimed) == 20:
        oin = claimed
    return Presented(oin, pki.fingerprint(cert), cert)


@dataclass(frozen=True)
class _Known:
    caller: Caller
    not_before: dt.datetime
    not_after: dt.datetime
    until: float  # monotonic time after which the organisation is looked up again


class Authenticator:
    """Checks a presented certificate against the registry.

    Every request reads the certificate's registry row (one primary-key read), so a
    revocation or deregistration is refused from the very next request on, by every
    process sharing the database, whether or not a CRL is configured. On SQLite a
    certificate identified before is read by ``recall`` on the event loop (a few
    microseconds, ``CertificateProbe``); everything else by ``authenticate``, through a
    session, in a worker thread. What is
    remembered (for ``cache_seconds``, default 5) is only what a revocation cannot
    change: the parsed certificate's validity window and the organisation it names;
    the validity period is checked on every request regardless.
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
        self._probe = CertificateProbe.of(db.engine)

    def recall(self, claim: Presented) -> Caller | None:
        """The caller identified in the last ``cache_seconds``, if its registry row,
        read now, still says what it said then; None when ``authenticate`` must look it
        up. Without I/O but a local SQLite read of a few microseconds (``probe``): fit
        for the event loop. On PostgreSQL there is no probe and this answers None."""
        if self._probe is None:
            return None
        now = self._clock()
        known = self._remembered(claim, now)
        if known is None:
            return None
        state = self._probe.state(known.caller.certificate)
        if isinstance(state, CertificateState) and _still(known.caller, state, now):
            return known.caller
        return None

    def authenticate(self, claim: Presented) -> Caller:
        """The calling organisation; raises the refusal's error. Reads the database."""
        now = self._clock()
        known = self._remembered(claim, now)
        if known is not None:
            state = certificate_state(self._db.engine, known.caller.certificate)
            if state is not None and _still(known.caller, state, now):
                return known.caller
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

    def _remembered(self, claim: Presented, now: dt.datetime) -> _Known | None:
        """What was identified for this certificate, if recent and the certificate is
        inside its validity period ``now``."""
        known = self._known.get(claim.fingerprint or "")
        if known is None or known.until < self._monotonic():
            return None
        if not known.not_before <= now <= known.not_after:
            return None
        return known

    def vouch(self, claim: Presented) -> None:
        """For the service's own endpoints (``/ready``, ``/metrics``): a certificate of
        the client CA that need not be registered (a monitoring system's), but that is
        for client authentication, valid now and, if this service registered it, not
        revoked. Without the database (``/ready`` reports that itself) the revocation is
        not looked up."""
        now = self._clock()
        fingerprint = _usable(claim, now)
        try:
            with self._db.read() as session:
                row = get_certificate(session, fingerprint)
        except (sqlalchemy.exc.DBAPIError, OSError):  # the database does not answer
            return
        if row is not None and row.revoked_at is not None and row.revoked_at <= now:
            raise CertificateRevoked()

    @staticmethod
    def _identify(session: Session, claim: Presented, now: dt.datetime) -> Caller:
        fingerprint = _usable(claim, now)
        # An organisation that left is found too: its certificates are refused as revoked.
        organisation = get_organisation(session, claim.oin, left=True) if claim.oin else None
        if organisation is None:
            raise UnknownOrganisation()
        row = get_certificate(session, fingerprint)
        if row is None or row.oin != claim.oin:
            raise UnknownCertificate()
        if row.revoked_at is not None and row.revoked_at <= now:
            raise CertificateRevoked()
        return Caller(organisation, fingerprint, Role(row.role))


def _still(caller: Caller, state: CertificateState, now: dt.datetime) -> bool:
    """Whether the row still says what it said when ``caller`` was identified: registered
    for the same organisation, with the same role, and not revoked ``now``."""
    return (
        state.oin == caller.oin
        and state.role == caller.role
        and (state.revoked_at is None or state.revoked_at > now)
    )


def _usable(claim: Presented, now: dt.datetime) -> str:
    """The fingerprint of a certificate that was presented, is for client
    authentication and is valid ``now``."""
    if claim.certificate is None or claim.fingerprint is None:
        raise NoClientCertificate()
    # Registration refuses these too; this also stops one registered some other way
    # (an older vir, a database edit) from logging in.
    if not pki.is_client_auth_certificate(claim.certificate):
        raise CertificateNotForClientAuth()
    not_before, not_after = pki.not_valid_window(claim.certificate)
    if not not_before <= now <= not_after:
        raise CertificateNotValidNow()
    return claim.fingerprint


@dataclass(frozen=True)
class Revocation:
    fingerprint: str
    oin: str
    serial: int
    revoked_at: dt.datetime
    already: bool  # it had been revoked before; nothing changed


def revoke_certificate(
    db: Database, now: dt.datetime, *, fingerprint: str | None = None, serial: str | None = None
) -> Revocation:
    """Mark a registered certificate revoked (by SHA-256 fingerprint or hex serial), audited
    as ``admin.certificate_revoked``. Revoking it again changes nothing and is not audited."""
    with db.write() as session:
        if fingerprint is not None:
            row = get_certificate(session, fingerprint.lower().replace(":", ""))
        elif serial is not None:
            wanted = serial.lower().removeprefix("0x").replace(":", "").lstrip("0")
            rows = list(
                session.scalars(select(CertificateRow).where(CertificateRow.serial == wanted))
            )
            if len(rows) > 1:
                raise InputError(
                    "serial", "several certificates have this serial; use --fingerprint"
                )
            row = rows[0] if rows else None
        else:
            raise InputError("fingerprint", "give a fingerprint or a serial")
        if row is None:
            raise InputError(
                "fingerprint" if fingerprint is not None else "serial",
                "no registered certificate has it",
            )
        already = row.revoked_at is not None
        if not already:
            row.revoked_at = now
            session.flush()
            audit_revoked(session, now, row.oin, row.fingerprint)
        assert row.revoked_at is not None
        return Revocation(row.fingerprint, row.oin, int(row.serial, 16), row.revoked_at, already)


def audit_revoked(session: Session, now: dt.datetime, oin: str, fingerprint: str) -> None:
    """``admin.certificate_revoked``: the operator revoked this certificate (by itself, or
    with its organisation: vir.services.offboarding)."""
    audit_log.append(
        session,
        audit_log.new_event(
            Action.ADMIN_CERTIFICATE_REVOKED,
            Outcome.SUCCESS,
            now,
            organisation=oin,
            actor="admin",
            certificate=fingerprint,
        ),
    )


def revoked_certificates(db: Database) -> list[tuple[int, dt.datetime]]:
    """``(serial, revoked_at)`` of every revoked certificate: the content of the CRL."""
    with db.read() as session:
        rows = session.execute(
            select(CertificateRow.serial, CertificateRow.revoked_at).where(
                CertificateRow.revoked_at.is_not(None)
            )
        )
        return [(int(serial, 16), revoked_at) for serial, revoked_at in rows if revoked_at]
