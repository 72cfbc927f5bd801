"""The largest valid body of ``POST /v1/signals``, for the batch's body limit: every
string at its longest, every list full, and the name in letters that a JSON encoder
writes as ``\\uXXXX`` (six bytes each, Python's ``json.dumps`` default)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from vir.crypto import oprf
from vir.domain.contact import MAX_EMAIL_CHARS, MAX_NAME_CHARS
from vir.domain.encoding import b64url_encode
from vir.domain.functions import of_category
from vir.domain.signals import MAX_PARENTS

# 100 characters, none of them ASCII but the three spaces: four words of at most 30.
WORD = "É" + "é" * 29
NAME = " ".join([WORD, WORD, WORD, "É" + "é" * 6])
# 254 characters: a local part of 64, a domain of 189 in labels of at most 63 (the
# schema allows 185 before the top-level domain).
EMAIL = "a" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 57, "com"])
PHONE = "+31 (0)10 123 45 678"  # 20 characters, the most a phone number may have
assert len(NAME) == MAX_NAME_CHARS and len(EMAIL) == MAX_EMAIL_CHARS and len(PHONE) == 20


def element() -> str:
    """A valid pseudonym nobody else has."""
    return b64url_encode(oprf.hash_to_group(f"maximal:{uuid.uuid4()}".encode()))


def maximal_signal(
    number: int, category: str, epoch: int, today: dt.date, function: str | None = None
) -> dict[str, Any]:
    """Signal ``number`` (distinct references and pseudonyms), as large as a valid one."""
    remove_on = today + dt.timedelta(days=700)
    longest = max((f.code for f in of_category(category)), key=len)  # type: ignore[arg-type]
    return {
        "local_ref": f"{number:06d}".ljust(64, "x"),
        "epoch": epoch,
        "person": element(),
        "parents": [element() for _ in range(MAX_PARENTS)],
        "address": element(),
        "remove_on": remove_on.isoformat(),
        "professional": {
            "name": NAME,
            "email": EMAIL,
            "phone": PHONE,
            "function": function or longest,
        },
        "archive_until": (remove_on + dt.timedelta(days=365)).isoformat(),
    }
