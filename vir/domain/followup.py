"""The municipal follow-up check (issue 17, part 3): pure rules, no I/O.

A municipality's follow-up officer checks that matched reporters in its region made
contact, and sees nothing else: no person, no signal. A participating organisation's
contact is *confirmed* when it has contact as :func:`in_contact` defines it (the one
definition, the participation monitor's too: contact is mutual). A match is
*overdue* for a region when it is older than the region's period (``DEFAULT_DAYS``
unless the region set another) and one of the region's participants has no confirmed
contact. A match spanning regions is overdue for each region on its own participants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable

from vir.domain.errors import InputError

DEFAULT_DAYS = 14
MAX_DAYS = 365
# A region reminds one match's participants at most this often.
REMINDER_INTERVAL = dt.timedelta(days=1)


def check_days(days: int, field: str = "days") -> int:
    """A valid overdue period, in whole days: 1 to ``MAX_DAYS``."""
    if isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise InputError(field, f"give a number of days from 1 to {MAX_DAYS}")
    return days


def in_contact(oin: str, with_oin: str) -> frozenset[str]:
    """The organisations (OINs) one ``contact_made`` record names as in contact: the one
    that recorded it (``oin``) and the one it recorded it with (``with_oin``; "" for
    none): contact is mutual. The one definition of contact, for the follow-up
    officer's list and reminders and for the participation monitor."""
    return frozenset(o for o in (oin, with_oin) if o)


def confirmed(contacts: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The organisations (OINs) whose contact is confirmed by ``contacts``: the
    ``contact_made`` records, as (who recorded it, with whom)."""
    found: set[str] = set()
    for oin, with_oin in contacts:
        found |= in_contact(oin, with_oin)
    return frozenset(found)


def unconfirmed(own: Collection[str], contacts: Iterable[tuple[str, str]]) -> list[str]:
    """The region's participating organisations (``own``) without confirmed contact."""
    done = confirmed(contacts)
    return sorted(oin for oin in own if oin not in done)


def days_open(created_at: dt.datetime, now: dt.datetime) -> int:
    """Whole days since the match was made."""
    return max(0, (now - created_at).days)


def reminder_wait(last: dt.datetime | None, now: dt.datetime) -> dt.timedelta | None:
    """How long until the region may remind the match again (None: now)."""
    if last is None or now - last >= REMINDER_INTERVAL:
        return None
    return REMINDER_INTERVAL - (now - last)


def reminder_again(last: dt.datetime) -> dt.datetime:
    """When a match reminded at ``last`` may be reminded again: ``REMINDER_INTERVAL``
    later, rounded up to the whole second (as the ``Retry-After`` seconds are)."""
    again = last + REMINDER_INTERVAL
    if again.microsecond:
        again = again.replace(microsecond=0) + dt.timedelta(seconds=1)
    return again
