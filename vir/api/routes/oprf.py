"""``POST /v1/oprf/evaluate`` (API-CONTRACT.md, Pseudonyms)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from vir.api.deps import PseudonymisationDep
from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.api.schemas import Element, decode_element
from vir.domain.encoding import b64url_encode

router = APIRouter(prefix="/v1/oprf", tags=["pseudonyms"])


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
    operation_id="evaluateOprf",
    responses=problem_responses(400, 401, 403, 413, 422, 429),
)
def evaluate(
    body: EvaluateRequest, caller: CurrentCaller, pseudonymisation: PseudonymisationDep
) -> EvaluateResponse:
    """Evaluate the OPRF (RFC 9497, ristretto255-SHA512, mode 0x00) on a batch of 1..64."""
    decoded = [
        decode_element(text, f"blinded_elements[{i}]")
        for i, text in enumerate(body.blinded_elements)
    ]
    epoch, evaluated = pseudonymisation.evaluate(caller, decoded)
    return EvaluateResponse(epoch=epoch, evaluated_elements=[b64url_encode(e) for e in evaluated])
