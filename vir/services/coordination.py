"""A region's rules for a match's coordinator (``vir region coordination``), audited.

The choice itself is pure (vir.domain.coordination); matching applies the rules when
it chooses (vir.services.matching). A change of rules applies to choices made after
it: a coordinator already chosen stays while its signal is in the match.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain.coordination import DEFAULT_RULES
from vir.domain.errors import InputError
from vir.domain.organisations import Category
from vir.store import audit_log, coordination, locks
from vir.store.db import Database
from vir.store.locks import Lock


@dataclass(frozen=True, slots=True)
class RegionRules:
    """The rules in effect in a region; ``configured`` False: the default ones."""

    region: str
    categories: tuple[str, ...]
    configured: bool


def set_rules(
    db: Database, region: str, categories: Sequence[Category], now: dt.datetime
) -> RegionRules:
    """Configure a region's rules; the region must have an organisation registered."""
    with db.write() as session:
        locks.take(session, [Lock.named("region-coordination", region)])
        if not coordination.region_known(session, region):
            raise InputError("region", "no organisation is registered in this region")
        values = tuple(c.value for c in categories)
        coordination.set_rules(session, region, values, now)
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ADMIN_COORDINATION_CHANGED,
                Outcome.SUCCESS,
                now,
                actor="admin",
                objects={"region": region, "categories": ",".join(values)},
            ),
        )
    return RegionRules(region, values, configured=True)


def rules_in_effect(db: Database, region: str) -> RegionRules:
    """What a region's matches are coordinated by: its own rules or the default ones."""
    with db.read() as session:
        configured = coordination.rules_of(session, region)
    if configured is None:
        return RegionRules(region, tuple(c.value for c in DEFAULT_RULES), configured=False)
    return RegionRules(region, configured, configured=True)
