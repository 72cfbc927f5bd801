"""What a municipal follow-up officer reads and writes (migration 0019): each region's
overdue period (``region_follow_up``), the active matches with a participant in a
region, oldest first (``ix_matches_active_created``), and when a region last reminded a
match's participants (``match_reminders``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import cast

from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select
from sqlalchemy.orm import Session

from vir.domain.matching import Via
from vir.store.coordination import FOLLOW_UPS
from vir.store.records import FollowUpRecord, Match
from vir.store.signals import MATCHES, MEMBERS, ORGANISATIONS, SIGNALS
from vir.store.tables import MatchReminderRow, RegionFollowUpRow

PERIODS = cast(Table, RegionFollowUpRow.__table__)
REMINDERS = cast(Table, MatchReminderRow.__table__)

_PERIOD_OF = select(PERIODS.c.overdue_days).where(PERIODS.c.region == bindparam("region"))
# A match is in a region when one of its member signals is of an organisation there.
_IN_REGION = (
    select(MEMBERS.c.match_id)
    .join(SIGNALS, SIGNALS.c.id == MEMBERS.c.signal_id)
    .join(ORGANISATIONS, ORGANISATIONS.c.oin == SIGNALS.c.oin)
    .where(MEMBERS.c.match_id == MATCHES.c.id, ORGANISATIONS.c.region == bindparam("region"))
    .exists()
)
_LAST_REMINDERS = select(REMINDERS.c.match_id, REMINDERS.c.sent_at).where(
    REMINDERS.c.region == bindparam("region"),
    REMINDERS.c.match_id.in_(bindparam("ids", expanding=True)),
)


def overdue_days(session: Session, region: str) -> int | None:
    """The region's configured overdue period in days; None when it set none."""
    days = session.execute(_PERIOD_OF, {"region": region}).scalar()
    return None if days is None else int(days)


def set_overdue_days(session: Session, region: str, days: int, now: dt.datetime) -> None:
    session.execute(delete(PERIODS).where(PERIODS.c.region == region))
    session.execute(insert(PERIODS), [{"region": region, "overdue_days": days, "updated_at": now}])


def active_in_region(
    session: Session,
    region: str,
    created_by: dt.datetime,
    after: tuple[dt.datetime, str] | None,
    limit: int,
) -> list[Match]:
    """Up to ``limit`` active matches made no later than ``created_by`` with a member in
    ``region``, oldest first (by creation, then id), after the match ``after``."""
    query = (
        select(MATCHES.c.id, MATCHES.c.via, MATCHES.c.created_at, MATCHES.c.coordinator)
        .where(MATCHES.c.ended_at.is_(None), MATCHES.c.created_at <= created_by, _IN_REGION)
        .order_by(MATCHES.c.created_at, MATCHES.c.id)
        .limit(limit)
    )
    if after is not None:
        at, match_id = after
        query = query.where(
            or_(
                MATCHES.c.created_at > at,
                and_(MATCHES.c.created_at == at, MATCHES.c.id > match_id),
            )
        )
    rows = session.execute(query, {"region": region})
    return [Match(r.id, Via(r.via), r.created_at, coordinator=r.coordinator) for r in rows]


def members_of(session: Session, match_ids: Collection[str]) -> dict[str, list[str]]:
    """The member signal ids of each match."""
    found: dict[str, list[str]] = {m: [] for m in match_ids}
    if match_ids:
        query = select(MEMBERS.c.match_id, MEMBERS.c.signal_id).where(
            MEMBERS.c.match_id.in_(list(match_ids))
        )
        for match_id, signal_id in session.execute(query):
            found[match_id].append(signal_id)
    return found


def contacts_of(session: Session, match_ids: Collection[str]) -> dict[str, list[FollowUpRecord]]:
    """The ``contact_made`` records of each match."""
    found: dict[str, list[FollowUpRecord]] = {m: [] for m in match_ids}
    if match_ids:
        query = select(FOLLOW_UPS).where(
            FOLLOW_UPS.c.match_id.in_(list(match_ids)), FOLLOW_UPS.c.event == "contact_made"
        )
        for r in session.execute(query):
            found[r.match_id].append(FollowUpRecord(r.oin, r.event, r.with_oin, r.recorded_at))
    return found


def last_reminders(
    session: Session, region: str, match_ids: Collection[str]
) -> dict[str, dt.datetime]:
    """When the region last reminded each of the matches (absent: never)."""
    if not match_ids:
        return {}
    rows = session.execute(_LAST_REMINDERS, {"region": region, "ids": list(match_ids)})
    return {r.match_id: r.sent_at for r in rows}


def record_reminder(session: Session, match_id: str, region: str, now: dt.datetime) -> None:
    session.execute(
        delete(REMINDERS).where(REMINDERS.c.match_id == match_id, REMINDERS.c.region == region)
    )
    session.execute(insert(REMINDERS), [{"match_id": match_id, "region": region, "sent_at": now}])
