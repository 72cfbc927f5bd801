"""The body of ``POST /v1/signals`` for a young person's pseudonym, as a test sends it."""

from __future__ import annotations

import datetime as dt
from typing import Any


def signal_body(ref: str, person: str, epoch: int = 1) -> dict[str, Any]:
    return {
        "local_ref": ref,
        "epoch": epoch,
        "person": person,
        "remove_on": (dt.date.today() + dt.timedelta(days=300)).isoformat(),
        "professional": {"name": "Sanne de Jong", "email": "s.dejong@x.example"},
    }
