"""Mutual TLS for the embedded server, and handing the verified certificate to the app.

uvicorn verifies client certificates but does not tell the application which one
was presented. ``TLSH11Protocol`` fills that gap in one place: once the TLS
handshake has completed, it reads the peer certificate from the connection and
adds it to every request's scope as the ASGI TLS extension
(``scope["extensions"]["tls"]["client_cert_chain"]``, PEM strings). Nothing a
client sends in HTTP can reach that key.

TLS policy: TLS 1.2 or newer, AEAD ciphers with forward secrecy only, and a
client certificate that chains to the configured CA. A certificate is
*optional* at the TLS layer so that ``/health`` and the OpenAPI document answer
without one and every other endpoint can refuse with a clear problem+json (and
an audit entry) instead of a bare handshake failure. The validity period is
checked by the application (``services.identity``), again so that an expired
certificate is refused with a clear error and recorded; a certificate from
another CA never completes the handshake. (OpenSSL refuses a certificate whose
ExtendedKeyUsage lacks clientAuth, but not one without any EKU, nor a CA:TRUE one:
``services.identity`` refuses those.)

HTTP limits, before the application runs: a request's head (request line and header
fields) may be ``MAX_HEAD_BYTES`` long and carry ``MAX_HEADER_FIELDS`` fields, else 431;
a request the parser cannot read (malformed Content-Length, Content-Length with
Transfer-Encoding, a broken request line) is 400. uvicorn answers those in plain text;
the protocol classes here answer problem+json like the application does, with an
``X-Request-Id`` (a new random UUID, also on the request's log line), and close the
connection.
"""

from __future__ import annotations

import asyncio
import http
import logging
import ssl
import uuid
from pathlib import Path
from typing import Any

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from vir import logs
from vir.api.errors import PROBLEM_JSON, ProblemKind
from vir.api.headers import API_HEADERS
from vir.api.limits import HEADERS_TOO_LARGE, MALFORMED_HTTP, MALFORMED_HTTP_DETAIL, problem_body

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HTTPTOOLS = True
except ImportError:  # pragma: no cover - httptools is a declared dependency
    HttpToolsProtocol = H11Protocol  # type: ignore[misc,assignment]
    HTTPTOOLS = False

# The request line and header fields together. 32 KiB: in proxy mode the RFC 9440
# Client-Cert header alone may take up to 16 KiB (vir.api.identity's cap; a real
# certificate takes 2-4 KiB), and the other headers of a back office need a few hundred
# bytes. uvicorn's httptools parser has no bound at all.
MAX_HEAD_BYTES = 32 * 1024
# Header fields per request; a back office sends about ten (Apache's default limit).
MAX_HEADER_FIELDS = 100

Refusal = tuple[ProblemKind, str]
_MALFORMED: Refusal = (MALFORMED_HTTP, MALFORMED_HTTP_DETAIL)
_HEAD_TOO_LARGE: Refusal = (
    HEADERS_TOO_LARGE,
    f"the request line and header fields are limited to {MAX_HEAD_BYTES} bytes",
)
_TOO_MANY_FIELDS: Refusal = (
    HEADERS_TOO_LARGE,
    f"a request may carry at most {MAX_HEADER_FIELDS} header fields",
)
_LOG = logging.getLogger("uvicorn.error")

# OpenSSL's X509_V_FLAG_NO_CHECK_TIME: chain and signature are still verified.
_NO_CHECK_TIME = 0x200000
_CIPHERS_TLS12 = "ECDHE+AESGCM:ECDHE+CHACHA20"


