"""What an address on the exclusion list may be labelled with: a name, never personal data."""

from __future__ import annotations

import unicodedata

from vir.domain.errors import InputError

MAX_LABEL = 100
# Eight digits make a phone number, nine a BSN, however they are spaced or punctuated
# ("123.456.782", "06 1234 5678", "(010) 1234567"): the digits are counted across
# everything but letters. A house number with its postcode ("3011 AB 12") has letters
# between its digits.
MAX_DIGITS = 7
_PUNCTUATION = frozenset(" .,'()&/-_")


def _fits(char: str) -> bool:
    return char in _PUNCTUATION or "0" <= char <= "9" or unicodedata.category(char)[0] == "L"


def check_label(label: str) -> str:
    """The label in NFC ("Blijf-van-mijn-lijfhuis Rotterdam-Zuid"), or InputError naming
    ``label``: 1..100 letters, ASCII digits, spaces and ``. , ' ( ) & / - _``, and never
    eight or more digits without a letter between them, whatever separates them (no
    BSN, no phone number). Letters are Unicode's (accents);
    digits only ASCII, so that no BSN in another script's digits passes the digit rule,
    and no joiner or combining mark hides anything."""
    label = unicodedata.normalize("NFC", label)
    if not 1 <= len(label) <= MAX_LABEL:
        raise InputError("label", f"1 to {MAX_LABEL} characters")
    if not all(_fits(char) for char in label):
        raise InputError("label", "letters, digits 0-9, spaces and . , ' ( ) & / - _ only")
    if _most_digits_without_letters(label) > MAX_DIGITS:
        raise InputError(
            "label",
            "no eight or more digits without a letter between them (spaces, dots "
            "and dashes do not count)",
        )
    return label


def _most_digits_without_letters(label: str) -> int:
    """The most digits in a stretch of ``label`` that holds no letter."""
    most = count = 0
    for char in label:
        if unicodedata.category(char)[0] == "L":
            count = 0
        elif "0" <= char <= "9":
            count += 1
            most = max(most, count)
    return most
