"""Headers on every answer: the API version (Logius API Design Rules, /core/version-header)
and the security headers of the NL GOV profile.

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``): it only adds headers to
``http.response.start``, so streaming, exceptions and background tasks pass untouched.
It sits outside every other middleware, so refusals made before the routes run (body
too large, not found, problem+json from the error handlers) carry the headers too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The version of the wire contract (API-CONTRACT.md, v1), in full: major.minor.patch.
# Its major is the /v1 in every path; it is info.version of the OpenAPI document.
API_VERSION = "1.0.0"

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    # Every answer may carry personal data (signals, contact details, match partners)
    # or describe a refusal about it: no cache, shared or private, may keep it.
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"x-frame-options", b"DENY"),
    # The API serves JSON, text and PDF, never a page that loads anything.
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)

# Every answer's headers: the API version first, then the security headers.
API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"api-version", API_VERSION.encode("ascii")),
    *SECURITY_HEADERS,
)


class ResponseHeaders:
    """Adds ``API-Version`` and the security headers to every HTTP answer that does not
    set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = API_HEADERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((n, v) for n, v in self.headers if n not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
