"""Onboarding organisations (``vir org add``) and registering their certificates."""

from __future__ import annotations

import datetime as dt

from vir.audit.chain import Outcome
from vir.crypto import pki
from vir.domain.errors import InputError
from vir.domain.organisations import Organisation
from vir.store import audit_log
from vir.store.db import Database
from vir.store.organisations import add_certificate, add_organisation, get_organisation

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
                objects={"category": org.category.value},
            ),
        )


def register_certificate(db: Database, cert: pki.Certificate, now: dt.datetime) -> str:
    """Register a client certificate for the organisation named by its serialNumber (OIN)."""
    oin = pki.oin_of(cert)
    if oin is None:
        raise InputError("certificate", "the certificate subject has no single serialNumber (OIN)")
    fingerprint = pki.fingerprint(cert)
    not_before, not_after = pki.not_valid_window(cert)
    with db.write() as session:
        if get_organisation(session, oin) is None:
            raise InputError(
                "certificate", "the certificate's OIN is not a registered organisation"
            )
        add_certificate(
            session,
            fingerprint=fingerprint,
            oin=oin,
            serial=format(cert.serial_number, "x"),
            not_before=not_before,
            not_after=not_after,
            now=now,
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
            ),
        )
    return fingerprint
