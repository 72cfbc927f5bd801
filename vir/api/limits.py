"""Refuse oversized, malformed or too deeply nested request bodies before anything parses them.

``BodySizeLimit`` reads the whole body first (it is small: ``VIR_MAX_BODY_BYTES``, 64 KiB
by default) and only then calls the application, so a refusal never depends on how far
the application got: a declared ``Content-Length`` over the limit, or a chunked body that
grows past it, is 413; a ``Content-Length`` that is not one decimal number is 400; JSON
nested deeper than ``MAX_JSON_DEPTH`` is 400 before ``json`` recurses into it.

The problem kinds of the HTTP layer live here too: the embedded server's protocol
(``vir.server.tls``) answers with them before the application runs.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vir.api.errors import PROBLEM_JSON, TYPE_PREFIX, ProblemKind

BODY_TOO_LARGE = ProblemKind(413, "body-too-large", "Request body too large")
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
    """Whether the body would be parsed as JSON: no Content-Type, or application/json or
    application/*+json (what FastAPI parses)."""
    values = [value for name, value in headers if name == b"content-type"]
    if not values:
        return True
    media = values[0].split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class BodySizeLimit:
    """Reads and checks the request body (see the module docstring), then hands it on."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        declared = [value for name, value in headers if name == b"content-length"]
        # bytes.isdigit is ASCII-only: no sign, no spaces, no other scripts' digits.
        if len(declared) > 1 or (declared and not declared[0].isdigit()):
            await _refuse(send, MALFORMED_HTTP, "Content-Length is not one decimal number")
            return
        if declared and int(declared[0]) > self.max_bytes:
            await _refuse(send, BODY_TOO_LARGE, self._too_large)
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the application sees that as it would
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # A chunked body (no Content-Length) that grew past the limit.
                await _refuse(send, BODY_TOO_LARGE, self._too_large)
                return
            if not message.get("more_body", False):
                break
        if messages[-1]["type"] == "http.request":
            body = b"".join(m.get("body", b"") for m in messages)
            if _is_json(headers) and json_too_deep(body):
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

    @property
    def _too_large(self) -> str:
        return f"request bodies are limited to {self.max_bytes} bytes"


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
