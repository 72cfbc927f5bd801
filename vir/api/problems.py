"""The problem+json schema and the response headers, for the OpenAPI document.

Error answers are documented under ``application/problem+json`` only (RFC 9457), with
``Problem`` as their schema, never under FastAPI's default ``application/json``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None
    existing_local_ref: str | None = Field(
        default=None,
        description="409 for a second active signal on the same young person: the "
        "organisation's own local_ref of the one it has",
    )


DESCRIPTIONS = {
    400: "Malformed request",
    401: "No valid client certificate",
    403: "Organisation or certificate not allowed",
    404: "Not found (or not yours)",
    409: "Conflicts with an existing signal",
    413: "Request body too large",
    415: "Request body not application/json",
    422: "Invalid field (named in the problem)",
    429: "Rate limited (see Retry-After)",
    500: "Internal error (nothing about it in the answer)",
    503: "Not stored, nothing changed: send the same request again (see Retry-After)",
}
# Statuses whose answers carry Retry-After (seconds).
RETRY_AFTER_STATUSES = frozenset({429, 503})


def header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def problem_response(status: int) -> dict[str, Any]:
    """One documented error answer: its description, problem+json body and headers."""
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in RETRY_AFTER_STATUSES:
        response["headers"] = {"Retry-After": header_ref("Retry-After")}
    return response


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: problem_response(status) for status in statuses}


def location_header(target: str) -> dict[str, Any]:
    """A ``Location`` response header pointing at ``target`` (an operation, for the reader)."""
    return {
        "description": f"where the new resource is: {target}",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    }
