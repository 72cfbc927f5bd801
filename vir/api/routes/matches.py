"""``/v1/matches/{match_id}``: one match as its participants see it, the coordinator's
handover and the match's content-free follow-up (issue 17, matchregie).

A match's coordinator is chosen by the regional rules (docs/matching.md,
"Coordinator"); every participant sees who it is. Only an organisation with an active
signal in the match may read it or act on it: for any other caller the match does not
exist (404, audited as every refusal is). Participants are named by their
organisation's OIN, as the match shows them; nothing here carries text.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, StringConstraints

from vir.api.blocking import blocking
from vir.api.deps import ClockDep, DatabaseDep
from vir.api.problems import problem_responses
from vir.api.roles import Reporter
from vir.api.schemas import (
    SIGNAL_ID_PATTERN,
    MatchOut,
    OrganisationOut,
    Strict,
    TimestampOut,
    timestamp,
)
from vir.api.strict import StrictRoute
from vir.domain.coordination import FollowUp
from vir.services.matchregie import MAX_CONTACTS, Matchregie
from vir.services.views import FollowUpShown, HandoverShown, MatchDetail
from vir.store.records import OrganisationContact

router = APIRouter(prefix="/v1", tags=["matches"], route_class=StrictRoute)
COMMON = (400, 401, 403, 422)
MatchId = Annotated[str, Path(pattern=SIGNAL_ID_PATTERN, description="the match's id")]
OinIn = Annotated[str, StringConstraints(pattern=r"^[0-9]{20}$")]


class HandoverIn(Strict):
    to: OinIn = Field(description="the OIN of the participating organisation offered the role")


class FollowUpIn(Strict):
    event: FollowUp = Field(
        description="contact_made (any participant, with contact_with), plan_agreed or "
        "care_started (the coordinator, in that order)"
    )
    contact_with: list[OinIn] = Field(
        default_factory=list,
        max_length=MAX_CONTACTS,
        description="contact_made only: the OINs of the participating organisations",
    )


def _organisation(o: OrganisationContact) -> OrganisationOut:
    return OrganisationOut(oin=o.oin, name=o.name)


class HandoverOut(BaseModel):
    from_organisation: OrganisationOut
    to_organisation: OrganisationOut
    offered_at: TimestampOut

    @classmethod
    def of(cls, h: HandoverShown | None) -> HandoverOut | None:
        if h is None:
            return None
        return cls(
            from_organisation=_organisation(h.from_organisation),
            to_organisation=_organisation(h.to_organisation),
            offered_at=timestamp(h.offered_at),
        )


class FollowUpOut(BaseModel):
    organisation: OrganisationOut = Field(description="who recorded it")
    event: FollowUp
    contact_with: OrganisationOut | None = Field(description="contact_made: with whom")
    recorded_at: TimestampOut

    @classmethod
    def of(cls, f: FollowUpShown) -> FollowUpOut:
        return cls(
            organisation=_organisation(f.organisation),
            event=FollowUp(f.event),
            contact_with=None
            if f.with_organisation is None
            else _organisation(f.with_organisation),
            recorded_at=timestamp(f.recorded_at),
        )


class MatchDetailOut(MatchOut):
    handover: HandoverOut | None = Field(
        default=None, description="an open offer of the coordinator's role, if any"
    )
    follow_up: list[FollowUpOut] = Field(
        default_factory=list, description="content-free follow-up events, oldest first"
    )

    @classmethod
    def detail(cls, d: MatchDetail) -> MatchDetailOut:
        shown = MatchOut.of(d.match)
        return cls(
            **shown.model_dump(),
            handover=HandoverOut.of(d.handover),
            follow_up=[FollowUpOut.of(f) for f in d.follow_up],
        )


@router.get(
    "/matches/{match_id}",
    response_model=MatchDetailOut,
    operation_id="getMatch",
    responses=problem_responses(*COMMON, 404),
)
@blocking
def get_match(
    match_id: MatchId, caller: Reporter, db: DatabaseDep, clock: ClockDep
) -> MatchDetailOut:
    """One active match of the caller's organisation: the other organisations, the
    coordinator, an open handover and the follow-up. A match the organisation has no
    active signal in is not found."""
    return MatchDetailOut.detail(Matchregie(db, clock).read(caller, match_id))


@router.post(
    "/matches/{match_id}/handover",
    response_model=MatchDetailOut,
    operation_id="offerHandover",
    responses=problem_responses(*COMMON, 404),
)
@blocking
def offer_handover(
    match_id: MatchId, body: HandoverIn, caller: Reporter, db: DatabaseDep, clock: ClockDep
) -> MatchDetailOut:
    """The coordinator offers its role to another participating organisation, which is
    told (``match.handover_offered``). Only the coordinator may offer."""
    return MatchDetailOut.detail(Matchregie(db, clock).offer(caller, match_id, body.to))


@router.post(
    "/matches/{match_id}/handover/accept",
    response_model=MatchDetailOut,
    operation_id="acceptHandover",
    responses=problem_responses(*COMMON, 404),
)
@blocking
def accept_handover(
    match_id: MatchId, caller: Reporter, db: DatabaseDep, clock: ClockDep
) -> MatchDetailOut:
    """The organisation offered the role takes it; every participant is told
    (``match.coordinator``)."""
    return MatchDetailOut.detail(Matchregie(db, clock).answer(caller, match_id, accept=True))


@router.post(
    "/matches/{match_id}/handover/decline",
    response_model=MatchDetailOut,
    operation_id="declineHandover",
    responses=problem_responses(*COMMON, 404),
)
@blocking
def decline_handover(
    match_id: MatchId, caller: Reporter, db: DatabaseDep, clock: ClockDep
) -> MatchDetailOut:
    """The organisation offered the role declines; the coordinator who offered it is told
    (``match.handover_declined``)."""
    return MatchDetailOut.detail(Matchregie(db, clock).answer(caller, match_id, accept=False))


@router.post(
    "/matches/{match_id}/follow-up",
    response_model=MatchDetailOut,
    operation_id="recordFollowUp",
    responses=problem_responses(*COMMON, 404, 409),
)
@blocking
def record_follow_up(
    match_id: MatchId, body: FollowUpIn, caller: Reporter, db: DatabaseDep, clock: ClockDep
) -> MatchDetailOut:
    """Content-free follow-up: contact made with participating organisations (any
    participant), or the coordinator's plan agreed and then care started."""
    service = Matchregie(db, clock)
    return MatchDetailOut.detail(service.follow_up(caller, match_id, body.event, body.contact_with))
