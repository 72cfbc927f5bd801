"""Veilig Thuis's consultations and feedback, and who takes part, for ``vir-client``
(docs/api.md, "Veilig Thuis"; docs/categories.md).

Identities are pseudonymised at the key holder before anything reaches the index, as
for every other request; a feedback code or a consultation id that cannot be right is
refused here, before anything is sent.
"""

from __future__ import annotations

import re
from typing import Any

from vir.client.connection import VirClient, epoch_of_key_holders
from vir.domain.errors import InputError
from vir.domain.feedback import FeedbackCode

_CONSULTATION_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")


def consult(
    client: VirClient, canonical: str, purpose: str, *, household: bool = False
) -> dict[str, Any]:
    """Veilig Thuis: who is or was involved with the young person ``canonical`` or, with
    ``household``, with the household of the parent ``canonical``."""
    made = client.pseudonymise([canonical])
    field = "parent" if household else "person"
    body = {"epoch": made.epoch, field: made.pseudonyms[0], "purpose": purpose}
    with epoch_of_key_holders(made.epoch):
        answer: dict[str, Any] = client.request("POST", "/v1/consultations", body).json()
    return answer


def give_feedback(client: VirClient, consultation_id: str, code: str) -> None:
    """Veilig Thuis: tell the reporters one of its consultations found where its
    involvement stands (``taken_up``, ``handed_over``, ``closed``)."""
    if not _CONSULTATION_ID.fullmatch(consultation_id):
        raise InputError("consultation_id", "the consultation_id a consultation answered")
    try:
        FeedbackCode(code)
    except ValueError:
        codes = ", ".join(c.value for c in FeedbackCode)
        raise InputError("code", f"one of {codes}") from None
    client.request("POST", f"/v1/consultations/{consultation_id}/feedback", {"code": code})


def connected_organisations(client: VirClient, region: str | None = None) -> list[dict[str, Any]]:
    """Every organisation connected in the caller's region: name, category, its label."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 500, **({"region": region} if region else {})}
    while True:
        page = client.request("GET", "/v1/organisations", params=query).json()
        items += page["items"]
        if page["next"] is None:
            return items
        query["after"] = page["next"]
