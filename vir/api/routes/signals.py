"""Signals, matches and notifications (API-CONTRACT.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field, StrictInt

from vir.api.blocking import blocking
from vir.api.deps import (
    ClockDep,
    DatabaseDep,
    NotificationServiceDep,
    SignalServiceDep,
)
from vir.api.problems import location_header, problem_responses
from vir.api.roles import Coordinator, Reporter
from vir.api.schemas import (
    DIGITS,
    LOCAL_REF_PATTERN,
    SIGNAL_ID_PATTERN,
    DateOut,
    Element,
    Email,
    IsoDate,
    LocalRef,
    MatchOut,
    PersonName,
    Phone,
    ProfessionalIn,
    ProfessionalOut,
    Strict,
    TimestampOut,
    decode_element,
    parse_date,
    timestamp,
)
from vir.api.strict import StrictRoute
from vir.delivery.channels import DeliveryState
from vir.domain.errors import InputError
from vir.domain.lifecycle import InformedWho
from vir.domain.local_ref import path_segment
from vir.domain.signals import MAX_PARENTS, Professional, WithdrawalReason
from vir.services import onboarding
from vir.services.signals import SignalChange, SignalRequest
from vir.services.views import MatchView
from vir.store.records import ArchivedSignal, Informed, Signal, StoredNotification

router = APIRouter(prefix="/v1", tags=["signals"], route_class=StrictRoute)
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
    remove_on: IsoDate | None = Field(
        default=None,
        json_schema_extra={"format": "date"},
        description="a new removal date: in the future, at most two years after the signal "
        "was made, not after archive_until (extends or shortens the signal)",
    )


class InformedOut(BaseModel):
    on: DateOut
    who: str

    @classmethod
    def of(cls, informed: Informed | None) -> InformedOut | None:
        return None if informed is None else cls(on=informed.on.isoformat(), who=informed.who)


class OwnSignalOut(BaseModel):
    signal_id: str
    local_ref: str
    status: Literal["active", "archived"]
    registered_at: TimestampOut
    remove_on: DateOut
    archived_on: DateOut | None = None
    destroy_on: DateOut | None = None
    professional: ProfessionalOut
    informed: InformedOut | None
    matches: list[MatchOut] | None = None

    @classmethod
    def active(cls, signal: Signal, matches: tuple[MatchView, ...] | None = None) -> OwnSignalOut:
        return cls(
            signal_id=signal.id,
            local_ref=signal.local_ref,
            status="active",
            registered_at=timestamp(signal.created_at),
            remove_on=signal.remove_on.isoformat(),
            professional=ProfessionalOut.of(signal.professional),
            informed=InformedOut.of(signal.informed),
            matches=None if matches is None else [MatchOut.of(m) for m in matches],
        )

    @classmethod
    def archived(cls, signal: ArchivedSignal) -> OwnSignalOut:
        return cls(
            signal_id=signal.id,
            local_ref=signal.local_ref,
            status="archived",
            registered_at=timestamp(signal.registered_at),
            remove_on=signal.remove_on.isoformat(),
            archived_on=signal.archived_on.isoformat(),
            destroy_on=signal.destroy_on.isoformat(),
            professional=ProfessionalOut.of(signal.professional),
            informed=InformedOut.of(signal.informed),
        )


class OwnSignalsOut(BaseModel):
    items: list[OwnSignalOut]
    next: str | None = Field(description="cursor for `after`; null at the end")


class CoordinatorIn(Strict):
    name: PersonName
    email: Email | None = None
    phone: Phone | None = None


class SignalOut(BaseModel):
    signal_id: str
    local_ref: str
    remove_on: DateOut
    matches: list[MatchOut]


class MatchesOut(BaseModel):
    local_ref: str
    matches: list[MatchOut]


class NotificationOut(BaseModel):
    id: str
    type: str = Field(
        description="match.created, match.joined, match.left, match.contact_changed, "
        "match.historical, match.safety_feedback, ... (docs/api.md lists every type)"
    )
    created_at: TimestampOut
    local_ref: str = Field(description="the caller's own signal")
    match: MatchOut
    delivery: dict[str, DeliveryState] = Field(
        default_factory=dict,
        description="per channel that applies to this notification (webhook, email): "
        "pending, retrying, delivered or dead (docs/delivery.md); {} when none applies",
    )

    @classmethod
    def of(
        cls, stored: StoredNotification, delivery: Mapping[str, str] | None = None
    ) -> NotificationOut:
        """A stored notification: its match is read back from the JSON stored with it."""
        return cls(
            id=stored.id,
            type=stored.type,
            created_at=timestamp(stored.created_at),
            local_ref=stored.local_ref,
            match=MatchOut.model_validate_json(stored.payload),
            delivery={channel: DeliveryState(state) for channel, state in (delivery or {}).items()},
        )


def notification_item(stored: StoredNotification) -> dict[str, Any]:
    """A notification exactly as ``GET /v1/notifications`` shows it, without its delivery
    state: the ``data`` of the webhook's event (``vir.delivery.webhook``)."""
    return NotificationOut.of(stored).model_dump(mode="json", exclude={"delivery"})


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
        archive_until=(
            parse_date(body.archive_until, "archive_until") if body.archive_until else None
        ),
    )


