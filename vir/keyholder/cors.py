"""CORS for the portal's pages, on ``POST /v1/oprf/evaluate`` only.

The portal's page calls the key holder from the person's browser with their access
token in the ``Authorization`` header (vir.keyholder.bearer). A browser lets a page
read an answer from another origin only when the answer names that origin; so the
key holder names it, exactly, for the portal's origins (``VIR_KEYHOLDER_PORTAL_ORIGINS``)
and for nobody else. No credentials: a cookie or client certificate of the browser
never authorises a cross-origin call (``Access-Control-Allow-Credentials`` is never
sent), the token in the header does.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin
for ``POST`` with no headers beyond ``authorization`` and ``content-type`` is
answered 204 with the grant; any other preflight is answered 403 without a CORS
header, so the browser does not send the request: a problem+json naming the header
that was refused (``cors-preflight-refused``), as every error of the API is.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vir.api.errors import PROBLEM_JSON, ProblemKind
from vir.api.headers import API_HEADERS
from vir.api.limits import problem_body
from vir.domain.errors import ConfigurationError

PATH = "/v1/oprf/evaluate"
ALLOWED_HEADERS = ("authorization", "content-type")
MAX_AGE_SECONDS = 600
# What the page's script may read of an answer besides the safelisted headers.
EXPOSED_HEADERS = "Retry-After, WWW-Authenticate, API-Version"
PREFLIGHT_REFUSED = ProblemKind(403, "cors-preflight-refused", "Cross-origin request refused")


def parse_origins(text: str) -> frozenset[str]:
    """``https://portal.example, https://127.0.0.1:8445``: exact origins (scheme, host,
    port; no path); ConfigurationError naming the setting for anything else."""
    origins = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        split = urlsplit(item)
        if (
            split.scheme != "https"
            or not split.hostname
            or split.path
            or split.query
            or split.fragment
            or "@" in split.netloc
            or item != f"{split.scheme}://{split.netloc}"
            or item.lower() != item
        ):
            raise ConfigurationError(
                "VIR_KEYHOLDER_PORTAL_ORIGINS: each entry is an origin such as "
                "https://portal.example or https://127.0.0.1:8445 (https, lower case, no "
                "path or trailing slash)"
            )
        origins.add(item)
    return frozenset(origins)


class PortalCors:
    """The ASGI middleware: preflights answered here, grants added to answers."""

    def __init__(self, app: ASGIApp, origins: frozenset[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(headers, origin, send)
            return
        if origin is None or origin not in self.origins:
            await self.app(scope, receive, send)
            return

        async def granting(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                answer["Access-Control-Allow-Origin"] = origin
                answer["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                answer.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, granting)

    async def _preflight(self, headers: Headers, origin: str | None, send: Send) -> None:
        refused = self._refused(headers, origin)
        answer: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")]
        if refused is None:
            assert origin is not None
            body = b""
            answer += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", b"POST"),
                (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
                (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
            ]
        else:
            # Never repeats what was sent: the header is named, its value is not.
            body = problem_body(PREFLIGHT_REFUSED, refused)
            answer += [*API_HEADERS, (b"content-type", PROBLEM_JSON.encode())]
        answer.append((b"content-length", str(len(body)).encode()))
        status = 204 if refused is None else PREFLIGHT_REFUSED.status
        await send({"type": "http.response.start", "status": status, "headers": answer})
        await send({"type": "http.response.body", "body": body})

    def _refused(self, headers: Headers, origin: str | None) -> str | None:
        """Why a preflight is refused, naming the header; None when it is granted."""
        if origin is None or origin not in self.origins:
            return "Origin: only the portal's origins may call this endpoint from a browser"
        if headers["access-control-request-method"] != "POST":
            return "Access-Control-Request-Method: only POST is allowed"
        requested = {
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        }
        if not requested <= set(ALLOWED_HEADERS):
            allowed = ", ".join(ALLOWED_HEADERS)
            return f"Access-Control-Request-Headers: only {allowed} are allowed"
        return None
