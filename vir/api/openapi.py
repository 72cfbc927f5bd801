"""The OpenAPI document vir serves, made to the Logius API Design Rules (ADR 2.x).

FastAPI writes the paths and schemas from the routes; ``amend`` adds what the rules
and a generated client need and FastAPI cannot say by itself: ``servers``, a contact,
the ``mutualTLS`` security scheme on every /v1 operation, ``API-Version`` on every
answer, the problem+json schema for every error answer including 500 and 503, and
``Retry-After`` on 429 and 503. Lint: ``make spectral`` (.ci/spectral.yaml).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from vir.api.blocking import blocking
from vir.api.headers import API_VERSION
from vir.api.problems import (
    PROBLEM_JSON,
    PROBLEM_REF,
    RETRY_AFTER_STATUSES,
    Problem,
    header_ref,
    problem_response,
)

SERVERS = [{"url": "/", "description": "the service that serves this document"}]
MUTUAL_TLS = "mutualTLS"
# Every /v1 operation may be refused as malformed HTTP before a route runs (400: e.g. a
# Content-Length that is no number, vir.api.limits), fail unexpectedly (500) or find its
# write (an audit entry, at least) not committed (503).
ALWAYS = (400, 500, 503)
HEADERS: dict[str, dict[str, Any]] = {
    "API-Version": {
        "description": "the full version of the API (major.minor.patch); the major is "
        "the /v1 of the path",
        "required": True,
        "schema": {"type": "string", "example": API_VERSION},
    },
    "Retry-After": {
        "description": "seconds to wait before the same request is sent again",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
}
_WORD = re.compile(r"[A-Za-z0-9]+")


def operation_id(route: APIRoute) -> str:
    """For a route without an explicit ``operation_id``: method and name, camelCase
    (``GET health`` → ``getHealth``)."""
    method = sorted(route.methods or {"GET"})[0].lower()
    words = _WORD.findall(route.name)
    return method + "".join(w[:1].upper() + w[1:] for w in words)


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {**defs, "Problem": schema}


def amend(spec: dict[str, Any], contact: dict[str, str]) -> dict[str, Any]:
    """Add to the FastAPI-generated ``spec`` (in place) what the ADR ask; returns it.
    ``contact``: the operator's (VIR_API_CONTACT_*), whom a vendor asks about the API."""
    spec["servers"] = SERVERS
    spec["info"]["contact"] = contact
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {}).update(_problem_schemas())
    components["headers"] = HEADERS
    components["securitySchemes"] = {
        MUTUAL_TLS: {
            "type": "mutualTLS",
            "description": "a client certificate of the organisation (PKIoverheid); its "
            "subject's serialNumber is the organisation's OIN",
        }
    }
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if path.startswith("/v1/"):
                operation["security"] = [{MUTUAL_TLS: []}]
                for always in ALWAYS:
                    responses.setdefault(str(always), problem_response(always))
            if "requestBody" in operation:
                # vir.api.limits: a body of any other Content-Type than JSON.
                responses.setdefault("415", problem_response(415))
            for status, response in responses.items():
                if status[:1] in "45":
                    # FastAPI's own 422 (HTTPValidationError, application/json) where a
                    # route did not document one: vir answers every error as a Problem.
                    response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
                headers = response.setdefault("headers", {})
                headers["API-Version"] = header_ref("API-Version")
                if status.isdigit() and int(status) in RETRY_AFTER_STATUSES:  # sent on each
                    headers["Retry-After"] = header_ref("Retry-After")
    schemas = components["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def install(app: FastAPI, contact: dict[str, str]) -> None:
    """Serve the amended document at /openapi.json (FastAPI's) and at /v1/openapi.json."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = amend(generate(), contact)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/v1/openapi.json", include_in_schema=False)
    @blocking  # the first call makes the document: not on the event loop
    def openapi_v1() -> JSONResponse:
        return JSONResponse(openapi())
