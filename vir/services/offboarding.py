"""Offboarding an organisation (``vir org remove``; ``vir keyholder org remove`` at a
key holder): it stops participating at once, and its row goes once nothing kept needs it.

At once, first in a transaction of its own (``_shut_out``):

* every certificate of it is revoked (each audited as ``admin.certificate_revoked``):
  its next request is refused (403 ``certificate-revoked``), and its portal sign-in
  and its people's portal sessions end;

then in one transaction, under its row's lock:

* its active signals are withdrawn, only when the operator says so (``withdraw``;
  otherwise ``Conflict``), with the reason ``participation_ended``: erased, not
  archived (the archive is for signals removed because the risk ended or at the end of
  their term, Jeugdwet ch. 7 §1; an organisation leaving is neither). Match partners
  are told as for any withdrawal (``match.left``), and the notifications showing its
  reporters go with them (vir.services.removal);
* a certificate registered meanwhile is revoked too;
* its webhook, e-mail and portal sign-in settings, its key-holder token trust, its
  notification cursor, rate-limit buckets, portal sessions and any delivery still
  open for it are deleted: nothing is delivered to it any more;
* its coordinator's contact details are cleared and ``left_at`` is set.

What stays is a tombstone (OIN, name, category, region, convenant, dates), while

* an archived signal of it is kept (the archive names its organisation, and offers it
  once to a new reporter: vir.services.signals.offer_archive), and
* a certificate of it is still within its validity (it stays in the register, revoked,
  so that the CRL made from the register keeps listing it).

Then ``purge`` deletes the certificates and the row (``organisation.deleted``): at
once when nothing holds it, else in the lifecycle run that finds nothing holding it
any more. A registration under way at the moment of removal (its certificate checked
just before the revocation) either commits before the removal reads the active
signals, and is withdrawn with them, or finds the organisation left and stores
nothing (403 ``certificate-revoked``): the two lock the organisation's row. Without
``withdraw``, an organisation with active signals is refused before anything changes.
Audit entries keep the OIN: an organisation is not a person.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain.errors import Conflict, InputError
from vir.domain.organisations import Oin
from vir.domain.signals import PARTICIPATION_ENDED
from vir.services import removal
from vir.services.identity import audit_revoked
from vir.store import audit_log, locks
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.organisations import end_portal_sessions
from vir.store.records import Signal
from vir.store.signals import signals_of_organisation
from vir.store.tables import (
    ArchivedSignalRow,
    CertificateRow,
    DeliveryRow,
    KeyholderOidcRow,
    NotificationCounterRow,
    OrganisationEmailRow,
    OrganisationOidcRow,
    OrganisationRow,
    PortalSessionRow,
    RateLimitRow,
    SignalRow,
    WebhookRow,
)

ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Offboarding:
    """What ``remove`` did: ``withdrawn`` signals, ``revoked`` certificates, whether the
    row was ``deleted`` at once, else what keeps the tombstone: ``archived`` signals and
    the last certificate expiry (``certificates_until``)."""

    name: str
    withdrawn: int
    revoked: int
    deleted: bool
    archived: int = 0
    certificates_until: dt.datetime | None = None


def remove(db: Database, oin: str, now: dt.datetime, *, withdraw: bool = False) -> Offboarding:
    """Offboard the organisation ``oin`` (see the module docstring); again for one that
    left already, it withdraws what is still active (with ``withdraw``) and deletes the
    row when nothing holds it any more. InputError (``oin``) when it is not registered;
    Conflict when it has active signals and ``withdraw`` is not given.

    Two transactions: ``_shut_out`` first, then the removal proper under the
    organisation's row lock."""
    oin = str(Oin(oin))
    revoked = _shut_out(db, oin, now, withdraw)
    with db.write() as session:
        locks.take(session, [Lock.named("organisation", oin)])
        # FOR NO KEY UPDATE on PostgreSQL: a write of the organisation under way holds the
        # row FOR SHARE (vir.store.organisations.participates); this waits for it to
        # commit, and then reads its signal among the active ones. One that comes after
        # finds it left. A foreign key's key-share lock (an archived signal) is not held up.
        row = session.get(OrganisationRow, oin, with_for_update={"key_share": True})
        if row is None:
            raise InputError("oin", "not a registered organisation")
        name = row.name
        active = signals_of_organisation(session, oin)
        if active and not withdraw:
            # A registration checked before ``_shut_out`` committed its signal since.
            raise _has_active(name, len(active), shut_out=True)
        revoked += _revoke_certificates(session, oin, now)  # one registered meanwhile
        _withdraw_all(session, oin, active, now, ADMIN)
        _stop_delivery(session, oin)
        first = row.left_at is None
        if first:
            row.left_at = now
            row.coordinator_name = row.coordinator_email = row.coordinator_phone = None
            session.flush()
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.ADMIN_ORGANISATION_REMOVED,
                    Outcome.SUCCESS,
                    now,
                    organisation=oin,
                    actor=ADMIN,
                    objects={"signals": len(active), "certificates": revoked},
                ),
            )
        deleted = bool(_purge_one(session, oin, now, actor=ADMIN))
        archived, until = (0, None) if deleted else _held_by(session, oin, now)
    return Offboarding(name, len(active), revoked, deleted, archived, until)


