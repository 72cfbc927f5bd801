"""How long a signal lives, and what happens to it afterwards (Jeugdwet art. 7.1.3.1-3).

A signal is removed by its reporter when the risk has gone or it was unjustified,
and in any case on its removal date (at most two years after it was made, and no
later than the day the young person turns 23). Signals removed because the risk
ended, or at the two-year limit, go to a historical archive for five years —
destroyed earlier when the young person turns 23 or dies. Unjustified signals,
and those removed after an objection or a correction request, are not archived.

The client sends ``remove_on`` and, when the 23rd birthday falls within the archive
term, ``archive_until``: the date of birth is never sent, but ``archive_until`` is the
23rd birthday, so the index learns the date of birth of exactly those young persons
whose 23rd birthday falls within the signal's life and archive term (about seven
years), and only that it lies further ahead for the others. It is stored as the day to
remove, and is erased with the signal and its archived copy; the audit log gives
``at_23`` where a removal or destruction date is that birthday (vir.store.audit_log.day).
"""

from __future__ import annotations

import datetime as dt
import enum

from vir.domain.signals import WithdrawalReason, add_years

ARCHIVE_YEARS = 5
AGE_LIMIT = 23


class ArchiveReason(enum.StrEnum):
    RISK_ENDED = "risk_ended"  # withdrawn by the reporter because the risk has gone
    EXPIRED = "expired"  # reached its removal date


class InformedWho(enum.StrEnum):
    """Who was told about the signal (GDPR art. 14; DESIGN.md §3)."""

    REPRESENTATIVE = "representative"
    YOUNG_PERSON = "young_person"
    BOTH = "both"

    def covers(self, required: InformedWho) -> bool:
        return self is required or self is InformedWho.BOTH


class ErasureKind(enum.StrEnum):
    """Data-subject requests a privacy officer executes (GDPR art. 16, 17, 21)."""

    ERASURE = "erasure"
    OBJECTION = "objection"
    CORRECTION = "correction"


def archives(reason: WithdrawalReason) -> bool:
    """Only a signal whose risk ended is archived; every other withdrawal erases it."""
    return reason is WithdrawalReason.RISK_ENDED


def destroy_on(archived_on: dt.date, archive_until: dt.date | None) -> dt.date | None:
    """When an archived copy must be gone; None when it may not be archived at all."""
    term_end = add_years(archived_on, ARCHIVE_YEARS)
    end = min(term_end, archive_until) if archive_until is not None else term_end
    return end if end > archived_on else None


def birthday(date_of_birth: dt.date, age: int) -> dt.date:
    return add_years(date_of_birth, age)


def age_on(date_of_birth: dt.date, day: dt.date) -> int:
    years = day.year - date_of_birth.year
    return years - 1 if (day.month, day.day) < (date_of_birth.month, date_of_birth.day) else years


def must_inform(date_of_birth: dt.date, day: dt.date) -> InformedWho:
    """Who must be informed on ``day``: the legal representative under 12, both from 12
    to 15, the young person from 16 (GDPR art. 8 with the Dutch UAVG and the WGBO)."""
    age = age_on(date_of_birth, day)
    if age < 12:
        return InformedWho.REPRESENTATIVE
    if age < 16:
        return InformedWho.BOTH
    return InformedWho.YOUNG_PERSON
