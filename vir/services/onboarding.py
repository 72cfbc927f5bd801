"""Onboarding organisations (``vir org add``) and registering their certificates."""

from __future__ import annotations

import datetime as dt
from typing import Any

from vir.audit.chain import Outcome
from vir.crypto import pki
from vir.domain.errors import InputError
from vir.domain.organisations import Organisation, Role
from vir.domain.signals import Professional
from vir.services.identity import Caller
from vir.services.matching import notify_contact_changed
from vir.store import audit_log
from vir.store.db import Database
from vir.store.organisations import add_certificate, add_organisation, get_organisation
from vir.store.organisations import set_coordinator as store_coordinator
from vir.store.signals import signals_of_organisation

ACTION_ORG_ADDED = "admin.organisation_added"
ACTION_CERT_REGISTERED = "admin.certificate_registered"


def register_organisation(db: Database, org: Organisation, now: dt.datetime) -> None:
    with db.write() as session:
        if get_organisation(session, str(org.oin)) is not None:
            raise InputError("oin", "an organisation with this OIN is already registered")
        add_organisation(session, org, now)
        audit_log.append(
            session,
            audit_log.new_event(
                ACTION_ORG_ADDED,
                Outcome.SUCCESS,
                now,
                organisation=str(org.oin),
                actor="admin",
                objects={"category": org.category.value}
                | ({"convenant": org.convenant} if org.convenant else {}),
            ),
        )


def register_certificate(
    db: Database, cert: pki.Certificate, now: dt.datetime, role: Role = Role.SYSTEM
) -> str:
    """Register a client certificate for the organisation named by its serialNumber (OIN).

    Roles: ``system`` (the back office) and ``coordinator`` for reporting organisations,
    ``privacy_officer`` for a municipality.
    """
    oin = pki.oin_of(cert)
    if oin is None:
        raise InputError("certificate", "the certificate subject has no single serialNumber (OIN)")
    fingerprint = pki.fingerprint(cert)
    not_before, not_after = pki.not_valid_window(cert)
    with db.write() as session:
        org = get_organisation(session, oin)
        if org is None:
            raise InputError(
                "certificate", "the certificate's OIN is not a registered organisation"
            )
        if (role is Role.PRIVACY_OFFICER) == org.category.reports:
            raise InputError(
                "role",
                "privacy officers belong to a municipality; system and coordinator "
                "certificates to a reporting organisation",
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
                ACTION_CERT_REGISTERED,
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
    the organisation's signals are told. Returns the number of notifications sent."""
    with db.write() as session:
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
                "organisation.coordinator_changed", Outcome.SUCCESS, now, **accessor
            ),
        )
        ids = [r.id for r in signals_of_organisation(session, oin)]
        return notify_contact_changed(session, ids, now)
