"""Registered organisations and the client certificates that identify them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from vir.domain.errors import CertificateRevoked
from vir.domain.organisations import Category, Oin, Organisation
from vir.store.tables import CertificateRow, OrganisationRow, PortalSessionRow
from vir.store.write_group import FirstRead, first_read


def _to_domain(row: OrganisationRow) -> Organisation:
    return Organisation(Oin(row.oin), row.name, Category(row.category), row.region, row.convenant)


def add_organisation(session: Session, org: Organisation, now: dt.datetime) -> None:
    session.add(
        OrganisationRow(
            oin=str(org.oin),
            name=org.name,
            category=org.category.value,
            region=org.region,
            created_at=now,
            convenant=org.convenant,
        )
    )
    session.flush()


def get_organisation(session: Session, oin: str, *, left: bool = False) -> Organisation | None:
    """The organisation while it participates; one that left (``vir org remove``: a
    tombstone, vir.services.offboarding) only with ``left``."""
    row = session.get(OrganisationRow, oin)
    return _to_domain(row) if row and (left or row.left_at is None) else None


def has_left(session: Session, oin: str) -> bool:
    """Whether ``oin`` left the index and its tombstone is still held."""
    row = session.get(OrganisationRow, oin)
    return row is not None and row.left_at is not None


def participates(session: Session, oin: str, *, to_update: bool = False) -> bool:
    """Whether ``oin`` still participates (registered and not left), read so that it
    stays so until the caller's write transaction ends.

    On PostgreSQL the row is locked ``FOR SHARE``: ``vir org remove`` locks it ``FOR NO
    KEY UPDATE`` before it reads the organisation's signals, so a write of the
    organisation and its removal wait for each other (share locks do not: registrations
    run in parallel). Not ``FOR UPDATE``: a withdrawal or the lifecycle archiving a
    signal of it holds its young person's lock and then the key-share lock the archive's
    foreign key takes on this row, which ``FOR UPDATE`` would block while the removal
    waits for that young person (a deadlock). On SQLite every writer runs alone anyway.
    Take it before any advisory lock (vir.store.locks): the removal holds the row while
    it takes its signals' locks. ``to_update``: the caller will update the row (its
    coordinator), so it is locked as the removal locks it, ``FOR NO KEY UPDATE``: two
    share locks that both then update would wait for each other."""
    read_ahead = None if to_update else first_read(session, participation(oin))
    if read_ahead is not None:
        return bool(read_ahead) and read_ahead[0][0] is None
    # On the transaction's connection, past the session's ORM layer (a third of the cost).
    query = _PARTICIPATES_TO_UPDATE if to_update else _PARTICIPATES
    found = session.connection().execute(query, {"oin": oin}).first()
    return found is not None and found[0] is None


def participation(oin: str) -> FirstRead:
    """``participates`` (not ``to_update``) read with a writer's BEGIN on PostgreSQL
    (``Database.write(first=...)``): the row stays locked ``FOR SHARE`` to the commit."""
    return FirstRead("SELECT left_at FROM organisations WHERE oin = {} FOR SHARE", (oin,))


def require_participating(session: Session, oin: str) -> None:
    """``participates``, or CertificateRevoked: the organisation was removed while a
    request of it (its certificate checked just before) was under way. First in the
    write transaction of anything the organisation itself writes."""
    if not participates(session, oin):
        raise CertificateRevoked()


_LEFT_AT = select(OrganisationRow.left_at).where(OrganisationRow.oin == bindparam("oin"))
_PARTICIPATES = _LEFT_AT.with_for_update(read=True)
_PARTICIPATES_TO_UPDATE = _LEFT_AT.with_for_update(key_share=True)


def list_organisations(session: Session) -> list[Organisation]:
    """Every registered organisation, also one that left and is still held (reports name
    the organisations of the entries they count)."""
    rows = session.scalars(select(OrganisationRow).order_by(OrganisationRow.oin))
    return [_to_domain(row) for row in rows]


def left_organisations(session: Session) -> dict[str, dt.datetime]:
    """The OIN of every organisation that left and is still held, and when it left."""
    rows = session.execute(
        select(OrganisationRow.oin, OrganisationRow.left_at).where(
            OrganisationRow.left_at.is_not(None)
        )
    )
    return {oin: left_at for oin, left_at in rows if left_at is not None}


def add_certificate(
    session: Session,
    *,
    fingerprint: str,
    oin: str,
    serial: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
    now: dt.datetime,
    role: str = "system",
) -> None:
    session.add(
        CertificateRow(
            fingerprint=fingerprint,
            oin=oin,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            created_at=now,
            role=role,
        )
    )
    session.flush()


def get_certificate(session: Session, fingerprint: str) -> CertificateRow | None:
    return session.get(CertificateRow, fingerprint)


def set_coordinator(
    session: Session, oin: str, name: str | None, email: str | None, phone: str | None
) -> None:
    row = session.get(OrganisationRow, oin)
    assert row is not None
    row.coordinator_name, row.coordinator_email, row.coordinator_phone = name, email, phone
    session.flush()


def end_portal_sessions(session: Session, oin: str) -> None:
    """End every portal session of ``oin`` (its sign-in removed or changed, or the
    organisation shut out): nobody stays signed in. A session's access token lives in
    the portal's memory under the session, and is not reached again. A sign-in under
    way is finished against the organisation's sign-in as it is at the callback: none
    when it was removed, and another provider or client when it was changed, refuse it
    (vir.portal.app)."""
    session.execute(delete(PortalSessionRow).where(PortalSessionRow.oin == oin))