@router.post(
    "/signals",
    status_code=201,
    response_model=SignalOut,
    operation_id="registerSignal",
    responses={
        200: {"model": SignalOut, "description": "idempotent repeat"},
        201: {
            "description": "a new signal",
            "headers": {"Location": location_header("GET /v1/signals/{local_ref}")},
        },
        **problem_responses(*COMMON, 409, 429),
    },
)
async def register_signal(
    body: SignalIn, caller: Reporter, signals: SignalServiceDep, response: Response
) -> SignalOut:
    """Register that this organisation has a concern about a young person.

    The same `local_ref` with the same content again answers 200 with the same signal
    (nothing new is stored), so a client may repeat a registration it got no answer to.
    """
    result = await signals.register_waiting(caller, _signal_request(body))
    if result.created:
        # An absolute path (RFC 9110 §10.2.2); local_ref's pattern keeps it one path
        # segment, with "." and ".." percent-encoded so that they stay one.
        response.headers["Location"] = f"/v1/signals/{path_segment(result.signal.local_ref)}"
    else:
        response.status_code = 200
    return SignalOut(
        signal_id=result.signal.id,
        local_ref=result.signal.local_ref,
        remove_on=result.signal.remove_on.isoformat(),
        matches=[MatchOut.of(m) for m in result.matches],
    )


@router.get(
    "/signals/{local_ref}",
    response_model=OwnSignalOut,
    operation_id="getSignal",
    responses=problem_responses(*COMMON, 404),
)
@blocking
def get_signal(
    local_ref: Annotated[str, Path(pattern=LOCAL_REF_PATTERN)],
    caller: Reporter,
    signals: SignalServiceDep,
) -> OwnSignalOut:
    """One of the organisation's own active signals, as `GET /v1/signals` lists it.
    Other organisations' signals (and archived ones) are not found."""
    return OwnSignalOut.active(signals.own(caller, local_ref))


@router.delete(
    "/signals/{local_ref}",
    status_code=204,
    operation_id="withdrawSignal",
    responses=problem_responses(*COMMON, 404, 429),
)
@blocking
def withdraw_signal(
    local_ref: Annotated[str, Path(pattern=LOCAL_REF_PATTERN)],
    reason: Annotated[WithdrawalReason, Query()],
    caller: Reporter,
    signals: SignalServiceDep,
) -> Response:
    """Withdraw one's own signal. Other organisations' signals are not found."""
    signals.withdraw(caller, local_ref, reason)
    return Response(status_code=204)