def _shut_out(db: Database, oin: str, now: dt.datetime, withdraw: bool) -> int:
    """Revoke the certificates of ``oin`` and end its portal sessions, in a transaction of
    its own that locks no row its requests use; the number revoked.

    Every write of an organisation holds its row FOR SHARE until it commits
    (vir.store.organisations.participates), and on PostgreSQL a share locker does not
    queue behind a waiting exclusive one: a steady stream of its registrations, each
    taking the row while the one before still held it, kept the removal's FOR NO KEY
    UPDATE waiting for as long as the stream lasted, up to its lock timeout. Once this
    commits, the organisation's next request is refused at the door (its certificate
    revoked, its portal session gone), and the removal waits only for those under way.
    Refuses (Conflict) before anything is changed when it has active signals and
    ``withdraw`` is not given. Its portal sign-in goes here too: the portal's requests
    carry no certificate. Should the removal proper then fail (a registration checked
    before this committed its signal meanwhile, without ``withdraw``; a crash), the
    organisation is shut out but has not left: running the removal again finishes it."""
    with db.write() as session:
        locks.take(session, [Lock.named("organisation", oin)])
        row = session.get(OrganisationRow, oin)
        if row is None:
            raise InputError("oin", "not a registered organisation")
        if not withdraw:
            active = session.scalar(
                select(func.count()).select_from(SignalRow).where(SignalRow.oin == oin)
            )
            if active:
                raise _has_active(row.name, int(active), shut_out=False)
        # Its people can no more sign in to the portal (whose requests carry no
        # certificate) than its systems can call.
        session.execute(delete(OrganisationOidcRow).where(OrganisationOidcRow.oin == oin))
        end_portal_sessions(session, oin)
        return _revoke_certificates(session, oin, now)


def _has_active(name: str, count: int, *, shut_out: bool) -> Conflict:
    if shut_out:  # a registration checked before the shut-out committed meanwhile
        return Conflict(
            f"{name} has {count} active signal(s), registered while it was being removed: "
            "its certificates are revoked and its portal sign-in is gone already; run "
            "vir org remove again with --withdraw to finish (erased, not archived; their "
            "match partners are told)"
        )
    return Conflict(
        f"{name} has {count} active signal(s); give --withdraw to withdraw "
        "them all (erased, not archived; their match partners are told)"
    )


def purge(db: Database, now: dt.datetime, actor: str) -> int:
    """Delete every organisation that left and that nothing holds any more (no signal,
    no archived signal, every certificate expired), with its certificates; returns how
    many. The lifecycle's last step, after it destroyed the archived signals due.

    A signal of an organisation that left is withdrawn first, as ``remove`` withdraws
    them. None should be there (``remove`` leaves none active, and a registration
    checks participation in its own transaction); an older vir or a database edit may
    have left one."""
    with db.read() as session:
        left = list(
            session.scalars(
                select(OrganisationRow.oin)
                .where(OrganisationRow.left_at.is_not(None))
                .order_by(OrganisationRow.oin)
            )
        )
    deleted = 0
    for oin in left:
        with db.write() as session:
            locks.take(session, [Lock.named("organisation", oin)])
            _withdraw_all(session, oin, signals_of_organisation(session, oin), now, actor)
            deleted += _purge_one(session, oin, now, actor=actor)
    return deleted


