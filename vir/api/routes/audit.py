"""``GET /v1/audit/checkpoint``: the newest signed checkpoint (C2SP signed note)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from vir.api.blocking import blocking
from vir.api.deps import TransparencyDep
from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.api.schemas import DIGITS
from vir.api.strict import StrictRoute
from vir.domain.errors import NotFound

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=StrictRoute)
# Sequence numbers and tree sizes are stored as SQL INTEGER (32-bit on PostgreSQL):
# anything larger is refused as input (422) instead of overflowing the driver (a 500).
MAX_INDEX = 2**31 - 1


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    operation_id="getAuditCheckpoint",
    responses={
        200: {
            "content": {"text/plain": {}},
            "description": "C2SP tlog-checkpoint in the signed-note format",
        },
        **problem_responses(401, 403, 404),
    },
)
@blocking
def latest_checkpoint(_caller: CurrentCaller, transparency: TransparencyDep) -> PlainTextResponse:
    """The newest signed checkpoint of the audit log; verify it with `vir audit key`'s key."""
    signed = transparency.latest()
    if signed is None:
        raise NotFound("no checkpoint has been signed yet")
    return PlainTextResponse(signed.note.decode("utf-8"))


class InclusionProof(BaseModel):
    seq: int
    leaf_index: int = Field(description="seq - 1: RFC 9162 counts leaves from 0")
    tree_size: int
    leaf_hash: str = Field(description="base64 SHA-256(0x00 || entry)")
    audit_path: list[str] = Field(description="base64 hashes, from the leaf upward")
    checkpoint: str = Field(description="the signed note the proof is against")


class ConsistencyProof(BaseModel):
    old_size: int
    tree_size: int
    proof: list[str] = Field(description="base64 hashes (RFC 9162 §2.1.4)")
    checkpoint: str


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]


@router.get(
    "/proof/inclusion",
    response_model=InclusionProof,
    operation_id="getInclusionProof",
    responses=problem_responses(401, 403, 404, 422),
)
@blocking
def inclusion_proof(
    _caller: CurrentCaller,
    transparency: TransparencyDep,
    seq: Annotated[int, Query(ge=1, le=MAX_INDEX), DIGITS],
    size: Annotated[int | None, Query(ge=1, le=MAX_INDEX), DIGITS] = None,
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of audit entry ``seq`` in a signed checkpoint's tree."""
    signed, leaf, path = transparency.inclusion(seq, size)
    return {
        "seq": seq,
        "leaf_index": seq - 1,
        "tree_size": signed.size,
        "leaf_hash": _b64([leaf])[0],
        "audit_path": _b64(path),
        "checkpoint": signed.note.decode("utf-8"),
    }


@router.get(
    "/proof/consistency",
    response_model=ConsistencyProof,
    operation_id="getConsistencyProof",
    responses=problem_responses(401, 403, 404, 422),
)
@blocking
def consistency_proof(
    _caller: CurrentCaller,
    transparency: TransparencyDep,
    old_size: Annotated[int, Query(alias="from", ge=1, le=MAX_INDEX), DIGITS],
    size: Annotated[int | None, Query(alias="to", ge=1, le=MAX_INDEX), DIGITS] = None,
) -> dict[str, Any]:
    """RFC 9162 consistency proof from tree size ``from`` to a signed checkpoint's size."""
    signed, proof = transparency.consistency(old_size, size)
    return {
        "old_size": old_size,
        "tree_size": signed.size,
        "proof": _b64(proof),
        "checkpoint": signed.note.decode("utf-8"),
    }
