"""Signals: the facts the index holds about one concern, and the rules on them.

A signal stores only pseudonyms (young person, up to four parents, home
address), the reporting organisation, the professional's contact details and
dates (DESIGN.md §3). There is no field for a reason, a risk or any note.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

MAX_PARENTS = 4
MAX_RETENTION_YEARS = 2


class WithdrawalReason(enum.StrEnum):
    RISK_ENDED = "risk_ended"
    UNJUSTIFIED = "unjustified"
    OBJECTION = "objection"
    CORRECTION = "correction"
    DECEASED = "deceased"


@dataclass(frozen=True)
class Professional:
    name: str
    email: str | None = None
    phone: str | None = None
    function: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "email": self.email,
            "phone": self.phone,
            "function": self.function,
        }


@dataclass(frozen=True)
class SignalFacts:
    """What matching needs to know of an active signal: ids and pseudonyms only."""

    id: str
    oin: str
    person: bytes
    parents: frozenset[bytes] = frozenset()
    address: bytes | None = None


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February → 28 February
        return day.replace(year=day.year + years, day=28)


def latest_removal(today: dt.date) -> dt.date:
    """A signal is removed at most two years after it was made (Jeugdwet art. 7.1.3.1)."""
    return add_years(today, MAX_RETENTION_YEARS)
