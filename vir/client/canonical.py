"""Canonical OPRF inputs (DESIGN.md §4), so that every vendor's client gets the same pseudonym.

* ``nl-bsn:<9 digits>`` — the BSN must pass the 11-proof.
* ``nl-person:<surname>:<YYYY-MM-DD>:<m|v|x>`` — surname lower-cased, diacritics and
  all white space removed (other characters, such as hyphens and apostrophes, stay).
* ``nl-address:<postcode>:<house number>:<suffix>`` — postcode as 4 digits and 2
  capitals, house number without leading zeros, suffix (huisletter and/or
  toevoeging) upper-cased with spaces and separators removed, or empty.

Error messages say what is wrong and never repeat the value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from vir.domain.dates import parse_iso_date
from vir.domain.errors import InputError

_POSTCODE = re.compile(r"([1-9][0-9]{3})([A-Z]{2})")
_SUFFIX = re.compile(r"[A-Z0-9]{0,6}")


def is_valid_bsn(bsn: str) -> bool:
    """The 11-proof ("elfproef") for BSNs: weights 9..2 and -1, sum divisible by 11."""
    if not (len(bsn) == 9 and bsn.isascii() and bsn.isdigit()) or bsn == "000000000":
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(bsn, weights, strict=True)) % 11 == 0


def nl_bsn(bsn: str) -> str:
    cleaned = bsn.strip()
    if not (len(cleaned) == 9 and cleaned.isascii() and cleaned.isdigit()):
        raise InputError("bsn", "a BSN is exactly 9 digits")
    if not is_valid_bsn(cleaned):
        raise InputError("bsn", "the BSN fails the 11-proof")
    return f"nl-bsn:{cleaned}"


def normalise_surname(surname: str) -> str:
    decomposed = unicodedata.normalize("NFKD", surname)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    result = "".join(stripped.split()).lower()
    if not result:
        raise InputError("surname", "the surname is empty")
    if ":" in result or any(unicodedata.category(c).startswith("C") for c in result):
        raise InputError("surname", "the surname contains a control character or ':'")
    return result


def nl_person(surname: str, birth_date: dt.date | str, gender: str) -> str:
    if isinstance(birth_date, str):
        try:
            birth_date = parse_iso_date(birth_date.strip())
        except ValueError:
            raise InputError("birth_date", "the date of birth is not a YYYY-MM-DD date") from None
    g = gender.strip().lower()
    if g not in ("m", "v", "x"):
        raise InputError("gender", "gender is one of m, v, x")
    return f"nl-person:{normalise_surname(surname)}:{birth_date.isoformat()}:{g}"


def normalise_postcode(postcode: str) -> str:
    compact = "".join(postcode.split()).upper()
    if not _POSTCODE.fullmatch(compact):
        raise InputError("postcode", "a postcode is 4 digits (not starting with 0) and 2 letters")
    return compact


def nl_address(postcode: str, house_number: int | str, suffix: str = "") -> str:
    number_text = str(house_number).strip()
    if not (number_text.isascii() and number_text.isdigit()) or not 1 <= int(number_text) <= 99999:
        raise InputError("house_number", "a house number is a whole number from 1 to 99999")
    cleaned_suffix = re.sub(r"[\s\-/.,]", "", suffix).upper()
    if not _SUFFIX.fullmatch(cleaned_suffix):
        raise InputError("suffix", "a house number suffix is up to 6 letters or digits")
    return f"nl-address:{normalise_postcode(postcode)}:{int(number_text)}:{cleaned_suffix}"
