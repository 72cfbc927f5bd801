"""``/v1/address-exclusions``: institutional addresses that never make household matches.

Kept by a municipality's address officer with their own client: the client
pseudonymises the address at the key holder and submits only the pseudonym with a
label (``vir-client address exclude``). The index stores the pseudonym and the label,
never the address; it has no key to make a pseudonym itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StrictInt, StringConstraints, field_validator
from starlette.concurrency import run_in_threadpool

from vir.api.blocking import blocking
from vir.api.deps import ClockDep, DatabaseDep, EpochsDep
from vir.api.problems import problem_responses
from vir.api.roles import AddressOfficer
from vir.api.schemas import Element, Strict, TimestampOut, decode_pseudonym, timestamp
from vir.api.strict import StrictRoute
from vir.domain.addresses import check_label
from vir.domain.errors import InputError
from vir.services import addresses
from vir.services.epochs import Arriving

router = APIRouter(prefix="/v1", tags=["addresses"], route_class=StrictRoute)

# What the address is ("Blijf-van-mijn-lijfhuis Rotterdam-Zuid"): letters, digits, spaces
# and a little punctuation, and never eight or more digits without a letter between them
# (no BSN, no phone number, however spaced: check_label).
Label = Annotated[str, StringConstraints(pattern=r"^[\w .,'()&/-]{1,100}$")]


class ExcludedAddressIn(Strict):
    epoch: StrictInt = Field(ge=1, description="key epoch the pseudonym was made under")
    address: Element = Field(description="pseudonym of the address (nl-address:...)")


class ExclusionIn(ExcludedAddressIn):
    label: Label = Field(
        description="what the address is, e.g. a shelter; no personal data (never eight or "
        "more digits without a letter between them, however spaced)"
    )

    @field_validator("label")
    @classmethod
    def _label(cls, label: str) -> str:
        try:
            return check_label(label)
        except InputError as error:
            raise ValueError(error.detail) from None


class ExclusionOut(BaseModel):
    label: str
    created_at: TimestampOut


class ExclusionsOut(BaseModel):
    items: list[ExclusionOut] = Field(description="oldest first; pseudonyms are never shown")


@router.post(
    "/address-exclusions",
    status_code=204,
    operation_id="excludeAddress",
    responses=problem_responses(400, 401, 403, 409, 413, 422),
)
async def exclude_address(
    body: ExclusionIn, caller: AddressOfficer, db: DatabaseDep, clock: ClockDep, epochs: EpochsDep
) -> Response:
    """Put an address on the exclusion list; a household match through it ends."""
    address = decode_pseudonym(body.address, "address")
    epochs.convert(body.epoch, [address])  # 422 naming `epoch` before any lock is taken
    await run_in_threadpool(
        addresses.exclude,
        db,
        Arriving(body.epoch, address),
        body.label,
        clock(),
        organisation=caller.oin,
        certificate=caller.certificate,
    )
    return Response(status_code=204)


@router.delete(
    "/address-exclusions",
    status_code=204,
    operation_id="includeAddress",
    responses=problem_responses(400, 401, 403, 404, 413, 422),
)
async def include_address(
    body: ExcludedAddressIn,
    caller: AddressOfficer,
    db: DatabaseDep,
    clock: ClockDep,
    epochs: EpochsDep,
) -> Response:
    """Take an address off the exclusion list; household matching through it resumes.

    The pseudonym travels in the body, never in the query: a URL ends up in access logs.
    Its members are told of the household match as of any new match; 404 when the
    address is not on the list."""
    address = decode_pseudonym(body.address, "address")
    epochs.convert(body.epoch, [address])  # 422 naming `epoch` before any lock is taken
    await run_in_threadpool(
        addresses.include,
        db,
        Arriving(body.epoch, address),
        clock(),
        organisation=caller.oin,
        certificate=caller.certificate,
    )
    return Response(status_code=204)


@router.get(
    "/address-exclusions",
    response_model=ExclusionsOut,
    operation_id="listAddressExclusions",
    responses=problem_responses(401, 403),
)
@blocking
def list_exclusions(caller: AddressOfficer, db: DatabaseDep) -> ExclusionsOut:
    """The labels on the exclusion list, and when each was added."""
    return ExclusionsOut(
        items=[
            ExclusionOut(label=label, created_at=timestamp(created))
            for label, created in addresses.listing(db)
        ]
    )
