"""``POST /v1/oprf/evaluate`` (API-CONTRACT.md, Pseudonyms)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.errors import InvalidElement

router = APIRouter(prefix="/v1/oprf", tags=["pseudonyms"])

# 32 bytes in unpadded base64url are exactly 43 characters.
Element = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    blinded_elements: list[Element] = Field(
        min_length=1,
        max_length=64,
        description="Blinded elements r·HashToGroup(x), 32-byte ristretto255, base64url unpadded",
    )


class EvaluateResponse(BaseModel):
    epoch: int = Field(description="Key epoch the elements were evaluated under")
    evaluated_elements: list[str] = Field(description="k·blinded, in request order")


@router.post(
    "/evaluate",
    response_model=EvaluateResponse,
    responses=problem_responses(400, 401, 403, 413, 422, 429),
)
def evaluate(body: EvaluateRequest, caller: CurrentCaller, request: Request) -> EvaluateResponse:
    """Evaluate the OPRF (RFC 9497, ristretto255-SHA512, mode 0x00) on a batch of 1..64."""
    decoded: list[bytes] = []
    for index, text in enumerate(body.blinded_elements):
        element = b64url_decode(text)
        if element is None:
            raise InvalidElement(f"blinded_elements[{index}]")
        decoded.append(element)
    epoch, evaluated = request.app.state.services.pseudonymisation.evaluate(caller, decoded)
    return EvaluateResponse(epoch=epoch, evaluated_elements=[b64url_encode(e) for e in evaluated])
