"""Signals: the facts the index holds about one concern, and the rules on them.

A signal stores only pseudonyms (young person, up to four parents, home
address), the reporting organisation, the professional's contact details and
dates (DESIGN.md §3). There is no field for a reason, a risk or any note.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from vir.domain import contact, functions

MAX_PARENTS = 4
MAX_RETENTION_YEARS = 2


class WithdrawalReason(enum.StrEnum):
    """What a reporter gives when it withdraws its signal."""

    RISK_ENDED = "risk_ended"
    UNJUSTIFIED = "unjustified"
    OBJECTION = "objection"
    CORRECTION = "correction"
    DECEASED = "deceased"


# The operator's reason when an organisation leaves the index with signals still active
# (``vir org remove --withdraw``, vir.services.offboarding); never a reporter's, so not a
# WithdrawalReason. Such a signal is erased, not archived: the archive is for signals
# removed because the risk ended or at the end of their term (Jeugdwet ch. 7 §1), and an
# organisation leaving is neither.
PARTICIPATION_ENDED = "participation_ended"


@dataclass(frozen=True)
class Professional:
    """A professional's (or a coordinator's) contact details, as match partners see them.

    Making one checks every field against ``domain/contact.py`` (the name NFC-normalised)
    and the function against the catalogue of codes (``domain/functions.py``), raising
    ``InputError`` naming ``name``, ``email``, ``phone`` or ``function``: no sentence about
    the case fits. Whether the function belongs to the organisation's category is checked
    where the category is known (``functions.check_for``). ``stored`` reads a row as it is.
    """

    name: str
    email: str | None = None
    phone: str | None = None
    function: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", contact.person_name(self.name))
        if self.email is not None:
            contact.email_address(self.email)
        if self.phone is not None:
            contact.phone_number(self.phone)
        if self.function is not None:
            functions.check_code(self.function)

    @classmethod
    def stored(
        cls, name: str, email: str | None, phone: str | None, function: str | None
    ) -> Professional:
        """Contact details as the store holds them, not checked again: a row written under
        earlier rules must still be readable (and replaceable by a ``PATCH``)."""
        professional = object.__new__(cls)
        for field, value in (
            ("name", name),
            ("email", email),
            ("phone", phone),
            ("function", function),
        ):
            object.__setattr__(professional, field, value)
        return professional

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
