"""Dates the client computes locally, so the date of birth itself never leaves it (the
23rd birthday does, as ``archive_until``, when it falls within the signal's terms:
vir.domain.lifecycle).

``removal_dates`` gives the signal's ``remove_on`` — the earlier of two years
from today and the day the young person turns 23 — and, when the 23rd birthday
falls within the five-year archive term after that, ``archive_until``.
``who_to_inform`` gives the age bracket's addressee of the information duty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from vir.domain.lifecycle import AGE_LIMIT, ARCHIVE_YEARS, InformedWho, birthday, must_inform
from vir.domain.signals import add_years, latest_removal


class OutOfScope(ValueError):
    """The young person is 23 or older (or not born yet): no signal may be registered."""


@dataclass(frozen=True)
class RemovalDates:
    remove_on: dt.date
    archive_until: dt.date | None  # None: the archive term ends before the 23rd birthday

    def as_fields(self) -> dict[str, str]:
        """The request fields of ``POST /v1/signals``."""
        fields = {"remove_on": self.remove_on.isoformat()}
        if self.archive_until is not None:
            fields["archive_until"] = self.archive_until.isoformat()
        return fields


def removal_dates(date_of_birth: dt.date, today: dt.date) -> RemovalDates:
    limit = birthday(date_of_birth, AGE_LIMIT)
    if not date_of_birth <= today < limit:
        raise OutOfScope("the index is for young persons under 23")
    remove_on = min(latest_removal(today), limit)
    archive_until = limit if limit < add_years(remove_on, ARCHIVE_YEARS) else None
    return RemovalDates(remove_on, archive_until)


def who_to_inform(date_of_birth: dt.date, today: dt.date) -> InformedWho:
    """Legal representative under 12, both at 12-15, the young person from 16."""
    return must_inform(date_of_birth, today)


def confirm_covers(informed: InformedWho, date_of_birth: dt.date, on: dt.date) -> None:
    """Refuse a confirmation that misses someone the age bracket requires."""
    required = must_inform(date_of_birth, on)
    if not informed.covers(required):
        raise ValueError(f"at this age the information duty requires: {required.value}")
