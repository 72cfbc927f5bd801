"""What an address on the exclusion list may be labelled with: a name, never personal data."""

from __future__ import annotations

import re
import unicodedata

from vir.domain.errors import InputError

MAX_LABEL = 100
_DIGIT_RUN = re.compile(r"[0-9]{8}")
_PUNCTUATION = frozenset(" .,'()&/-_")


def _fits(char: str) -> bool:
    return char in _PUNCTUATION or "0" <= char <= "9" or unicodedata.category(char)[0] == "L"


def check_label(label: str) -> str:
    """The label in NFC ("Blijf-van-mijn-lijfhuis Rotterdam-Zuid"), or InputError naming
    ``label``: 1..100 letters, ASCII digits, spaces and ``. , ' ( ) & / - _``, and no run
    of eight or more digits (no BSN, no phone number). Letters are Unicode's (accents);
    digits only ASCII, so that no BSN in another script's digits passes the digit rule,
    and no joiner or combining mark hides anything."""
    label = unicodedata.normalize("NFC", label)
    if not 1 <= len(label) <= MAX_LABEL:
        raise InputError("label", f"1 to {MAX_LABEL} characters")
    if not all(_fits(char) for char in label):
        raise InputError("label", "letters, digits 0-9, spaces and . , ' ( ) & / - _ only")
    if _DIGIT_RUN.search(label):
        raise InputError("label", "no run of eight or more digits")
    return label
