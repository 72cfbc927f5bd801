"""The privacy officer's endpoints: data-subject access, erasure, death notices, and the
signals whose information duty is unconfirmed. A privacy-officer certificate only: a
municipality's officer for the signals of its region's organisations (a person held
only elsewhere is 404 like one held nowhere; naming a signal outside the region is 403
``outside-region``), the index operator's national officer for every region."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from vir.api.blocking import blocking
from vir.api.deps import EpochsDep, PrivacyServiceDep
from vir.api.problems import problem_responses
from vir.api.roles import PrivacyOfficer
from vir.api.schemas import (
    SIGNAL_ID_PATTERN,
    PseudonymIn,
    TimestampOut,
    decode_pseudonym,
    timestamp,
)
from vir.api.strict import StrictRoute
from vir.domain.lifecycle import ErasureKind
from vir.services.epochs import Arriving
from vir.services.views import UninformedSignal

router = APIRouter(prefix="/v1/privacy", tags=["privacy officer"], route_class=StrictRoute)
COMMON = (400, 401, 403, 413, 422)
PDF = "application/pdf"


class ErasureIn(PseudonymIn):
    kind: ErasureKind = Field(description="erasure (art. 17), objection (art. 21), correction")
    signals: list[Annotated[str, Field(pattern=SIGNAL_ID_PATTERN)]] | None = Field(
        default=None, max_length=100, description="only these signal ids; default: all"
    )


class ErasedOut(BaseModel):
    erased: list[str] = Field(description="ids of the signals erased or destroyed")


class OfficerOrganisationOut(BaseModel):
    oin: str
    name: str
    category: str


class UninformedItemOut(BaseModel):
    signal_id: str
    organisation: OfficerOrganisationOut
    registered_at: TimestampOut
    days: int = Field(description="days since the signal was registered")

    @classmethod
    def of(cls, item: UninformedSignal) -> UninformedItemOut:
        org = item.organisation
        return cls(
            signal_id=item.signal_id,
            organisation=OfficerOrganisationOut(oin=org.oin, name=org.name, category=org.category),
            registered_at=timestamp(item.registered_at),
            days=item.days,
        )


class UninformedOut(BaseModel):
    items: list[UninformedItemOut]


def _person(body: PseudonymIn, epochs: EpochsDep) -> Arriving:
    """The person's pseudonym and its epoch, converted to the stored epoch by the service
    inside its transaction; an epoch that is not accepted at all is refused here."""
    person = decode_pseudonym(body.person, "person")
    epochs.convert(body.epoch, [person])  # 422 naming `epoch` before any lock is taken
    return Arriving(body.epoch, person)


@router.post(
    "/access",
    operation_id="getSubjectAccess",
    responses={
        200: {
            "description": "everything held on the pseudonym (JSON, or a Dutch PDF)",
            "content": {PDF: {}},
        },
        **problem_responses(*COMMON, 404, 429),
    },
)
async def access(
    body: PseudonymIn,
    caller: PrivacyOfficer,
    epochs: EpochsDep,
    privacy: PrivacyServiceDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Data-subject access (GDPR art. 15), of the officer's region. `Accept: application/pdf`
    gives the Dutch PDF."""
    person = _person(body, epochs)
    report: dict[str, Any] = await run_in_threadpool(privacy.access, caller, person)
    if accept is not None and PDF in accept:
        # Imported when first asked for: matplotlib and fpdf2 are slow to load.
        from vir.reports.access_pdf import render_access_report

        pdf = await run_in_threadpool(render_access_report, report)
        return Response(
            pdf,
            media_type=PDF,
            headers={"Content-Disposition": 'attachment; filename="inzage.pdf"'},
        )
    return JSONResponse(report)


@router.post(
    "/erasure",
    response_model=ErasedOut,
    operation_id="eraseSignals",
    responses=problem_responses(*COMMON, 404, 429),
)
@blocking
def erase(
    body: ErasureIn,
    caller: PrivacyOfficer,
    epochs: EpochsDep,
    privacy: PrivacyServiceDep,
) -> ErasedOut:
    """Execute an erasure, objection or correction request in the officer's region: erased,
    never archived."""
    person = _person(body, epochs)
    return ErasedOut(erased=privacy.erase(caller, person, body.kind, body.signals))


@router.post(
    "/deaths",
    response_model=ErasedOut,
    operation_id="registerDeath",
    responses=problem_responses(*COMMON, 404, 429),
)
@blocking
def deceased(
    body: PseudonymIn,
    caller: PrivacyOfficer,
    epochs: EpochsDep,
    privacy: PrivacyServiceDep,
) -> ErasedOut:
    """A death notice: every active and archived signal on the person is erased, in every
    region; the answer lists those of the officer's region (404 when it held none)."""
    person = _person(body, epochs)
    return ErasedOut(erased=privacy.deceased(caller, person))


@router.get(
    "/uninformed",
    response_model=UninformedOut,
    operation_id="listUninformedSignals",
    responses=problem_responses(*COMMON),
)
@blocking
def uninformed(caller: PrivacyOfficer, privacy: PrivacyServiceDep) -> UninformedOut:
    """Signals of the officer's region's organisations whose information duty is
    unconfirmed past the term (``VIR_INFORMATION_DUTY_DAYS``)."""
    return UninformedOut(items=[UninformedItemOut.of(i) for i in privacy.uninformed(caller)])
