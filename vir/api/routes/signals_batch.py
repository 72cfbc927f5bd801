"""``POST /v1/signals/batch``: many registrations in one request, each one on its own.

A back office migrating its case load, or reconciling it every night, sends up to
``MAX_BATCH`` signals at once. Each item is exactly a ``POST /v1/signals``: validated
on its own, registered by the same steps as a single signal (``SignalService``),
in order (so items of one batch meet each other as if they had been sent one by one),
charged to the same per-organisation rate limit, and answered with what the single
endpoint would have answered: its status, and its signal or its problem (the same
problem+json members, from the same table in ``vir.api.errors``). One invalid item
does not fail the others.

The items are stored ``CHUNK`` at a time, each chunk in one write transaction
(``SignalService.register_many``): a back office's batch costs one durable commit
per chunk instead of one per signal. An item is answered once its chunk has
committed; when a chunk cannot commit, its items and every later one are refused
with 503 and nothing of them is stored.

Once an item is refused because the index cannot take more now (429 rate limited, 503
not stored), the items after it are not tried and get the same refusal: a batch is no
way around the rate limit, and the client resends everything from the first refused
item on, in order. That refusal is accounted for once per request (the audit log's
refusal counts, the metrics), not once per item it carries: the items after it were
not refused on their own, and counting each would swell the privacy report's
rate-limit refusals with items nobody tried.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from vir.api.blocking import blocking
from vir.api.deps import SignalServiceDep
from vir.api.errors import record_refusal, validation_response, vir_error_response
from vir.api.problems import FieldProblem, problem_responses
from vir.api.roles import Reporter
from vir.api.routes.signals import COMMON, SignalIn, SignalOut, _signal_request
from vir.api.schemas import DateOut, MatchOut, Strict
from vir.api.strict import StrictRoute
from vir.domain.errors import RateLimited, VirError, WriteNotCommitted
from vir.domain.local_ref import is_local_ref
from vir.services.refusals import reason_code
from vir.services.signals import SignalRequest
from vir.services.views import Registration

router = APIRouter(prefix="/v1", tags=["signals"], route_class=StrictRoute)

MAX_BATCH = 500
# Its body has a limit of its own, VIR_MAX_BATCH_BODY_BYTES (vir.api.app).
BATCH_PATH = "/v1/signals/batch"
# Items registered in one write transaction (one commit, one round of locks): small
# enough that no other writer waits long for a batch.
CHUNK = 64

# An item is any JSON object here: it is validated as a SignalIn on its own, so that an
# invalid item gets its own 422 result instead of failing the whole batch.
BatchItem = Annotated[
    dict[str, Any],
    Field(
        description="a signal exactly as the body of POST /v1/signals (schema SignalIn); "
        "validated on its own: an invalid item gets a 422 result, the others are registered"
    ),
]


class SignalBatchIn(Strict):
    signals: list[BatchItem] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"1..{MAX_BATCH} signals, registered in this order",
    )


class BatchRegistered(BaseModel):
    """An item that was registered (201) or repeated a stored signal (200)."""

    local_ref: str
    status: Literal[200, 201] = Field(description="201 a new signal, 200 an idempotent repeat")
    signal_id: str
    remove_on: DateOut
    matches: list[MatchOut]


class BatchRefused(BaseModel):
    """An item that was refused: the problem POST /v1/signals would have answered."""

    local_ref: str | None = Field(
        description="the item's local_ref; null when the item has no valid one"
    )
    status: int = Field(
        description="409 conflict, 422 invalid (the field is named), 429 rate limited or "
        "503 not stored; after a 429 or 503 every later item of the batch has it too"
    )
    type: str
    title: str
    detail: str
    errors: list[FieldProblem] | None = None
    existing_local_ref: str | None = Field(
        default=None,
        description="409 for a second active signal on the same young person: the "
        "organisation's own local_ref of the one it has",
    )
    retry_after: int | None = Field(
        default=None, description="429 and 503: seconds to wait before sending the item again"
    )


class SignalBatchOut(BaseModel):
    results: list[BatchRegistered | BatchRefused] = Field(
        description="one result per item, in the order of the items"
    )


@router.post(
    BATCH_PATH.removeprefix("/v1"),
    response_model=SignalBatchOut,
    operation_id="registerSignalBatch",
    responses=problem_responses(*COMMON),
)
@blocking
def register_signal_batch(
    body: SignalBatchIn, caller: Reporter, signals: SignalServiceDep, request: Request
) -> JSONResponse:
    """Register up to 500 signals, each as `POST /v1/signals` would, in order.

    Answers 200 with one result per item: `status` 201 or 200 with the signal, or the
    refusal (409, 422, 429, 503) with the problem the single endpoint would answer. Each
    new signal counts against the organisation's registration rate limit (an idempotent
    repeat does not); from the first item refused with 429 (or 503) on, the rest are not
    tried and carry the same refusal, accounted for as one refused request.

    The body may be larger than other requests': up to `VIR_MAX_BATCH_BODY_BYTES` (1 MiB
    by default, which holds 500 of the largest valid signals); over it, 413.
    """
    results: list[dict[str, Any]] = []
    stopped: VirError | None = None
    for first in range(0, len(body.signals), CHUNK):
        chunk = body.signals[first : first + CHUNK]
        shown = [_shown(item) for item in chunk]
        if stopped is None:
            read = [_request(request, item, ref) for item, ref in zip(chunk, shown, strict=True)]
            try:
                answers = iter(
                    signals.register_many(caller, [r for r in read if not isinstance(r, dict)])
                )
            except (RateLimited, WriteNotCommitted) as error:
                stopped = error
                record_refusal(request, reason_code(error))  # once for the request
            else:
                for item, ref in zip(read, shown, strict=True):
                    if isinstance(item, dict):
                        results.append(item)  # not a signal: its 422 result as is
                        continue
                    answer = next(answers)
                    if isinstance(answer, (RateLimited, WriteNotCommitted)):
                        # The first is recorded; the items after it were not tried.
                        results.append(_refused(request, ref, answer, record=stopped is None))
                        stopped = stopped or answer
                    elif isinstance(answer, VirError):
                        results.append(_refused(request, ref, answer))
                    else:
                        results.append(_registered(answer))
                continue
        results.extend(_refused(request, ref, stopped, record=False) for ref in shown)
    return JSONResponse({"results": results})


def _shown(item: dict[str, Any]) -> str | None:
    ref = item.get("local_ref")
    return ref if isinstance(ref, str) and is_local_ref(ref) else None


def _request(
    request: Request, item: dict[str, Any], shown: str | None
) -> SignalRequest | VirError | dict[str, Any]:
    """The item as the single endpoint reads its body: the request, its refusal, or
    (invalid JSON for a signal) the 422 result itself."""
    try:
        body = SignalIn.model_validate(item)
    except ValidationError as error:
        record_refusal(request, "invalid_input")
        problem = _body_of(validation_response(RequestValidationError(error.errors())))
        return {"local_ref": shown, **problem}
    try:
        return _signal_request(body)
    except VirError as error:
        return error


def _registered(registered: Registration) -> dict[str, Any]:
    out = SignalOut(
        signal_id=registered.signal.id,
        local_ref=registered.signal.local_ref,
        remove_on=registered.signal.remove_on.isoformat(),
        matches=[MatchOut.of(m) for m in registered.matches],
    )
    status = 201 if registered.created else 200
    return {"local_ref": out.local_ref, "status": status, **out.model_dump(mode="json")}


def _refused(
    request: Request, shown: str | None, error: VirError, *, record: bool = True
) -> dict[str, Any]:
    """The problem the single endpoint answers for ``error``, as the item's result;
    ``record``: accounted for as a refusal (not for an item after a 429 or 503, which
    was not tried)."""
    if record:
        record_refusal(request, reason_code(error))
    result: dict[str, Any] = {"local_ref": shown, **_body_of(vir_error_response(error))}
    if isinstance(error, RateLimited):
        result["retry_after"] = error.retry_after
    elif isinstance(error, WriteNotCommitted):
        result["retry_after"] = 1  # as the single endpoint's Retry-After
    return result


def _body_of(response: JSONResponse) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(bytes(response.body))
    return found
