"""The one way vir reads a date, a timestamp or a whole number that arrives as text.

``date.fromisoformat`` accepts more than the documented ``YYYY-MM-DD`` since Python
3.11: ISO week dates (``2026-W01-1``, which is 2025-12-29), the basic format
(``20260101``) and, via ``datetime``, ``2026-01-01T00:00``; ``int()`` and pydantic
read other scripts' digits, ``1_000`` and ``1.0``. A second spelling of one value is
a second way past a check (a client accepts what the index refuses, a period starts
on another day than the one written), so the form is checked first, in ASCII digits,
and only then converted.
"""

from __future__ import annotations

import datetime as dt
import re

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 date-time as vir writes it (isoformat of an aware datetime, or ...Z).
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DIGITS = re.compile(r"[0-9]+")


def parse_iso_date(text: str) -> dt.date:
    """The date ``text`` writes as exactly ``YYYY-MM-DD`` (ASCII digits); ValueError for
    any other text, also for the other forms ``date.fromisoformat`` reads."""
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValueError("not a YYYY-MM-DD date")
    return dt.date.fromisoformat(text)


def is_iso_date(text: str) -> bool:
    try:
        parse_iso_date(text)
    except ValueError:
        return False
    return True


def parse_timestamp(text: str) -> dt.datetime:
    """The aware datetime ``text`` writes as RFC 3339 (``YYYY-MM-DDTHH:MM:SS``, optional
    fraction, ``Z`` or an offset); ValueError for any other text."""
    if not isinstance(text, str) or not _TIMESTAMP.fullmatch(text):
        raise ValueError("not an RFC 3339 timestamp")
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_digits(text: str) -> int:
    """The whole number ``text`` writes in ASCII digits only (no sign, point, space or
    underscore); ValueError otherwise."""
    if not isinstance(text, str) or not _DIGITS.fullmatch(text):
        raise ValueError("not a whole number in digits")
    return int(text)
