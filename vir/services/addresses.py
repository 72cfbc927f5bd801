"""The exclusion list: institutional addresses (shelters, institutions) never match."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import oprf
from vir.domain.addresses import check_label
from vir.domain.errors import Conflict, InvalidElement, NotFound
from vir.domain.matching import GroupKey, Via
from vir.services.epochs import Arriving, stored_in
from vir.services.matching import settle, snapshot
from vir.store import audit_log, locks
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.organisations import require_participating
from vir.store.tables import ExcludedAddressRow


def exclude(
    db: Database,
    address: bytes | Arriving,
    label: str,
    now: dt.datetime,
    *,
    organisation: str | None = None,
    certificate: str | None = None,
) -> None:
    """Put an address on the list; a household match on it ends (its members are told).

    ``address`` is the pseudonym a municipality's address officer made with their own
    client at the key holder (``vir-client address exclude``), already in the index's
    current epoch; ``organisation``/``certificate``: who asked (None: the operator's CLI)."""
    if not oprf.is_valid_element(address if isinstance(address, bytes) else address.element):
        raise InvalidElement("pseudonym")
    label = check_label(label)
    with db.write() as session:
        if organisation is not None:  # a municipality's officer (None: the operator)
            require_participating(session, organisation)
        address = stored_in(session, address)
        locks.take(session, [Lock.group(GroupKey(Via.ADDRESS, address))])
        if session.get(ExcludedAddressRow, address) is not None:
            raise Conflict("this address is already excluded")
        before = snapshot(session, [GroupKey(Via.ADDRESS, address)])
        session.add(ExcludedAddressRow(address=address, label=label, created_at=now))
        session.flush()
        _audit(session, Action.ADMIN_ADDRESS_EXCLUDED, now, organisation, certificate)
        settle(session, before, now)


def include(
    db: Database,
    address: bytes | Arriving,
    now: dt.datetime,
    *,
    organisation: str | None = None,
    certificate: str | None = None,
) -> None:
    """Take an address off the list: household matching through it resumes.

    The group of the address is settled as if the exclusion had never been there: the
    household match a registration would have made now is made, and every member is
    told as of any new match (``match.created``). ``address`` as for ``exclude``; an
    address not on the list is ``NotFound``, saying nothing more."""
    if not oprf.is_valid_element(address if isinstance(address, bytes) else address.element):
        raise InvalidElement("pseudonym")
    with db.write() as session:
        if organisation is not None:  # a municipality's officer (None: the operator)
            require_participating(session, organisation)
        address = stored_in(session, address)
        key = GroupKey(Via.ADDRESS, address)
        locks.take(session, [Lock.group(key)])
        row = session.get(ExcludedAddressRow, address)
        if row is None:
            raise NotFound("this address is not on the exclusion list")
        before = snapshot(session, [key])
        session.delete(row)
        session.flush()
        _audit(session, Action.ADMIN_ADDRESS_INCLUDED, now, organisation, certificate)
        # settle reads the exclusion list again, now without this address.
        settle(session, before, now)


def _audit(
    session: Session,
    action: Action,
    now: dt.datetime,
    organisation: str | None,
    certificate: str | None,
) -> None:
    """The list's change: by an address officer (its organisation and certificate), or
    by the operator's command (``admin``)."""
    audit_log.append(
        session,
        audit_log.new_event(
            action,
            Outcome.SUCCESS,
            now,
            actor="admin" if organisation is None else None,
            organisation=organisation,
            certificate=certificate,
        ),
    )


def listing(db: Database) -> list[tuple[str, dt.datetime]]:
    with db.read() as session:
        rows = session.execute(
            select(ExcludedAddressRow.label, ExcludedAddressRow.created_at).order_by(
                ExcludedAddressRow.created_at
            )
        ).all()
    return [(label, created) for label, created in rows]
