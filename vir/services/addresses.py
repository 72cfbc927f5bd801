"""The exclusion list: institutional addresses (shelters, institutions) never match."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import oprf
from vir.crypto.evaluator import Evaluator, pseudonymise
from vir.domain.errors import Conflict, InvalidElement
from vir.domain.matching import GroupKey, Via
from vir.services.matching import settle, snapshot
from vir.store import audit_log
from vir.store.db import Database
from vir.store.tables import ExcludedAddressRow


def address_pseudonym(evaluator: Evaluator, canonical_address: str) -> bytes:
    """The pseudonym of a canonical address (``vir.client.canonical.nl_address``): the
    same value clients obtain. Asked of the evaluator, which alone holds the key. Used
    only for institutional addresses, which are not personal data."""
    return pseudonymise(evaluator, canonical_address.encode("utf-8"))


def exclude(db: Database, address: bytes, label: str, now: dt.datetime) -> None:
    """Put an address on the list; a household match on it ends (its members are told)."""
    if not oprf.is_valid_element(address):
        raise InvalidElement("pseudonym")
    with db.write() as session:
        if session.get(ExcludedAddressRow, address) is not None:
            raise Conflict("this address is already excluded")
        before = snapshot(session, [GroupKey(Via.ADDRESS, address)])
        session.add(ExcludedAddressRow(address=address, label=label, created_at=now))
        session.flush()
        audit_log.append(
            session,
            audit_log.new_event(Action.ADMIN_ADDRESS_EXCLUDED, Outcome.SUCCESS, now, actor="admin"),
        )
        settle(session, before, now)


def listing(db: Database) -> list[tuple[str, dt.datetime]]:
    with db.read() as session:
        rows = session.execute(
            select(ExcludedAddressRow.label, ExcludedAddressRow.created_at).order_by(
                ExcludedAddressRow.created_at
            )
        ).all()
    return [(label, created) for label, created in rows]
