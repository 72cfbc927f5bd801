"""``GET /v1/functions``: the function codes a professional may give, for a dropdown."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from vir.api.identity import CurrentCaller
from vir.api.problems import problem_responses
from vir.api.strict import StrictRoute
from vir.domain import functions
from vir.domain.organisations import Category

router = APIRouter(prefix="/v1", tags=["signals"], route_class=StrictRoute)
REPORTING = tuple(c for c in Category if c.reports)
CATEGORY_PATTERN = "^(" + "|".join([*(c.value for c in Category), "all"]) + ")$"


class FunctionOut(BaseModel):
    code: str = Field(description="what `professional.function` takes")
    label: str = Field(description="the Dutch label shown to match partners")


class CategoryFunctionsOut(BaseModel):
    category: str
    functions: list[FunctionOut]


class FunctionsOut(BaseModel):
    categories: list[CategoryFunctionsOut] = Field(
        description="one entry per category asked for, functions in dropdown order"
    )


@router.get(
    "/functions",
    response_model=FunctionsOut,
    operation_id="listFunctions",
    responses=problem_responses(401, 403, 422),
)
async def list_functions(
    caller: CurrentCaller,
    category: Annotated[
        str | None,
        Query(
            pattern=CATEGORY_PATTERN,
            description="a category, or `all`; by default the caller's own (every "
            "reporting category for a caller whose organisation registers no signals)",
        ),
    ] = None,
) -> dict[str, Any]:
    """The fixed list of functions per organisation category: codes with Dutch labels.

    A signal's `professional.function` must be a code of the caller's category.
    """
    if category is None:
        own = caller.organisation.category
        wanted = (own,) if own.reports else REPORTING
    elif category == "all":
        wanted = REPORTING
    else:
        wanted = (Category(category),)
    return {
        "categories": [
            {"category": c.value, "functions": [f.as_dict() for f in functions.of_category(c)]}
            for c in wanted
        ]
    }