def _withdraw_all(
    session: Session, oin: str, rows: list[Signal], now: dt.datetime, actor: str
) -> None:
    """Withdraw ``rows`` because their organisation left: ``signal.withdrawn`` (reason
    ``participation_ended``), then erased, their partners told (vir.services.removal)."""
    by: dict[str, Any] = {"organisation": oin, "actor": actor, "reason": PARTICIPATION_ENDED}
    removal.remove_many(
        session,
        rows,
        now,
        None,  # erased: an organisation leaving is no reason to archive
        lambda _row: by,
        cause=lambda signal: audit_log.new_event(
            Action.SIGNAL_WITHDRAWN, Outcome.SUCCESS, now, objects={"signal": signal.id}, **by
        ),
    )


def _revoke_certificates(session: Session, oin: str, now: dt.datetime) -> int:
    """Revoke every certificate of ``oin`` not revoked yet, each audited."""
    fingerprints = list(
        session.scalars(
            select(CertificateRow.fingerprint)
            .where(CertificateRow.oin == oin, CertificateRow.revoked_at.is_(None))
            .order_by(CertificateRow.fingerprint)
        )
    )
    if fingerprints:
        session.execute(
            update(CertificateRow)
            .where(CertificateRow.fingerprint.in_(fingerprints))
            .values(revoked_at=now)
        )
    for fingerprint in fingerprints:
        audit_revoked(session, now, oin, fingerprint)
    return len(fingerprints)


def _stop_delivery(session: Session, oin: str) -> None:
    """Delete what delivers to, signs in for or counts for ``oin``. Its notifications went
    with its signals (a notification lives no longer than its recipient's signal), and
    their deliveries with them; one still open for it is deleted here all the same."""
    for table, column in (
        (WebhookRow, WebhookRow.oin),
        (OrganisationEmailRow, OrganisationEmailRow.oin),
        (OrganisationOidcRow, OrganisationOidcRow.oin),
        (KeyholderOidcRow, KeyholderOidcRow.oin),
        (DeliveryRow, DeliveryRow.oin),
        (NotificationCounterRow, NotificationCounterRow.oin),
        (RateLimitRow, RateLimitRow.oin),
        (PortalSessionRow, PortalSessionRow.oin),
    ):
        session.execute(delete(table).where(column == oin))


def _held_by(session: Session, oin: str, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """What keeps a tombstone: its archived signals, and its last certificate expiry
    (None when every certificate expired)."""
    archived = session.scalar(
        select(func.count()).select_from(ArchivedSignalRow).where(ArchivedSignalRow.oin == oin)
    )
    until = session.scalar(
        select(func.max(CertificateRow.not_after)).where(CertificateRow.oin == oin)
    )
    return int(archived or 0), until if until is not None and until > now else None


def _purge_one(session: Session, oin: str, now: dt.datetime, *, actor: str) -> int:
    """Delete the tombstone of ``oin`` with its certificates when it left and nothing holds
    it; 1 when deleted. Under the organisation's lock."""
    row = session.get(OrganisationRow, oin)
    if row is None or row.left_at is None:
        return 0
    held = session.scalar(
        select(
            exists().where(SignalRow.oin == oin)
            | exists().where(ArchivedSignalRow.oin == oin)
            | exists().where(CertificateRow.oin == oin, CertificateRow.not_after > now)
        )
    )
    if held:
        return 0
    certificates = session.execute(delete(CertificateRow).where(CertificateRow.oin == oin))
    # Deleted with the organisation, whichever way it went (ON DELETE CASCADE is not
    # relied on: SQLite enforces foreign keys only when asked to).
    _stop_delivery(session, oin)
    session.delete(row)
    session.flush()
    audit_log.append(
        session,
        audit_log.new_event(
            Action.ORGANISATION_DELETED,
            Outcome.SUCCESS,
            now,
            organisation=oin,
            actor=actor,
            objects={"certificates": int(certificates.rowcount or 0)},  # type: ignore[attr-defined]
        ),
    )
    return 1
