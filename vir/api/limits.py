"""Refuse oversized, malformed or too deeply nested request bodies before anything parses them.

``BodySizeLimit`` reads the whole body first (it is small: ``VIR_MAX_BODY_BYTES``, 64 KiB
by default; a route may have a larger limit of its own, as ``POST /v1/signals/batch``
has ``VIR_MAX_BATCH_BODY_BYTES``) and only then calls the application, so a refusal
never depends on how far the application got: a declared ``Content-Length`` over the
limit, or a chunked body that grows past it, is 413; a ``Content-Length`` that is not
one decimal number is 400; a body with a ``Content-Type`` other than JSON, or none, is 415 (vir's
APIs take JSON only: the portal, which takes HTML forms, is another application); a
JSON body that is not UTF-8 (RFC 8259 §8.1) is 400 ``malformed-json``, as any other
body that is no JSON is; JSON nested deeper than ``MAX_JSON_DEPTH`` is 400 before
``json`` recurses into it.

The problem kinds of the HTTP layer live here too: the embedded server's protocol
(``vir.server.tls``) answers with them before the application runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vir.api.errors import MALFORMED_JSON, PROBLEM_JSON, TYPE_PREFIX, ProblemKind

BODY_TOO_LARGE = ProblemKind(413, "body-too-large", "Request body too large")
UNSUPPORTED_MEDIA_TYPE = ProblemKind(415, "unsupported-media-type", "Unsupported media type")
UNSUPPORTED_MEDIA_TYPE_DETAIL = "request bodies are application/json"
NOT_UTF8_DETAIL = "the request body is not valid JSON: JSON is sent as UTF-8 (RFC 8259 §8.1)"
HEADERS_TOO_LARGE = ProblemKind(431, "headers-too-large", "Request header fields too large")
MALFORMED_HTTP = ProblemKind(400, "malformed-http", "Malformed HTTP request")
JSON_TOO_DEEP = ProblemKind(400, "json-too-deep", "JSON nested too deeply")
MALFORMED_HTTP_DETAIL = (
    "the request is not valid HTTP/1.1 (request line, header fields, Content-Length or "
    "Transfer-Encoding)"
)

# vir's deepest request body nests 4 levels; 32 leaves room for any schema change while
# keeping json (recursive, ~1000 frames) and pydantic far from their own limits.
MAX_JSON_DEPTH = 32

# A JSON string (escapes included) up to its closing quote, or to the end of an unclosed
# one: every match succeeds at its first try, so stripping strings is linear in the body.
_JSON_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*(?:"|\\?\Z)', re.DOTALL)
# Everything but brackets is dropped, and braces become square brackets: only nesting counts.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")


def problem_body(kind: ProblemKind, detail: str) -> bytes:
    """The problem+json document (RFC 9457) for ``kind``."""
    return json.dumps(
        {
            "type": TYPE_PREFIX + kind.slug,
            "title": kind.title,
            "status": kind.status,
            "detail": detail,
        },
        separators=(",", ":"),  # as the application's own problem+json answers
    ).encode()


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects more than ``limit`` deep.

    Brackets inside strings do not count. For text that is not JSON the answer means
    little either way; the JSON parser refuses such text anyway.
    """
    # Cheap first: nesting deeper than the limit needs more opening brackets than it.
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(_SQUARE, _NOT_BRACKETS)
    # Each pass removes the innermost pairs, so a pair is left after ``limit`` passes only
    # where arrays and objects nest deeper than ``limit``. Every pass runs in C.
    for _ in range(limit):
        if b"[]" not in brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return b"[]" in brackets


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the body is declared JSON: application/json or application/*+json. A body
    without a Content-Type is not: FastAPI would not parse it, and answer 422 "body:
    input should be a valid dictionary" as if the client had sent something else."""
    values = [value for name, value in headers if name == b"content-type"]
    if not values:
        return False
    media = values[0].split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class BodySizeLimit:
    """Reads and checks the request body (see the module docstring), then hands it on.

    ``max_bytes`` holds for every request but those ``larger`` names by method and path
    (``{"POST /v1/signals/batch": 1048576}``), which have their own limit.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        limit = self.larger.get(f"{scope.get('method')} {scope.get('path')}", self.max_bytes)
        declared = [value for name, value in headers if name == b"content-length"]
        # bytes.isdigit is ASCII-only: no sign, no spaces, no other scripts' digits.
        if len(declared) > 1 or (declared and not declared[0].isdigit()):
            await _refuse(send, MALFORMED_HTTP, "Content-Length is not one decimal number")
            return
        if declared and int(declared[0]) > limit:
            await _refuse(send, BODY_TOO_LARGE, _too_large(limit))
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the application sees that as it would
            received += len(message.get("body", b""))
            if received > limit:
                # A chunked body (no Content-Length) that grew past the limit.
                await _refuse(send, BODY_TOO_LARGE, _too_large(limit))
                return
            if not message.get("more_body", False):
                break
        if messages[-1]["type"] == "http.request":
            body = b"".join(m.get("body", b"") for m in messages)
            if body and not _is_json(headers):
                # Without this, FastAPI would not parse the body and answer 422 "body:
                # field required", as if the client had sent nothing.
                await _refuse(send, UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_MEDIA_TYPE_DETAIL)
                return
            if body and not _is_utf8(body):
                # json.loads would guess UTF-16 or UTF-32 from the first bytes and fail
                # with an error FastAPI answers as a bare "error parsing the body".
                await _refuse(send, MALFORMED_JSON, NOT_UTF8_DETAIL)
                return
            if json_too_deep(body):
                await _refuse(
                    send,
                    JSON_TOO_DEEP,
                    f"JSON in a request body may nest arrays and objects at most "
                    f"{MAX_JSON_DEPTH} deep",
                )
                return
            messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> str:
    return f"request bodies are limited to {limit} bytes"


async def _refuse(send: Send, kind: ProblemKind, detail: str) -> None:
    body = problem_body(kind, detail)
    await send(
        {
            "type": "http.response.start",
            "status": kind.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
