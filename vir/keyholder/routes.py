"""The key holder's API: ``POST /v1/oprf/evaluate`` and ``GET /v1/oprf/epochs``
(API-CONTRACT.md, Pseudonyms).

Evaluate takes an organisation's client certificate, or a person's access token
(``Authorization: Bearer``, vir.keyholder.bearer) from a browser without one. A
request that presents a certificate is judged by the certificate alone, token or not.
The list of epochs takes a certificate only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from vir.api.blocking import blocking
from vir.api.identity import (
    CurrentCaller,
    once_a_request,
    presents_certificate,
    require_caller,
)
from vir.api.problems import problem_responses
from vir.api.schemas import Element, TimestampOut, decode_element, timestamp
from vir.api.strict import StrictRoute, before_body
from vir.domain import policy
from vir.domain.encoding import b64url_encode
from vir.domain.errors import TokenRefused
from vir.keyholder.bearer import Person
from vir.keyholder.deps import DatabaseDep, EvaluationDep
from vir.keyholder.epochs import listing
from vir.services.identity import Caller

router = APIRouter(prefix="/v1/oprf", tags=["pseudonyms"], route_class=StrictRoute)


@once_a_request
async def require_evaluator(request: Request) -> Caller | Person:
    """The organisation of the client certificate; without one, the person (and their
    organisation) of a Bearer access token; with neither, 401 as for a certificate.
    Settled before the body is read (``before_body``)."""
    authorization = request.headers.getlist("authorization")
    if presents_certificate(request) or not authorization:
        caller = await require_caller(request)
        # Before the body is read, as the index's routes do (vir.api.roles); the
        # evaluation checks it again (vir.keyholder.evaluation).
        policy.require_pseudonymiser(caller)
        return caller
    scheme, _, token = authorization[0].partition(" ")
    if len(authorization) != 1 or scheme.lower() != "bearer":
        raise TokenRefused("token_format")
    person: Person = await run_in_threadpool(
        request.app.state.services.bearer.verify, token.strip()
    )
    return person


def _carries_identity(request: Request) -> bool:
    return presents_certificate(request) or bool(request.headers.getlist("authorization"))


before_body(require_evaluator, _carries_identity)
Evaluator = Annotated[Caller | Person, Depends(require_evaluator)]


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
    share_index: int | None = Field(
        default=None,
        description="In a threshold deployment: this key holder's share index i (the "
        "elements are k_i·blinded; combine t answers with Lagrange coefficients at 0); "
        "absent with a single key",
    )
    threshold: int | None = Field(
        default=None,
        description="In a threshold deployment: t, the number of key holders' answers to "
        "combine; absent with a single key",
    )


@router.post(
    "/evaluate",
    response_model=EvaluateResponse,
    response_model_exclude_none=True,
    operation_id="evaluateOprf",
    responses=problem_responses(400, 401, 403, 413, 422, 429),
)
async def evaluate(
    body: EvaluateRequest, caller: Evaluator, evaluation: EvaluationDep
) -> EvaluateResponse:
    """Evaluate the OPRF (RFC 9497, ristretto255-SHA512, mode 0x00) on a batch of 1..64.
    With an organisation's client certificate, or a person's access token (Bearer)."""
    decoded = [
        decode_element(text, f"blinded_elements[{i}]")
        for i, text in enumerate(body.blinded_elements)
    ]
    # The multiplications run here, on the event loop (at most 64 of them, ~4 ms): in a
    # worker thread each of libsodium's calls would give up the interpreter lock and
    # queue for it again behind the other threads, and the cores would idle meanwhile.
    # One process per core (VIR_KEYHOLDER_WORKERS) is how the key holder uses them all.
    # The database work (buckets, audit entry, commit) is done in a worker thread, with
    # the organisation's other evaluations that wait meanwhile; this waits on the loop.
    computed = evaluation.compute(caller, decoded)
    done = await evaluation.account_waiting(computed)
    return EvaluateResponse(
        epoch=done.epoch,
        evaluated_elements=[b64url_encode(e) for e in done.elements],
        share_index=done.share_index,
        threshold=done.threshold if done.share_index is not None else None,
    )


class EpochOut(BaseModel):
    epoch: int
    state: str = Field(description="current, incoming (not served yet), previous, retired")
    created_at: TimestampOut
    activated_at: TimestampOut | None = None
    retire_after: TimestampOut | None = Field(
        default=None, description="a previous epoch's key is destroyed after this moment"
    )


class EpochsOut(BaseModel):
    current: int = Field(description="the epoch POST /v1/oprf/evaluate evaluates under")
    epochs: list[EpochOut] = Field(description="every epoch not yet retired, oldest first")


@router.get(
    "/epochs",
    response_model=EpochsOut,
    response_model_exclude_none=True,
    operation_id="listOprfEpochs",
    responses=problem_responses(401, 403),
)
@blocking
def epochs(_caller: CurrentCaller, db: DatabaseDep) -> EpochsOut:
    """The key epochs this key holder has not retired."""
    found = [e for e in listing(db) if e.state != "retired"]
    return EpochsOut(
        current=next(e.epoch for e in found if e.state == "current"),
        epochs=[
            EpochOut(
                epoch=e.epoch,
                state=e.state,
                created_at=timestamp(e.created_at),
                activated_at=timestamp(e.activated_at) if e.activated_at else None,
                retire_after=timestamp(e.retire_after) if e.retire_after else None,
            )
            for e in found
        ],
    )
