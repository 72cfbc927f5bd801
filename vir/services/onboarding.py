"""Onboarding organisations (``vir org add``) and registering their certificates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import pki
from vir.domain import intake, policy
from vir.domain.errors import CertificateRevoked, InputError
from vir.domain.organisations import Oin, Organisation, Role
from vir.domain.signals import Professional
from vir.services.identity import Caller
from vir.services.matching import notify_contact_changed
from vir.store import audit_log, locks
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.organisations import (
    add_certificate,
    add_organisation,
    get_certificate,
    get_organisation,
    has_left,
    participates,
)
from vir.store.organisations import set_coordinator as store_coordinator
from vir.store.signals import signals_of_organisation


def register_organisation(db: Database, org: Organisation, now: dt.datetime) -> None:
    """Register an organisation. One that may report needs the reference of its written
    agreement (convenant) with the municipality (Jeugdwet art. 7.1.3.2): whoever calls."""
    intake.check_organisation_name(org.name)
    intake.check_convenant(org)
    with db.write() as session:
        locks.take(session, [Lock.named("organisation", str(org.oin))])
        if has_left(session, str(org.oin)):
            raise InputError(
                "oin",
                "an organisation with this OIN left the index and is still held (archived "
                "signals or unexpired certificates of it); it cannot be registered again yet",
            )
        if get_organisation(session, str(org.oin)) is not None:
            raise InputError("oin", "an organisation with this OIN is already registered")
        add_organisation(session, org, now)
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ADMIN_ORGANISATION_ADDED,
                Outcome.SUCCESS,
                now,
                organisation=str(org.oin),
                actor="admin",
                objects={"category": org.category.value}
                | ({"convenant": org.convenant} if org.convenant else {}),
            ),
        )


def check_certificate(cert: pki.Certificate, now: dt.datetime, oin: str | None = None) -> str:
    """The OIN of a certificate fit to be registered as a client certificate, or InputError
    (field ``certificate``) saying why it is not: its subject must carry exactly one
    serialNumber of 20 digits (and, given ``oin``, that one), and it must pass
    ``pki.client_certificate_problem`` (valid now, no CA, clientAuth, key strength).

    ``vir org add --cert`` calls it before the organisation is registered, so that a
    refused certificate leaves nothing behind.
    """
    claimed = pki.oin_of(cert)
    try:
        owner = str(Oin(claimed or ""))
    except InputError:
        raise InputError(
            "certificate", "the subject has no single serialNumber holding a 20-digit OIN"
        ) from None
    if oin is not None and owner != oin:
        raise InputError("certificate", "its serialNumber (OIN) is not this organisation's")
    problem = pki.client_certificate_problem(cert, now)
    if problem is not None:
        raise InputError("certificate", problem)
    return owner


def register_certificate(
    db: Database,
    cert: pki.Certificate,
    now: dt.datetime,
    role: Role = Role.SYSTEM,
    *,
    oin: str | None = None,
) -> str:
    """Register a client certificate for the organisation named by its serialNumber (OIN);
    with ``oin``, only when that is the OIN it names. Refused (InputError, field
    ``certificate``) unless ``check_certificate`` accepts it.

    Roles (``policy.certificate_roles``): ``system`` (the back office) and ``coordinator``
    for reporting organisations, ``privacy_officer`` for a municipality (its region),
    ``national_privacy_officer`` for the index operator (every region).
    """
    oin = check_certificate(cert, now, oin)
    fingerprint = pki.fingerprint(cert)
    not_before, not_after = pki.not_valid_window(cert)
    with db.write() as session:
        locks.take(session, [Lock.named("organisation", oin)])
        org = get_organisation(session, oin)
        if org is None:
            raise InputError(
                "certificate", "the certificate's OIN is not a registered organisation"
            )
        policy.require_certificate_role(org.category, role)
        # Checked under the organisation's lock, which every registration of this
        # certificate takes (its OIN is the certificate's own): no other can slip in
        # between this check and the insert.
        known = get_certificate(session, fingerprint)
        if known is not None:
            raise InputError(
                "certificate",
                f"this certificate is already registered, for organisation {known.oin} "
                f"with role {known.role}",
            )
        add_certificate(
            session,
            fingerprint=fingerprint,
            oin=oin,
            serial=format(cert.serial_number, "x"),
            not_before=not_before,
            not_after=not_after,
            now=now,
            role=role.value,
        )
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ADMIN_CERTIFICATE_REGISTERED,
                Outcome.SUCCESS,
                now,
                organisation=oin,
                actor="admin",
                certificate=fingerprint,
                role=role.value,
            ),
        )
    return fingerprint


def set_coordinator(
    db: Database,
    oin: str,
    contact: Professional | None,
    now: dt.datetime,
    caller: Caller | None = None,
) -> int:
    """Appoint (or, with None, remove) an organisation's coordinator; match partners of
    the organisation's signals are told. Returns the number of notifications sent.

    The contact details are held to the rules of every professional's (``domain/contact.py``,
    checked again here whoever made ``contact``); a coordinator has no function.
    """
    if contact is not None:
        contact = Professional(contact.name, contact.email, contact.phone)
    with db.write() as session:
        # Locked so that a removal under way waits for this, or this for it.
        if not participates(session, oin, to_update=True) and caller is not None:
            raise CertificateRevoked()
        org = get_organisation(session, oin)
        if org is None or not org.category.reports:
            raise InputError("oin", "not a registered reporting organisation")
        store_coordinator(
            session,
            oin,
            contact.name if contact else None,
            contact.email if contact else None,
            contact.phone if contact else None,
        )
        accessor: dict[str, Any] = (
            dict(audit_log.by(caller)) if caller else {"organisation": oin, "actor": "admin"}
        )
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ORGANISATION_COORDINATOR_CHANGED, Outcome.SUCCESS, now, **accessor
            ),
        )
        ids = [r.id for r in signals_of_organisation(session, oin)]
        return notify_contact_changed(session, ids, now)