def server_context(
    cert: Path, key: Path, client_ca: Path, client_crl: Path | None = None
) -> ssl.SSLContext:
    """The embedded server's TLS context. With ``client_crl`` a revoked client certificate
    fails the handshake; the CRL is read here, at start: the application's own check
    (``services.identity``) is what makes a later revocation effective at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_CIPHERS_TLS12)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    context.load_verify_locations(cafile=str(client_ca))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= _NO_CHECK_TIME
    if client_crl is not None:
        context.load_verify_locations(cafile=str(client_crl))
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI TLS extension dict for a completed handshake, or None for plain TCP."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


def problem_response(
    refusal: Refusal,
    default_headers: list[tuple[bytes, bytes]] | None = None,
    request_id: str | None = None,
) -> bytes:
    """A complete HTTP/1.1 problem+json response that closes the connection, with
    ``X-Request-Id: request_id`` (a new random UUID when None)."""
    kind, detail = refusal
    body = problem_body(kind, detail)
    head = [f"HTTP/1.1 {kind.status} {http.HTTPStatus(kind.status).phrase}\r\n".encode()]
    head += [name + b": " + value + b"\r\n" for name, value in default_headers or []]
    # What ResponseHeaders adds to the app's answers: this one never reaches the app.
    head += [name + b": " + value + b"\r\n" for name, value in API_HEADERS]
    # What Observe adds to the app's answers (vir.api.metrics), in its format. Always a
    # new one: a request that could not be parsed has no header fields to take one from.
    head.append(b"x-request-id: " + (request_id or str(uuid.uuid4())).encode() + b"\r\n")
    head += [
        b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


def _refuse(transport: asyncio.Transport, refusal: Refusal, state: ServerState) -> None:
    kind = refusal[0]
    request_id = str(uuid.uuid4())
    # A fixed text per kind of refusal, without %-arguments (vir.logs fills in only safe
    # ones): nothing the client sent is logged. The log line carries the id the answer
    # does, so that the id a client quotes finds it.
    token = logs.REQUEST_ID.set(request_id)
    try:
        _LOG.warning(f"HTTP request refused before the application: {kind.status} {kind.slug}")
    finally:
        logs.REQUEST_ID.reset(token)
    transport.write(problem_response(refusal, state.default_headers, request_id))
    transport.close()


class CoalescedWrites:
    """A transport that gathers what one turn of the event loop writes and sends it as one.

    uvicorn writes a response's head and its body separately; on a TLS connection each
    write is its own TLS record and its own ``write`` system call (uvloop sends at once).
    Gathered, a small response is one record and one call. The bytes leave at the end of
    the same turn (``close`` sends them first), so nothing waits on a timer; once
    ``GATHER_LIMIT`` bytes are waiting they leave at once, so the transport's own flow
    control (which pauses the writer) still holds a large response back.
    """

    GATHER_LIMIT = 64 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._send)
        self._pending.append(bytes(data))
        self._size += len(self._pending[-1])
        if self._size >= self.GATHER_LIMIT:
            self._send()

    def _send(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._send()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Coalescing:
    """Mixin for a uvicorn HTTP protocol: its writes go through ``CoalescedWrites``."""

    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        gathered = CoalescedWrites(transport, self.loop)
        super().connection_made(gathered)  # type: ignore[misc]


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the parser wraps it."""


