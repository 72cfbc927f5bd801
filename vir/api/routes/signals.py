"""Signals, matches and notifications (API-CONTRACT.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.api.schemas import (
    LOCAL_REF_PATTERN,
    SIGNAL_ID_PATTERN,
    Element,
    Email,
    IsoDate,
    LocalRef,
    MatchOut,
    ParticipantOut,
    PersonName,
    Phone,
    ProfessionalIn,
    ProfessionalOut,
    PseudonymIn,
    Strict,
    check_epoch,
    decode_element,
    decode_pseudonym,
    parse_date,
)
from vir.domain import functions, policy
from vir.domain.errors import InputError
from vir.domain.lifecycle import InformedWho
from vir.domain.signals import MAX_PARENTS, Professional, WithdrawalReason
from vir.services import onboarding
from vir.services.consultations import Purpose
from vir.services.identity import Caller
from vir.services.signals import SignalChange, SignalRequest

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
    archive_until: IsoDate | None = Field(
        default=None,
        json_schema_extra={"format": "date"},
        description="the day the young person turns 23, when that comes before the removal "
        "date plus five years: no archived copy outlives it (computed by the client; "
        "the date of birth stays there)",
    )


class InformedIn(Strict):
    on: IsoDate = Field(json_schema_extra={"format": "date"}, description="when they were told")
    who: InformedWho = Field(description="who was informed")


class SignalPatch(Strict):
    professional: ProfessionalIn | None = Field(
        default=None, description="new contact details; match partners are notified"
    )
    informed: InformedIn | None = Field(
        default=None, description="confirmation of the information duty (GDPR art. 14)"
    )


class InformedOut(BaseModel):
    on: str
    who: str


class OwnSignalOut(BaseModel):
    signal_id: str
    local_ref: str
    status: Literal["active", "archived"]
    registered_at: str
    remove_on: str
    archived_on: str | None = None
    destroy_on: str | None = None
    professional: ProfessionalOut
    informed: InformedOut | None
    matches: list[MatchOut] | None = None


class OwnSignalsOut(BaseModel):
    items: list[OwnSignalOut]
    next: str | None = Field(description="cursor for `after`; null at the end")


class ConsultationIn(PseudonymIn):
    purpose: Purpose = Field(description="why the index is consulted (a fixed list)")


class InvolvementOut(ParticipantOut):
    status: Literal["active", "archived"]


class ConsultationOut(BaseModel):
    consultation_id: str
    purpose: str
    involvement: list[InvolvementOut]


class CoordinatorIn(Strict):
    name: PersonName
    email: Email | None = None
    phone: Phone | None = None


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
    type: str = Field(
        description="match.created, match.joined, match.left, match.contact_changed "
        "or match.historical"
    )
    created_at: str
    local_ref: str = Field(description="the caller's own signal")
    match: MatchOut


class NotificationsOut(BaseModel):
    items: list[NotificationOut]
    next: str = Field(description="cursor for the next call's `after`")


def _check_function(caller: Caller, professional: ProfessionalIn | None) -> None:
    """The function code must be one of the caller's category (a municipality, which
    registers nothing, is refused by the service with 403 instead)."""
    if professional is not None and caller.organisation.category.reports:
        functions.check_for(
            caller.organisation.category, professional.function, "professional.function"
        )


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
        archive_until=(
            parse_date(body.archive_until, "archive_until") if body.archive_until else None
        ),
    )


@router.post(
    "/signals",
    status_code=201,
    response_model=SignalOut,
    responses={
        200: {"model": SignalOut, "description": "idempotent repeat"},
        **problem_responses(*COMMON, 409, 429),
    },
)
def register_signal(body: SignalIn, caller: CurrentCaller, request: Request) -> Response:
    """Register that this organisation has a concern about a young person."""
    _check_function(caller, body.professional)
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


@router.delete(
    "/signals/{local_ref}", status_code=204, responses=problem_responses(*COMMON, 404, 429)
)
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
    after: Annotated[
        str | None,
        Query(max_length=20, description="opaque cursor: the `next` of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Notifications addressed to the caller's organisation, oldest first."""
    page = request.app.state.services.notifications.read(caller, after, limit)
    return {"items": page.items, "next": page.next}


@router.patch(
    "/signals/{local_ref}", response_model=OwnSignalOut, responses=problem_responses(*COMMON, 404)
)
def update_signal(
    local_ref: Annotated[str, Path(pattern=LOCAL_REF_PATTERN)],
    body: SignalPatch,
    caller: CurrentCaller,
    request: Request,
) -> dict[str, Any]:
    """Change the professional's contact details and/or confirm the information duty."""
    if body.professional is None and body.informed is None:
        raise InputError("body", "give professional, informed or both")
    p = body.professional
    _check_function(caller, p)
    change = SignalChange(
        professional=Professional(p.name, p.email, p.phone, p.function) if p else None,
        informed=(
            (parse_date(body.informed.on, "informed.on"), body.informed.who)
            if body.informed
            else None
        ),
    )
    view: dict[str, Any] = request.app.state.services.signals.update(caller, local_ref, change)
    return view


@router.get("/signals", response_model=OwnSignalsOut, responses=problem_responses(*COMMON))
def list_signals(
    caller: CurrentCaller,
    request: Request,
    status: Annotated[Literal["active", "archived"], Query()] = "active",
    uninformed: Annotated[bool, Query(description="only unconfirmed past the term")] = False,
    # The cursor is a signal id: its shape keeps NUL and other bytes the database
    # refuses (PostgreSQL text) out of the query.
    after: Annotated[str | None, Query(pattern=SIGNAL_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The organisation's own signals, for its back office and its coordinator."""
    items = request.app.state.services.signals.list_own(
        caller, archived=status == "archived", uninformed=uninformed, after=after, limit=limit
    )
    return {"items": items, "next": items[-1]["signal_id"] if len(items) == limit else None}


@router.post(
    "/consultations",
    response_model=ConsultationOut,
    responses=problem_responses(*COMMON, 429),
    tags=["consultations"],
)
def consult(body: ConsultationIn, caller: CurrentCaller, request: Request) -> dict[str, Any]:
    """Veilig Thuis only: who is or was involved with a young person, without a signal."""
    services = request.app.state.services
    check_epoch(body.epoch, services.pseudonymisation.epoch)
    person = decode_pseudonym(body.person, "person")
    result: dict[str, Any] = services.consultations.consult(caller, person, body.purpose)
    return result


@router.put(
    "/organisation/coordinator",
    status_code=204,
    responses=problem_responses(*COMMON),
    tags=["organisation"],
)
def set_coordinator(body: CoordinatorIn, caller: CurrentCaller, request: Request) -> Response:
    """The organisation's coordinator: their contact details are shown to match partners."""
    policy.require_coordinator(caller)
    onboarding.set_coordinator(
        request.app.state.services.db,
        caller.oin,
        Professional(body.name, body.email, body.phone),
        request.app.state.clock(),
        caller,
    )
    return Response(status_code=204)
