"""Each region's rules for a match's coordinator (``region_coordination``), handover
offers (``coordination_offers``) and a match's follow-up (``match_follow_ups``).

Rules are stored as one row per region: the eligible categories, comma-separated, first
to last. Read inside the write transaction that chooses a coordinator, so a change of
rules applies to every choice committed after it; a choice already made stays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import cast

from sqlalchemy import Table, bindparam, delete, insert, or_, select, tuple_
from sqlalchemy.orm import Session

from vir.store.records import FollowUpRecord, HandoverOffer
from vir.store.tables import (
    CoordinationOfferRow,
    MatchFollowUpRow,
    OrganisationRow,
    RegionCoordinationRow,
)

RULES = cast(Table, RegionCoordinationRow.__table__)
ORGANISATIONS = cast(Table, OrganisationRow.__table__)
OFFERS = cast(Table, CoordinationOfferRow.__table__)
FOLLOW_UPS = cast(Table, MatchFollowUpRow.__table__)

_RULES_OF = select(RULES.c.categories).where(RULES.c.region == bindparam("region"))
_REGION_EXISTS = select(ORGANISATIONS.c.oin).where(ORGANISATIONS.c.region == bindparam("region"))


def rules_of(session: Session, region: str) -> tuple[str, ...] | None:
    """The region's configured categories, first to last; None when it has none."""
    text = session.execute(_RULES_OF, {"region": region}).scalar()
    return None if text is None else tuple(text.split(","))


def set_rules(session: Session, region: str, categories: Sequence[str], now: dt.datetime) -> None:
    """Replace the region's rules."""
    session.execute(delete(RULES).where(RULES.c.region == region))
    session.execute(
        insert(RULES),
        [{"region": region, "categories": ",".join(categories), "updated_at": now}],
    )


def region_known(session: Session, region: str) -> bool:
    """Whether some organisation is registered in the region."""
    return session.execute(_REGION_EXISTS.limit(1), {"region": region}).first() is not None


# At most this many ids or pairs in one statement (PostgreSQL takes at most 65,535
# parameters; a pair takes four here).
_PART = 2_000
_OFFER_OF = select(OFFERS).where(OFFERS.c.match_id == bindparam("match"))
_FOLLOW_UPS_OF = (
    select(FOLLOW_UPS)
    .where(FOLLOW_UPS.c.match_id == bindparam("match"))
    .order_by(FOLLOW_UPS.c.recorded_at, FOLLOW_UPS.c.oin, FOLLOW_UPS.c.with_oin)
)


def offer_of(session: Session, match_id: str) -> HandoverOffer | None:
    row = session.execute(_OFFER_OF, {"match": match_id}).first()
    if row is None:
        return None
    return HandoverOffer(row.match_id, row.from_signal, row.to_signal, row.offered_at)


def put_offer(session: Session, offer: HandoverOffer) -> None:
    """Store an offer, replacing the match's open one."""
    drop_offer(session, offer.match_id)
    session.execute(
        insert(OFFERS),
        [
            {
                "match_id": offer.match_id,
                "from_signal": offer.from_signal,
                "to_signal": offer.to_signal,
                "offered_at": offer.offered_at,
            }
        ],
    )


def drop_offer(session: Session, match_id: str) -> None:
    session.execute(delete(OFFERS).where(OFFERS.c.match_id == match_id))


def lapse_offers(
    session: Session, ended: Collection[str], departed: Collection[tuple[str, str]]
) -> None:
    """Offers lapse: every offer of the ``ended`` matches, and the offer of a match whose
    coordinator or target left it (``departed``: (match id, signal id) pairs). One
    statement per few thousand of them, none when there is nothing to drop."""
    ids, pairs = sorted(ended), sorted(departed)
    for start in range(0, max(len(ids), len(pairs)), _PART):
        part_ids, part_pairs = ids[start : start + _PART], pairs[start : start + _PART]
        session.execute(
            delete(OFFERS).where(
                or_(
                    OFFERS.c.match_id.in_(part_ids),
                    tuple_(OFFERS.c.match_id, OFFERS.c.from_signal).in_(part_pairs),
                    tuple_(OFFERS.c.match_id, OFFERS.c.to_signal).in_(part_pairs),
                )
            )
        )


def follow_ups(session: Session, match_id: str) -> list[FollowUpRecord]:
    """The match's follow-up events, oldest first."""
    return [
        FollowUpRecord(r.oin, r.event, r.with_oin, r.recorded_at)
        for r in session.execute(_FOLLOW_UPS_OF, {"match": match_id})
    ]


def record_follow_ups(session: Session, match_id: str, records: Collection[FollowUpRecord]) -> None:
    """Store new follow-up events of a match (the caller leaves out those recorded)."""
    if records:
        session.execute(
            insert(FOLLOW_UPS),
            [
                {
                    "match_id": match_id,
                    "oin": r.oin,
                    "event": r.event,
                    "with_oin": r.with_oin,
                    "recorded_at": r.recorded_at,
                }
                for r in records
            ],
        )