@router.get(
    "/matches",
    response_model=MatchesOut,
    operation_id="getMatches",
    responses=problem_responses(*COMMON, 404),
)
@blocking
def get_matches(
    local_ref: Annotated[str, Query(pattern=LOCAL_REF_PATTERN)],
    caller: Reporter,
    signals: SignalServiceDep,
) -> MatchesOut:
    """The current matches of one of the caller's own signals."""
    matches = signals.matches(caller, local_ref)
    return MatchesOut(local_ref=local_ref, matches=[MatchOut.of(m) for m in matches])


@router.get(
    "/notifications",
    response_model=NotificationsOut,
    operation_id="getNotifications",
    responses=problem_responses(*COMMON),
)
@blocking
def get_notifications(
    caller: Reporter,
    notifications: NotificationServiceDep,
    after: Annotated[
        str | None,
        Query(max_length=20, description="opaque cursor: the `next` of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500), DIGITS] = 100,
) -> NotificationsOut:
    """Notifications addressed to the caller's organisation, oldest first."""
    page = notifications.read(caller, after, limit)
    return NotificationsOut(
        items=[NotificationOut.of(n, page.delivery.get(n.id)) for n in page.items], next=page.next
    )


@router.patch(
    "/signals/{local_ref}",
    response_model=OwnSignalOut,
    operation_id="updateSignal",
    responses=problem_responses(*COMMON, 404),
)
@blocking
def update_signal(
    local_ref: Annotated[str, Path(pattern=LOCAL_REF_PATTERN)],
    body: SignalPatch,
    caller: Reporter,
    signals: SignalServiceDep,
) -> OwnSignalOut:
    """Change the professional's contact details, confirm the information duty and/or
    set a new removal date."""
    if body.professional is None and body.informed is None and body.remove_on is None:
        raise InputError("body", "give professional, informed, remove_on or several")
    p = body.professional
    change = SignalChange(
        professional=Professional(p.name, p.email, p.phone, p.function) if p else None,
        informed=(
            (parse_date(body.informed.on, "informed.on"), body.informed.who)
            if body.informed
            else None
        ),
        remove_on=parse_date(body.remove_on, "remove_on") if body.remove_on else None,
    )
    state = signals.update(caller, local_ref, change)
    return OwnSignalOut.active(state.signal, state.matches)


@router.get(
    "/signals",
    response_model=OwnSignalsOut,
    operation_id="listSignals",
    responses=problem_responses(*COMMON),
)
@blocking
def list_signals(
    caller: Reporter,
    signals: SignalServiceDep,
    status: Annotated[Literal["active", "archived"], Query()] = "active",
    uninformed: Annotated[bool, Query(description="only unconfirmed past the term")] = False,
    # The cursor is a signal id: its shape keeps NUL and other bytes the database
    # refuses (PostgreSQL text) out of the query.
    after: Annotated[str | None, Query(pattern=SIGNAL_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000), DIGITS] = 100,
) -> OwnSignalsOut:
    """The organisation's own signals, for its back office and its coordinator."""
    found = signals.list_own(
        caller, archived=status == "archived", uninformed=uninformed, after=after, limit=limit
    )
    items = [
        OwnSignalOut.archived(s) if isinstance(s, ArchivedSignal) else OwnSignalOut.active(s)
        for s in found
    ]
    return OwnSignalsOut(items=items, next=found[-1].id if len(found) == limit else None)


@router.put(
    "/organisation/coordinator",
    status_code=204,
    operation_id="setCoordinator",
    responses=problem_responses(*COMMON),
    tags=["organisation"],
)
@blocking
def set_coordinator(
    body: CoordinatorIn, caller: Coordinator, db: DatabaseDep, clock: ClockDep
) -> Response:
    """The organisation's coordinator: their contact details are shown to match partners."""
    onboarding.set_coordinator(
        db, caller.oin, Professional(body.name, body.email, body.phone), clock(), caller
    )
    return Response(status_code=204)
