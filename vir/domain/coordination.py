"""Who coordinates a match: a pure choice by regional rules (no I/O).

"One family, one plan, one coordinator": every match has exactly one coordinator, the
reporter of one of its signals. Each region orders the organisation categories that
may coordinate (``vir region coordination``); a region without rules of its own uses
``DEFAULT_RULES``. Categories outside a region's list only report.

The choice (``choose``): the member whose category ranks first in the rules; among
members of that rank, the earliest signal; when no member's category is eligible, the
earliest signal of the match, so that a match never lacks a coordinator. A match
spanning regions follows the rules of the region of its earliest signal's
organisation (``rules_region``). A coordinator stays while its signal is in the match
(``vir.services.matching.chosen``); only when it leaves do the rules choose again, or
when it hands the role to another participant who accepts (``vir.services.matchregie``).

Follow-up is content-free (``FollowUp``): each participant confirms with whom it made
contact; the coordinator confirms that a plan was agreed and later that care started
(``next_allowed``). Times only, never text.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from vir.domain.errors import InputError
from vir.domain.organisations import Category

# Categories that may coordinate, first to last, where a region configured none.
# Education, police, Halt, leerplicht/RMC, probation, hospital emergency departments,
# credit banks, the Raad and youth welfare only report.
DEFAULT_RULES: tuple[Category, ...] = (
    Category.YOUTH_CARE,
    Category.NEIGHBOURHOOD_TEAM,
    Category.VEILIG_THUIS,
    Category.JGZ,
    Category.GGZ,
    Category.DISABILITY_CARE,
    Category.ADDICTION_CARE,
    Category.WMO_PROVIDER,
    Category.SOCIAL_WORK,
    Category.GP,
    Category.MIDWIFERY,
    Category.CHILDCARE,
)


class FollowUp(enum.StrEnum):
    """A follow-up event of a match; nothing else is recorded of it but when, and for
    ``contact_made`` with which participating organisation."""

    CONTACT_MADE = "contact_made"  # any participant, with another participant
    PLAN_AGREED = "plan_agreed"  # the coordinator, once
    CARE_STARTED = "care_started"  # the coordinator, once, after PLAN_AGREED

    @property
    def coordinator_only(self) -> bool:
        return self is not FollowUp.CONTACT_MADE


def follow_up_problem(event: FollowUp, recorded: Collection[FollowUp]) -> str | None:
    """Why the coordinator may not record ``event`` now (None: it may): plan, then care,
    each once."""
    if event in recorded:
        return "this follow-up was recorded already"
    if event is FollowUp.CARE_STARTED and FollowUp.PLAN_AGREED not in recorded:
        return "care can start only after a plan was agreed"
    return None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A member signal of a match, as the choice needs it: its organisation's category
    and region, and when it was registered (ties go to the earliest)."""

    signal_id: str
    category: str
    region: str
    registered_at: dt.datetime

    @property
    def order(self) -> tuple[dt.datetime, str]:
        """Earliest first; the id breaks a tie of equal timestamps, the same way everywhere."""
        return (self.registered_at, self.signal_id)


def earliest(members: Collection[Candidate]) -> Candidate:
    """The match's earliest signal: its organisation's region sets the rules."""
    return min(members, key=lambda c: c.order)


def rules_region(members: Collection[Candidate]) -> str:
    """The region whose rules decide for this match: that of its earliest signal."""
    return earliest(members).region


def choose(members: Collection[Candidate], rules: Sequence[str]) -> str:
    """The signal id of the coordinator the rules pick among a match's ``members``.

    ``rules`` are category values, first to last. Eligible members rank by their
    category's place, then by registration; without an eligible member, the earliest
    signal coordinates (fallback).
    """
    if not members:
        raise ValueError("a match without members has no coordinator")
    rank = {category: place for place, category in enumerate(rules)}
    eligible = [m for m in members if m.category in rank]
    if not eligible:
        return earliest(members).signal_id
    best = min(eligible, key=lambda m: (rank[m.category], *m.order))
    return best.signal_id


def parse_rules(text: str) -> tuple[Category, ...]:
    """A region's rules from ``youth_care,neighbourhood_team,gp``: reporting categories,
    each once, at least one. Refused with InputError naming ``categories``."""
    names = [name.strip() for name in text.split(",")]
    if not names or any(not name for name in names):
        raise InputError("categories", "give one or more categories, separated by commas")
    rules = []
    for name in names:
        try:
            category = Category(name)
        except ValueError:
            raise InputError("categories", "not a known organisation category") from None
        if not category.reports:
            raise InputError("categories", "only reporting categories can coordinate")
        rules.append(category)
    if len(set(rules)) != len(rules):
        raise InputError("categories", "each category may appear once")
    return tuple(rules)
