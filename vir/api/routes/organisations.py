"""Who takes part: the organisations connected in the caller's region (docs/api.md,
docs/categories.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from vir.api.blocking import blocking
from vir.api.deps import ClockDep, DatabaseDep
from vir.api.problems import problem_responses
from vir.api.roles import Reporter
from vir.api.schemas import DIGITS
from vir.api.strict import StrictRoute
from vir.reports.labels import category_label
from vir.services.directory import Connected, Directory, connected_organisations

router = APIRouter(prefix="/v1", tags=["organisation"], route_class=StrictRoute)


class ConnectedOut(BaseModel):
    name: str
    category: str = Field(description="the organisation category (docs/categories.md)")
    category_label: str = Field(description="its Dutch label, e.g. 'Jeugdhulp'")

    @classmethod
    def of(cls, found: Connected) -> ConnectedOut:
        return cls(
            name=found.name,
            category=found.category.value,
            category_label=category_label(found.category.value),
        )


class OrganisationsOut(BaseModel):
    region: str
    items: list[ConnectedOut]
    next: str | None = Field(description="cursor for `after`; null at the end")

    @classmethod
    def of(cls, directory: Directory) -> OrganisationsOut:
        return cls(
            region=directory.region,
            items=[ConnectedOut.of(c) for c in directory.items],
            next=None if directory.next is None else str(directory.next),
        )


@router.get(
    "/organisations",
    response_model=OrganisationsOut,
    operation_id="listOrganisations",
    responses=problem_responses(400, 401, 403, 413, 422),
)
@blocking
def list_organisations(
    caller: Reporter,
    db: DatabaseDep,
    clock: ClockDep,
    region: Annotated[
        str | None,
        Query(max_length=100, description="the caller's own region (the default); another: 403"),
    ] = None,
    after: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,6}$", description="opaque cursor: the `next` of the last page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500), DIGITS] = 100,
) -> OrganisationsOut:
    """The organisations connected to the index in the caller's region, by name: name
    and category only. For a reporting organisation's system and coordinator."""
    return OrganisationsOut.of(
        connected_organisations(db, clock, caller, region, int(after or 0), limit)
    )