class LimitedHttpToolsProtocol(_Coalescing, HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools protocol with bounds on the request head and problem+json refusals.

    The head is fed to the parser at most ``MAX_HEAD_BYTES`` at a time and counted as it
    goes, so a header that never ends is refused after that many bytes, not buffered;
    the callbacks count the fields and their sizes exactly. (A pipelined request that
    begins inside one read is counted from the next read on: the callbacks still hold
    it to the limit, and what the parser buffered is bounded by that one read.)
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the next bytes belong to a request line or header fields
        self._head_bytes = 0  # raw bytes fed to the parser since the head began
        self._head_size = 0  # request target, field names and values so far
        self._fields = 0
        self._refusal: Refusal | None = None

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        while data:
            if self._in_head:
                # Never more than one byte past the limit: a head that long is refused
                # without the parser having buffered the rest.
                room = MAX_HEAD_BYTES + 1 - self._head_bytes
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            else:
                piece, data = data, b""
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserError:
                self._refuse(self._refusal or _MALFORMED)
                return
            except httptools.HttpParserUpgrade:
                # As uvicorn does: vir serves no WebSocket, so this only logs a warning.
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(_HEAD_TOO_LARGE)
                return

    def send_400_response(self, msg: str) -> None:
        self._refuse(self._refusal or _MALFORMED)

    def _refuse(self, refusal: Refusal) -> None:
        _refuse(self.transport, refusal, self.server_state)

    def _stop(self, refusal: Refusal) -> None:
        self._refusal = refusal
        raise _Refused()

    def on_message_begin(self) -> None:
        self._head_size = 0
        self._fields = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_HEAD_BYTES:
            self._stop(_HEAD_TOO_LARGE)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._fields > MAX_HEADER_FIELDS:
            self._stop(_TOO_MANY_FIELDS)
        if len(self.url) + self._head_size > MAX_HEAD_BYTES:
            self._stop(_HEAD_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # Whatever follows is the next request's head, counted from zero.
        self._in_head = True
        self._head_bytes = 0


class _LimitedConnection(h11.Connection):
    """h11's connection, refusing more than ``MAX_HEADER_FIELDS`` fields and Content-Length
    with Transfer-Encoding, and remembering why it refused (its head-size limit is
    ``max_incomplete_event_size``)."""

    refusal: Refusal | None = None

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as error:
            self.refusal = _HEAD_TOO_LARGE if error.error_status_hint == 431 else _MALFORMED
            raise
        if isinstance(event, h11.Request):
            if len(event.headers) > MAX_HEADER_FIELDS:
                self.refusal = _TOO_MANY_FIELDS
                raise h11.RemoteProtocolError("too many header fields", error_status_hint=431)
            names = {name for name, _ in event.headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                # h11 lets Transfer-Encoding win (RFC 9112 6.3 allows that); the framing is
                # ambiguous, the classic request-smuggling shape: refused, as httptools does.
                self.refusal = _MALFORMED
                raise h11.RemoteProtocolError("Content-Length with Transfer-Encoding")
        return event


class LimitedH11Protocol(_Coalescing, H11Protocol):  # type: ignore[misc]
    """uvicorn's h11 protocol with the same bounds and problem+json refusals."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = _LimitedConnection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    def send_400_response(self, msg: str) -> None:
        refusal = self.conn.refusal if isinstance(self.conn, _LimitedConnection) else None
        _refuse(self.transport, refusal or _MALFORMED, self.server_state)


class _WithTLSExtension:
    """Wraps the app for one connection and puts that connection's TLS facts in each scope."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self._app = app
        self._tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            # Overwrite, never merge: whatever was there did not come from this handshake.
            scope["extensions"] = {**scope.get("extensions", {}), "tls": self._tls}
        await self._app(scope, receive, send)


class _TLSExtension:
    """Mixin for a uvicorn HTTP protocol: wrap the app per connection with its TLS facts."""

    app: ASGIApp

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        tls = tls_extension(transport.get_extra_info("ssl_object"))
        if tls is not None:
            self.app = _WithTLSExtension(self.app, tls)


class TLSH11Protocol(_TLSExtension, LimitedH11Protocol):  # type: ignore[misc]
    """uvicorn's pure-Python h11 protocol with the ASGI TLS extension and vir's limits."""


class TLSHttpToolsProtocol(_TLSExtension, LimitedHttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools (C parser) protocol with the ASGI TLS extension and vir's limits."""


def protocol_class() -> type[asyncio.Protocol]:
    """The faster httptools parser when it is installed (it is a dependency), else h11."""
    return TLSHttpToolsProtocol if HTTPTOOLS else TLSH11Protocol


def limited_protocol_class() -> type[asyncio.Protocol]:
    """The same parsers and limits without the TLS extension: for the portal
    (``vir portal serve``), which asks browsers for no client certificate."""
    return LimitedHttpToolsProtocol if HTTPTOOLS else LimitedH11Protocol
