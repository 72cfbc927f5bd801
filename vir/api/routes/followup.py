"""``/v1/follow-up``: a municipality's follow-up officer checks that matched reporters
in its region made contact (issue 17, part 3; docs/matching.md, "Follow-up officer").

For the ``follow_up_officer`` certificate of a municipality only; every other caller
gets 403. The officer sees of a match when it was made and, for the organisations of
its own region, the professional's contact details and whether contact is confirmed:
never a person, a signal or a local reference, and of other regions' participants only
how many there are. A match without a participant in the region: 403
``outside-region``, audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from vir.api.blocking import blocking
from vir.api.deps import ClockDep, DatabaseDep
from vir.api.problems import problem_responses
from vir.api.roles import FollowUpOfficer
from vir.api.routes.matches import MatchId
from vir.api.schemas import DIGITS, OrganisationOut, ProfessionalOut, TimestampOut, timestamp
from vir.api.strict import StrictRoute
from vir.domain.followup import MAX_DAYS
from vir.reports.labels import category_label
from vir.services.followup import (
    FollowUpCheck,
    OverdueMatch,
    OverduePage,
    ParticipantStatus,
    Reminder,
)

router = APIRouter(prefix="/v1", tags=["follow-up"], route_class=StrictRoute)


class FollowUpParticipantOut(BaseModel):
    organisation: OrganisationOut
    category: str = Field(description="the organisation category (docs/categories.md)")
    category_label: str
    professional: ProfessionalOut = Field(
        description="the contact details of the organisation's professional in this match"
    )
    contact_confirmed: bool = Field(
        description="the organisation recorded contact with another participant, or "
        "another recorded it with the organisation"
    )

    @classmethod
    def of(cls, p: ParticipantStatus) -> FollowUpParticipantOut:
        return cls(
            organisation=OrganisationOut(oin=p.organisation.oin, name=p.organisation.name),
            category=p.organisation.category,
            category_label=category_label(p.organisation.category),
            professional=ProfessionalOut.of(p.professional),
            contact_confirmed=p.contact_confirmed,
        )


class OverdueMatchOut(BaseModel):
    id: str = Field(description="the match's id, for a reminder")
    created_at: TimestampOut
    days_open: int = Field(description="whole days since the match was made")
    participants: list[FollowUpParticipantOut] = Field(
        description="the participating organisations of the officer's region"
    )
    other_regions: int = Field(description="how many participants are of other regions")
    reminded_at: TimestampOut | None = Field(description="the region's last reminder, if any")

    @classmethod
    def of(cls, m: OverdueMatch) -> OverdueMatchOut:
        return cls(
            id=m.id,
            created_at=timestamp(m.created_at),
            days_open=m.days_open,
            participants=[FollowUpParticipantOut.of(p) for p in m.participants],
            other_regions=m.other_regions,
            reminded_at=None if m.reminded_at is None else timestamp(m.reminded_at),
        )


class OverdueOut(BaseModel):
    region: str
    days: int = Field(description="the overdue period applied, in days")
    items: list[OverdueMatchOut]
    next: str | None = Field(description="cursor for `after`; null at the end")

    @classmethod
    def of(cls, page: OverduePage) -> OverdueOut:
        return cls(
            region=page.region,
            days=page.days,
            items=[OverdueMatchOut.of(m) for m in page.items],
            next=page.next,
        )


class ReminderOut(BaseModel):
    match: str
    region: str
    reminded: list[OrganisationOut] = Field(
        description="the organisations of the region told (match.reminder)"
    )
    sent_at: TimestampOut

    @classmethod
    def of(cls, r: Reminder) -> ReminderOut:
        return cls(
            match=r.match_id,
            region=r.region,
            reminded=[OrganisationOut(oin=o.oin, name=o.name) for o in r.reminded],
            sent_at=timestamp(r.sent_at),
        )


@router.get(
    "/follow-up/overdue",
    response_model=OverdueOut,
    operation_id="listOverdueMatches",
    responses=problem_responses(400, 401, 403, 422),
)
@blocking
def list_overdue(
    caller: FollowUpOfficer,
    db: DatabaseDep,
    clock: ClockDep,
    days: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_DAYS,
            description="overdue after this many days; default: the "
            "region's period (14 unless the operator set another)",
        ),
        DIGITS,
    ] = None,
    after: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,17}\.[0-9a-f-]{36}$",
            description="opaque cursor: the `next` of the last page",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500), DIGITS] = 100,
) -> OverdueOut:
    """The active matches of the officer's region, oldest first, older than the period
    and with a participant of the region whose contact is not confirmed."""
    return OverdueOut.of(FollowUpCheck(db, clock).overdue(caller, days, after, limit))


@router.post(
    "/follow-up/overdue/{match_id}/reminder",
    response_model=ReminderOut,
    operation_id="remindMatch",
    responses=problem_responses(400, 401, 403, 404, 409, 422, 429),
)
@blocking
def remind(
    match_id: MatchId, caller: FollowUpOfficer, db: DatabaseDep, clock: ClockDep
) -> ReminderOut:
    """Remind the participants of the officer's region without confirmed contact in an
    overdue match (``match.reminder``); at most once a day per match."""
    return ReminderOut.of(FollowUpCheck(db, clock).remind(caller, match_id))
