"""Which organisations of a region are connected to the index: registered, of a reporting
category, and holding a certificate of their own that is valid now and not revoked."""

from __future__ import annotations

import datetime as dt
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from vir.domain.organisations import Category, Role
from vir.store.tables import CertificateRow, OrganisationRow

ORGANISATIONS = cast(Table, OrganisationRow.__table__)
CERTIFICATES = cast(Table, CertificateRow.__table__)
_REPORTING = [c.value for c in Category if c.reports]
_OWN_ROLES = [Role.SYSTEM.value, Role.COORDINATOR.value]


def connected_in_region(
    session: Session, region: str, now: dt.datetime
) -> list[tuple[str, Category]]:
    """(name, category) of the region's connected organisations, by name (then OIN, which
    is not returned). Certificates are compared with ``now`` here rather than in SQL: the
    region's certificates are few, and the comparison is the one identity makes."""
    rows = session.execute(
        select(
            ORGANISATIONS.c.oin,
            ORGANISATIONS.c.name,
            ORGANISATIONS.c.category,
            CERTIFICATES.c.not_before,
            CERTIFICATES.c.not_after,
            CERTIFICATES.c.revoked_at,
        )
        .join(CERTIFICATES, CERTIFICATES.c.oin == ORGANISATIONS.c.oin)
        .where(
            ORGANISATIONS.c.region == region,
            ORGANISATIONS.c.category.in_(_REPORTING),
            CERTIFICATES.c.role.in_(_OWN_ROLES),
        )
    )
    connected = {
        (r.name, r.oin): Category(r.category)
        for r in rows
        if r.not_before <= now <= r.not_after and (r.revoked_at is None or r.revoked_at > now)
    }
    return [(name, connected[(name, oin)]) for name, oin in sorted(connected)]
