"""Veilig Thuis: consulting the index (a young person or a household) and telling the
reporters it found where its involvement stands (docs/api.md, "Veilig Thuis")."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from vir.api.blocking import blocking
from vir.api.deps import ConsultationServiceDep, EpochsDep
from vir.api.problems import problem_responses
from vir.api.roles import VeiligThuis
from vir.api.schemas import (
    SIGNAL_ID_PATTERN,
    Element,
    ParticipantOut,
    Strict,
    decode_pseudonym,
)
from vir.api.strict import StrictRoute
from vir.domain.errors import InputError
from vir.domain.feedback import FEEDBACK_DAYS, FeedbackCode
from vir.services.consultations import Consultation, Form, Involvement, Purpose
from vir.services.epochs import Arriving

router = APIRouter(prefix="/v1", tags=["consultations"], route_class=StrictRoute)
COMMON = (400, 401, 403, 413, 422)


class ConsultationIn(Strict):
    # Exactly one of person and parent: said in the document too, for generated clients.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["person"]}, {"required": ["parent"]}]},
    )

    epoch: StrictInt = Field(ge=1, description="key epoch the pseudonym was made under")
    person: Element | None = Field(
        default=None, description="pseudonym of the young person (the person form)"
    )
    parent: Element | None = Field(
        default=None,
        description="instead of `person`: pseudonym of a parent, for the household form "
        "(the reporters of every young person linked to that parent, and of the parent "
        "as a young person)",
    )
    purpose: Purpose = Field(description="why the index is consulted (a fixed list)")


class InvolvementOut(ParticipantOut):
    status: Literal["active", "archived"]

    @classmethod
    def of_involvement(cls, involvement: Involvement) -> InvolvementOut:
        shown = ParticipantOut.of(involvement.participant)
        return cls(
            organisation=shown.organisation,
            professional=shown.professional,
            coordinator=shown.coordinator,
            since=shown.since,
            archived_on=shown.archived_on,
            status=involvement.status,
        )


class ConsultationOut(BaseModel):
    consultation_id: str = Field(description="for feedback: POST .../{consultation_id}/feedback")
    purpose: str
    form: Literal["person", "household"] = Field(
        description="person: about `person`; household: about `parent`'s household"
    )
    involvement: list[InvolvementOut]

    @classmethod
    def of(cls, consultation: Consultation) -> ConsultationOut:
        return cls(
            consultation_id=consultation.id,
            purpose=consultation.purpose.value,
            form=consultation.form.value,
            involvement=[InvolvementOut.of_involvement(i) for i in consultation.involvement],
        )


class FeedbackIn(Strict):
    code: FeedbackCode = Field(
        description="taken_up, handed_over or closed; each at most once per consultation, "
        "nothing after closed"
    )


def _subject(body: ConsultationIn) -> tuple[str, str, Form]:
    """The pseudonym, its field and the form: exactly one of ``person`` and ``parent``."""
    if {"person", "parent"} <= body.model_fields_set:
        raise InputError("parent", "give person (a young person) or parent (a household), not both")
    if body.parent is not None:
        return body.parent, "parent", Form.HOUSEHOLD
    if body.person is None:
        raise InputError("person", "give person (a young person) or parent (a household)")
    return body.person, "person", Form.PERSON


@router.post(
    "/consultations",
    response_model=ConsultationOut,
    operation_id="consult",
    responses=problem_responses(*COMMON, 429),
)
@blocking
def consult(
    body: ConsultationIn,
    caller: VeiligThuis,
    epochs: EpochsDep,
    consultations: ConsultationServiceDep,
) -> ConsultationOut:
    """Veilig Thuis only: who is or was involved with a young person (`person`), or with
    the household of a parent (`parent`), without a signal."""
    text, field, form = _subject(body)
    pseudonym = decode_pseudonym(text, field)
    epochs.convert(body.epoch, [pseudonym])  # 422 naming `epoch` before any lock is taken
    return ConsultationOut.of(
        consultations.consult(caller, Arriving(body.epoch, pseudonym), body.purpose, form)
    )


@router.post(
    "/consultations/{consultation_id}/feedback",
    status_code=204,
    operation_id="giveSafetyFeedback",
    responses=problem_responses(*COMMON, 404, 409),
    description=f"Veilig Thuis only, on one of its own consultations of the last "
    f"{FEEDBACK_DAYS} days: every reporter it found whose signal is still active gets a "
    "`match.safety_feedback` notification with the code. Another organisation's "
    "consultation, an older one and one that does not exist are alike not found (404); "
    "a code given before, or any after `closed`, is a conflict (409).",
)
@blocking
def give_feedback(
    consultation_id: Annotated[str, Path(pattern=SIGNAL_ID_PATTERN)],
    body: FeedbackIn,
    caller: VeiligThuis,
    consultations: ConsultationServiceDep,
) -> Response:
    """Tell the reporters a consultation found where Veilig Thuis's involvement stands."""
    consultations.feedback(caller, consultation_id, body.code)
    return Response(status_code=204)
