"""Wire shapes shared by several routes (API-CONTRACT.md). Requests refuse unknown fields."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from vir.domain.encoding import b64url_decode
from vir.domain.errors import InputError, InvalidElement

# 32 bytes in unpadded base64url are exactly 43 characters.
ELEMENT_PATTERN = r"^[A-Za-z0-9_-]{43}$"
LOCAL_REF_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
Element = Annotated[str, StringConstraints(pattern=ELEMENT_PATTERN)]
LocalRef = Annotated[str, StringConstraints(pattern=LOCAL_REF_PATTERN)]
# Contact details are the only personal data in clear; their shapes leave no room for notes.
PersonName = Annotated[str, StringConstraints(pattern=r"^\p{L}[\p{L} .'\-]{0,99}$")]
Email = Annotated[
    str,
    StringConstraints(
        max_length=254, pattern=r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,185}\.[A-Za-z]{2,24}$"
    ),
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()\-]{5,19}$")]
Function = Annotated[str, StringConstraints(pattern=r"^\p{L}[\p{L}0-9 .'()/\-]{0,59}$")]
IsoDate = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


def decode_element(text: str, field: str) -> bytes:
    element = b64url_decode(text)
    if element is None:
        raise InvalidElement(field)
    return element


def parse_date(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(field, "not a valid YYYY-MM-DD date") from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class OrganisationOut(BaseModel):
    oin: str
    name: str


class ProfessionalOut(BaseModel):
    name: str
    email: str | None
    phone: str | None
    function: str | None


class ParticipantOut(BaseModel):
    organisation: OrganisationOut
    professional: ProfessionalOut
    since: str = Field(description="RFC 3339: when this participant's signal was registered")


class MatchOut(BaseModel):
    id: str
    kind: Literal["person", "household"]
    via: Literal["person", "parent", "address"]
    active: bool = Field(description="false once the match has ended")
    participants: list[ParticipantOut] = Field(
        description="the other organisations involved; never the caller, never a pseudonym"
    )
