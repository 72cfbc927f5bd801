"""Wire shapes shared by several routes (API-CONTRACT.md). Requests refuse unknown fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from vir.crypto import oprf
from vir.domain import local_ref
from vir.domain.contact import (
    MAX_EMAIL_CHARS,
    MAX_NAME_CHARS,
    email_address,
    person_name,
    phone_number,
)
from vir.domain.dates import DATE_PATTERN, parse_digits, parse_iso_date
from vir.domain.encoding import b64url_decode
from vir.domain.errors import InputError, InvalidElement
from vir.domain.feedback import FeedbackCode
from vir.domain.functions import CODE_PATTERN, CODES, check_code, label
from vir.domain.intake import check_epoch as check_epoch  # the one epoch rule
from vir.domain.signals import Professional
from vir.services.views import MatchView, Participant
from vir.store.audit_log import rfc3339

# 32 bytes in unpadded base64url are exactly 43 characters.
ELEMENT_PATTERN = r"^[A-Za-z0-9_-]{43}$"
LOCAL_REF_PATTERN = local_ref.LOCAL_REF_PATTERN
SIGNAL_ID_PATTERN = r"^[0-9a-f-]{36}$"
# A canonical, non-identity ristretto255 element (RFC 9497's test vector blinded element),
# so that the document's examples are accepted and generated clients can try the API.
ELEMENT_EXAMPLE = "YJoK5owVo89pA3ZkYTB-XIuy-V5-ZVDh_6Lcmd5RgDw"
Element = Annotated[
    str, StringConstraints(pattern=ELEMENT_PATTERN), Field(examples=[ELEMENT_EXAMPLE])
]
LocalRef = Annotated[str, StringConstraints(pattern=LOCAL_REF_PATTERN)]


def _checked(check: Callable[[str, str], str]) -> AfterValidator:
    """A domain check as a pydantic validator: the field's path comes from pydantic, the
    message from the domain (neither repeats the value)."""

    def validate(value: str) -> str:
        try:
            return check(value, "")
        except InputError as error:
            raise PydanticCustomError("invalid_contact", error.detail) from None

    return AfterValidator(validate)


# Contact details are the only personal data in clear; their shapes leave no room for notes
# (``domain/contact.py``). The patterns are what the OpenAPI document can say; the domain
# checks say the rest (word count, capitals, Latin script, phone prefix ...).
PersonName = Annotated[
    str,
    StringConstraints(max_length=MAX_NAME_CHARS, pattern=r"^[\p{L}\p{M}\p{Zs}.'\u2019\-]+$"),
    _checked(person_name),
    Field(
        description="the person's name: Latin letters (with accents), spaces, hyphens, "
        "apostrophes and dots; at most 6 words of at most 30 characters; every part "
        "capitalised except tussenvoegsels (van, de, der, 't, ...)",
        examples=["Anna van der Berg-de Wit"],
    ),
]
# What email_address accepts, as far as a pattern can say it (the local part's length
# and its number of pieces it checks itself): letters, digits, _ + - and dots between
# them before @; a domain of 2 to 5 labels, the last of letters only.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,4}[A-Za-z]{2,24}$"
)
Email = Annotated[
    str,
    StringConstraints(max_length=MAX_EMAIL_CHARS),
    _checked(email_address),
    Field(
        # In the OpenAPI document only: email_address checks it, with a message naming
        # what is wrong (tests/unit/api/test_email_pattern.py: the two agree).
        json_schema_extra={"pattern": EMAIL_PATTERN},
        description="an e-mail address: before @ at most 64 letters, digits, dots, "
        "underscores, plus signs or hyphens (dots between others, at most 6 pieces); "
        "a domain of 2 to 5 labels",
        examples=["a.dewit@school.example"],
    ),
]
Phone = Annotated[
    str,
    StringConstraints(pattern=r"^[+(0-9][0-9 ()\-]{5,19}$"),
    _checked(phone_number),
    Field(
        description="digits in groups (single space or hyphen between), one group in "
        "parentheses, starting with + or 0; 8 to 16 digits",
        examples=["010-1234567"],
    ),
]
Function = Annotated[
    str,
    StringConstraints(pattern=CODE_PATTERN),
    _checked(check_code),
    Field(
        description="a function code of the caller's organisation category "
        "(GET /v1/functions); never free text",
        json_schema_extra={"enum": list(CODES)},
        examples=["mentor"],
    ),
]
IsoDate = Annotated[str, StringConstraints(pattern=DATE_PATTERN)]


def _ascii_digits(value: object) -> object:
    """A query parameter's text must be digits (ASCII) alone: pydantic would also read
    ``1.0``, ``+1``, ``1_0`` and `` 1 `` as numbers."""
    return parse_digits(value) if isinstance(value, str) else value


# A whole number in the query string (pagination, tree sizes): digits only. Placed after
# the Query(...) of an ``Annotated[int, Query(...), DIGITS]``, where its bounds still
# show in the OpenAPI document as minimum and maximum.
DIGITS = BeforeValidator(_ascii_digits)
# In answers: formats declared (RFC 3339 full-date and date-time), for generated clients.
DateOut = Annotated[str, Field(json_schema_extra={"format": "date"})]
TimestampOut = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def decode_element(text: str, field: str) -> bytes:
    """The 32 bytes of ``text`` (canonical base64url), not yet checked as an element: the
    evaluator and the signal service check what they are given with ``is_valid_element``."""
    element = b64url_decode(text)
    if element is None:
        raise InvalidElement(field)
    return element


def decode_pseudonym(text: str, field: str) -> bytes:
    """A pseudonym from the wire: base64url of a canonical, non-identity element."""
    element = decode_element(text, field)
    if not oprf.is_valid_element(element):
        raise InvalidElement(field)
    return element


def parse_date(text: str, field: str) -> dt.date:
    try:
        return parse_iso_date(text)
    except ValueError:
        raise InputError(field, "not a valid YYYY-MM-DD date") from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PseudonymIn(Strict):
    """A person's pseudonym, made by the caller's client from the BSN (never the BSN)."""

    epoch: StrictInt = Field(ge=1, description="key epoch the pseudonym was made under")
    person: Element = Field(description="pseudonym of the person")


class ProfessionalIn(Strict):
    name: PersonName
    email: Email | None = None
    phone: Phone | None = None
    function: Function | None = None

    @model_validator(mode="after")
    def _reachable(self) -> ProfessionalIn:
        if self.email is None and self.phone is None:
            raise ValueError("give an email address or a phone number (or both)")
        return self


def timestamp(moment: dt.datetime) -> str:
    """A moment as answers show it: RFC 3339 in UTC, to the microsecond."""
    return rfc3339(moment)


class OrganisationOut(BaseModel):
    oin: str
    name: str


class ProfessionalOut(BaseModel):
    name: str
    email: str | None
    phone: str | None
    function: str | None = Field(description="the function code (GET /v1/functions)")
    function_label: str | None = Field(
        default=None, description="the function's Dutch label, e.g. 'Intern begeleider'"
    )

    @classmethod
    def of(cls, p: Professional) -> ProfessionalOut:
        return cls(
            name=p.name,
            email=p.email,
            phone=p.phone,
            function=p.function,
            function_label=label(p.function),
        )


class CoordinatorOut(BaseModel):
    name: str
    email: str | None
    phone: str | None

    @classmethod
    def of(cls, p: Professional | None) -> CoordinatorOut | None:
        return None if p is None else cls(name=p.name, email=p.email, phone=p.phone)


class ParticipantOut(BaseModel):
    organisation: OrganisationOut
    professional: ProfessionalOut
    coordinator: CoordinatorOut | None = Field(
        default=None, description="the organisation's coordinator, when it appointed one"
    )
    since: TimestampOut = Field(description="when this participant's signal was registered")
    archived_on: DateOut | None = Field(
        default=None, description="historical offers only: the day the signal was archived"
    )

    @classmethod
    def of(cls, p: Participant) -> ParticipantOut:
        return cls(
            organisation=OrganisationOut(oin=p.organisation.oin, name=p.organisation.name),
            professional=ProfessionalOut.of(p.professional),
            coordinator=CoordinatorOut.of(p.organisation.coordinator),
            since=timestamp(p.since),
            archived_on=p.archived_on.isoformat() if p.archived_on else None,
        )


class SafetyFeedbackOut(BaseModel):
    """What Veilig Thuis told the reporters a consultation found (match.safety_feedback)."""

    organisation: OrganisationOut = Field(description="the Veilig Thuis that consulted")
    code: FeedbackCode
    label: str = Field(description="the code's Dutch label")


class MatchOut(BaseModel):
    id: str
    kind: Literal["person", "household"]
    via: Literal["person", "parent", "address"]
    active: bool = Field(description="false once the match has ended")
    historical: bool = Field(
        default=False,
        description="true for an offer of archived signals (match.historical), made once",
    )
    safety_feedback: SafetyFeedbackOut | None = Field(
        default=None,
        description="match.safety_feedback only: Veilig Thuis and its code; the match's id "
        "is then the consultation's, and it has no participants",
    )
    participants: list[ParticipantOut] = Field(
        description="the other organisations involved; never the caller, never a pseudonym"
    )
    coordinator: ParticipantOut | None = Field(
        default=None,
        description="who coordinates the match (possibly the caller), chosen by the rules "
        "of the region of its earliest signal; null once the match ended or left",
    )

    @classmethod
    def of(cls, view: MatchView) -> MatchOut:
        return cls(
            id=view.id,
            kind=view.kind,
            via=view.via_name,
            active=view.active,
            historical=view.historical,
            participants=[ParticipantOut.of(p) for p in view.participants],
            coordinator=None if view.coordinator is None else ParticipantOut.of(view.coordinator),
        )
