"""Signals, matches and notifications (API-CONTRACT.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.api.schemas import (
    LOCAL_REF_PATTERN,
    Element,
    IsoDate,
    LocalRef,
    MatchOut,
    ProfessionalIn,
    Strict,
    decode_element,
    parse_date,
)
from vir.domain.signals import MAX_PARENTS, Professional, WithdrawalReason
from vir.services.signals import SignalRequest

router = APIRouter(prefix="/v1", tags=["signals"])
COMMON = (400, 401, 403, 413, 422)


class SignalIn(Strict):
    local_ref: LocalRef = Field(description="the organisation's own reference")
    epoch: StrictInt = Field(ge=1, description="key epoch the pseudonyms were made under")
    person: Element = Field(description="pseudonym of the young person")
    parents: list[Element] = Field(default_factory=list, max_length=MAX_PARENTS)
    address: Element | None = Field(default=None, description="pseudonym of the home address")
    remove_on: IsoDate | None = Field(
        default=None,
        json_schema_extra={"format": "date"},
        description="removal date; default and maximum two years from today",
    )
    professional: ProfessionalIn


class SignalOut(BaseModel):
    signal_id: str
    local_ref: str
    remove_on: str
    matches: list[MatchOut]


class MatchesOut(BaseModel):
    local_ref: str
    matches: list[MatchOut]


class NotificationOut(BaseModel):
    id: str
    type: str = Field(description="match.created, match.joined or match.left")
    created_at: str
    local_ref: str = Field(description="the caller's own signal")
    match: MatchOut


class NotificationsOut(BaseModel):
    items: list[NotificationOut]
    next: str = Field(description="cursor for the next call's `after`")


def _signal_request(body: SignalIn) -> SignalRequest:
    p = body.professional
    return SignalRequest(
        local_ref=body.local_ref,
        epoch=body.epoch,
        person=decode_element(body.person, "person"),
        parents=tuple(decode_element(x, f"parents[{i}]") for i, x in enumerate(body.parents)),
        address=decode_element(body.address, "address") if body.address is not None else None,
        remove_on=parse_date(body.remove_on, "remove_on") if body.remove_on else None,
        professional=Professional(p.name, p.email, p.phone, p.function),
    )


@router.post(
    "/signals",
    status_code=201,
    response_model=SignalOut,
    responses={
        200: {"model": SignalOut, "description": "idempotent repeat"},
        **problem_responses(*COMMON, 409),
    },
)
def register_signal(body: SignalIn, caller: CurrentCaller, request: Request) -> Response:
    """Register that this organisation has a concern about a young person."""
    result = request.app.state.services.signals.register(caller, _signal_request(body))
    # Built by the service in the documented shape; returned as is, without a second
    # validation pass through the response model (that is for the OpenAPI document).
    return JSONResponse(
        {
            "signal_id": result.signal_id,
            "local_ref": result.local_ref,
            "remove_on": result.remove_on.isoformat(),
            "matches": result.matches,
        },
        status_code=201 if result.created else 200,
    )


@router.delete("/signals/{local_ref}", status_code=204, responses=problem_responses(*COMMON, 404))
def withdraw_signal(
    local_ref: Annotated[str, Path(pattern=LOCAL_REF_PATTERN)],
    reason: Annotated[WithdrawalReason, Query()],
    caller: CurrentCaller,
    request: Request,
) -> Response:
    """Withdraw one's own signal. Other organisations' signals are not found."""
    request.app.state.services.signals.withdraw(caller, local_ref, reason)
    return Response(status_code=204)


@router.get("/matches", response_model=MatchesOut, responses=problem_responses(*COMMON, 404))
def get_matches(
    local_ref: Annotated[str, Query(pattern=LOCAL_REF_PATTERN)],
    caller: CurrentCaller,
    request: Request,
) -> dict[str, Any]:
    """The current matches of one of the caller's own signals."""
    matches = request.app.state.services.signals.matches(caller, local_ref)
    return {"local_ref": local_ref, "matches": matches}


@router.get("/notifications", response_model=NotificationsOut, responses=problem_responses(*COMMON))
def get_notifications(
    caller: CurrentCaller,
    request: Request,
    after: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Notifications addressed to the caller's organisation, oldest first."""
    page = request.app.state.services.notifications.read(caller, after, limit)
    return {"items": page.items, "next": page.next}
