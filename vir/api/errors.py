"""One table from the error tree to problem+json (RFC 9457), and the handlers that use it.

Validation errors name the offending field but never repeat the value that was
sent: a rejected element may be a pseudonym, and messages end up in logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vir.api.deps import services_of
from vir.api.identity import claim_of, endpoint_name
from vir.api.problems import PROBLEM_JSON as PROBLEM_JSON  # one definition, re-exported
from vir.domain import errors as e
from vir.services.refusals import reason_code
from vir.services.rekey import RekeyBlocked

TYPE_PREFIX = "urn:vir:problem:"


@dataclass(frozen=True)
class ProblemKind:
    status: int
    slug: str
    title: str


# Most specific first: lookup walks the exception's MRO and takes the first hit.
PROBLEMS: dict[type[e.VirError], ProblemKind] = {
    e.InvalidElement: ProblemKind(422, "invalid-element", "Invalid group element"),
    e.InputError: ProblemKind(422, "invalid-input", "Invalid input"),
    e.NoClientCertificate: ProblemKind(
        401, "client-certificate-required", "Client certificate required"
    ),
    e.CertificateNotValidNow: ProblemKind(
        401, "certificate-not-valid-now", "Certificate expired or not yet valid"
    ),
    e.CertificateNotForClientAuth: ProblemKind(
        401, "certificate-not-for-client-auth", "Not a client certificate"
    ),
    e.ForwardedCertificateNotTrusted: ProblemKind(
        401, "forwarded-certificate-not-trusted", "Client-Cert header from an untrusted peer"
    ),
    e.TokenRefused: ProblemKind(401, "invalid-token", "Invalid access token"),
    e.AuthenticationError: ProblemKind(401, "unauthenticated", "Not authenticated"),
    e.UnknownOrganisation: ProblemKind(403, "unknown-organisation", "Unknown organisation"),
    e.UnknownCertificate: ProblemKind(403, "unknown-certificate", "Unknown certificate"),
    e.CertificateRevoked: ProblemKind(403, "certificate-revoked", "Certificate revoked"),
    e.NotPermitted: ProblemKind(403, "not-permitted", "Not permitted"),
    e.OutsideRegion: ProblemKind(403, "outside-region", "Outside your region"),
    e.AccessDenied: ProblemKind(403, "forbidden", "Forbidden"),
    e.NotFound: ProblemKind(404, "not-found", "Not found"),
    e.Conflict: ProblemKind(409, "conflict", "Conflict"),
    # The same problem type; the answer names the organisation's signal on the person.
    e.SecondSignalOnPerson: ProblemKind(409, "conflict", "Conflict"),
    # Raised by `vir keys rekey`, never by a request; listed so that every error has one.
    RekeyBlocked: ProblemKind(409, "rekey-blocked", "Rekey blocked"),
    e.RateLimited: ProblemKind(429, "rate-limited", "Too many requests"),
    e.CryptoError: ProblemKind(422, "crypto", "Cryptographic operation failed"),
    e.ConfigurationError: ProblemKind(500, "configuration", "Service misconfigured"),
    e.WriteNotCommitted: ProblemKind(503, "not-committed", "Not stored, try again"),
    e.LogInconsistent: ProblemKind(500, "audit-log-inconsistent", "Audit log inconsistent"),
    e.VirError: ProblemKind(500, "internal", "Internal error"),
}


# The database did not answer: driver errors of that kind (not a constraint or a bug).
DATABASE_DOWN: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
DATABASE_UNAVAILABLE = ProblemKind(503, "database-unavailable", "Database unavailable")
DATABASE_RETRY_AFTER = 5  # seconds, as /ready's

# A body that is not JSON (the application's parser says so, or vir.api.limits finds it
# is not UTF-8): not a field's fault, so no field is named.
MALFORMED_JSON = ProblemKind(400, "malformed-json", "Malformed JSON")


def problem_kind(error: e.VirError) -> ProblemKind:
    for klass in type(error).__mro__:
        if klass in PROBLEMS:
            return PROBLEMS[klass]
    raise LookupError(type(error).__name__)  # unreachable: VirError is in the table


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail}
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# A name the client sent (an unknown field, a query parameter) is repeated in an answer
# only if it has the shape of vir's own names: otherwise a key such as "bsn 999999990"
# or a pseudonym would come back in the error (and in anything that logs errors).
_SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}\Z")
# At most this many fields are named in one answer: a body of 60,000 unknown keys does
# not get a 4 MB answer.
MAX_NAMED_FIELDS = 20


def safe_name(name: object) -> str:
    """``name`` quoted if it has the shape of a field name, else a stand-in."""
    text = str(name)
    return f'"{text}"' if _SAFE_NAME.match(text) else "(a name that is not a field's)"


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        if part.isdigit():
            path += f"[{part}]"
            continue
        if not _SAFE_NAME.match(part):
            part = "?"
        path += f".{part}" if path else part
    return path or "body"


def vir_error_response(error: e.VirError) -> JSONResponse:
    kind = problem_kind(error)
    headers = None
    if isinstance(error, e.RateLimited):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, e.WriteNotCommitted):
        headers = {"Retry-After": "1"}  # nothing was stored: the same request may be sent again
    elif isinstance(error, e.TokenRefused):
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}  # RFC 6750
    extra: dict[str, Any] = {}
    if isinstance(error, e.SecondSignalOnPerson):
        extra["existing_local_ref"] = error.local_ref
    if isinstance(error, e.InputError):
        extra["errors"] = [{"field": error.field, "message": error.detail}]
        detail = f"{error.field}: {error.detail}"
    else:
        detail = error.detail
    return problem_response(kind.status, kind.slug, kind.title, detail, headers, **extra)


def validation_response(error: RequestValidationError) -> JSONResponse:
    problems = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            kind = MALFORMED_JSON
            # The parser's reason is one of its fixed sentences or vir.api.strict's:
            # never a part of the body.
            reason = str(item.get("ctx", {}).get("error", "")).strip()
            return problem_response(
                kind.status,
                kind.slug,
                kind.title,
                "the request body is not valid JSON" + (f": {reason}" if reason else ""),
            )
        # pydantic's "input" and "ctx" may hold the rejected value: never passed on.
        problems.append(
            {
                "field": _field_path(tuple(item.get("loc", ()))),
                "message": str(item.get("msg", "invalid")),
            }
        )
    more = len(problems) - MAX_NAMED_FIELDS
    if more > 0:
        problems = problems[:MAX_NAMED_FIELDS]
    fields = ", ".join(p["field"] for p in problems) + (f" and {more} more" if more > 0 else "")
    return problem_response(
        422, "invalid-input", "Invalid input", f"invalid field(s): {fields}", errors=problems
    )


def record_refusal(request: Request, reason: str) -> None:
    """Every refused request on the API (not /health, not the docs) is accounted for: in
    the audit log, per key and minute with a count (``vir.services.refusals``), and in
    the metrics. A refused item of a batch is accounted for the same way."""
    if not request.url.path.startswith("/v1/"):
        return
    services = services_of(request)
    peer = request.client.host if request.client is not None else None
    recorded = services.refusals.record(claim_of(request), endpoint_name(request), reason, peer)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.refused_request(reason, recorded)


def install(app: FastAPI) -> None:
    async def on_vir_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, e.VirError)
        await run_in_threadpool(record_refusal, request, reason_code(error))
        return vir_error_response(error)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        await run_in_threadpool(record_refusal, request, "invalid_input")
        return validation_response(error)

    async def on_http(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "Error")
        detail = error.detail if isinstance(error.detail, str) else title
        return problem_response(
            error.status_code,
            f"http-{error.status_code}",
            title,
            detail,
            dict(error.headers) if error.headers else None,
        )

    async def on_database_down(_request: Request, _error: Exception) -> JSONResponse:
        # The database did not answer (a connection refused or lost, the pool exhausted,
        # SQLite busy past its wait): the service's state, not the request's fault, so
        # 503 with Retry-After, as /ready says; never the driver's text (it may quote
        # the statement's values).
        return problem_response(
            DATABASE_UNAVAILABLE.status,
            DATABASE_UNAVAILABLE.slug,
            DATABASE_UNAVAILABLE.title,
            "the database did not answer; send the request again later (a registration "
            "or withdrawal repeated with the same content is safe)",
            {"Retry-After": str(DATABASE_RETRY_AFTER)},
        )

    async def on_unexpected(_request: Request, _error: Exception) -> JSONResponse:
        # A bug, not a refusal: the answer is still problem+json, and says nothing about
        # the exception (the server logs it, Starlette re-raises it after this answer).
        return problem_response(
            500, "internal", "Internal error", "the request could not be handled"
        )

    app.add_exception_handler(e.VirError, on_vir_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for unavailable in DATABASE_DOWN:
        app.add_exception_handler(unavailable, on_database_down)
    app.add_exception_handler(Exception, on_unexpected)
