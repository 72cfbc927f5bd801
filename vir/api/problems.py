"""The problem+json schema, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed request",
        401: "No valid client certificate",
        403: "Organisation or certificate not allowed",
        404: "Not found (or not yours)",
        409: "Conflicts with an existing signal",
        413: "Request body too large",
        422: "Invalid field (named in the problem)",
        429: "Rate limited (see Retry-After)",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions[status],
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }
