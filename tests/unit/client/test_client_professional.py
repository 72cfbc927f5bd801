"""The client checks the professional's contact details before anything is sent."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from vir.client.connection import VirClient
from vir.client.professional import check_professional
from vir.domain.errors import InputError

SENTENCE = "Anna de Wit vermoedt mishandeling door stiefvader"


def _offline_client() -> tuple[VirClient, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    client = VirClient.__new__(VirClient)
    client._http = httpx.Client(base_url="https://vir", transport=httpx.MockTransport(handler))
    return client, sent


@pytest.mark.parametrize(
    ("professional", "field"),
    [
        ({"name": SENTENCE, "email": "a@b.example"}, "professional.name"),
        ({"name": "Anna de Wit", "email": "anna mishandeling@b.example"}, "professional.email"),
        ({"name": "Anna de Wit", "phone": "06-12345678 mishandeling"}, "professional.phone"),
        ({"name": "Anna de Wit", "function": "mentor, mishandeling"}, "professional.function"),
    ],
)
def test_refused_before_sending(professional: dict[str, Any], field: str) -> None:
    client, sent = _offline_client()
    with pytest.raises(InputError) as refused:
        client.register_signal({"local_ref": "x", "professional": professional})
    assert refused.value.field == field and "mishandeling" not in refused.value.detail
    with pytest.raises(InputError):
        client.update_signal("x", {"professional": professional})
    assert sent == []


def test_valid_details_and_wrong_shapes_are_sent() -> None:
    client, sent = _offline_client()
    good = {"name": "Anna de Wit", "email": "a@b.example", "function": "mentor"}
    client.register_signal({"local_ref": "x", "professional": good})
    # A wrong shape is the service's to refuse (a 422 naming the field), not the client's.
    check_professional({"name": 3})
    check_professional("not an object")
    assert len(sent) == 1
