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
another CA never completes the handshake.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    HTTPTOOLS = True
except ImportError:  # pragma: no cover - httptools is a declared dependency
    HttpToolsProtocol = H11Protocol  # type: ignore[misc,assignment]
    HTTPTOOLS = False

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


class TLSH11Protocol(_TLSExtension, H11Protocol):  # type: ignore[misc]
    """uvicorn's pure-Python h11 protocol with the ASGI TLS extension."""


class TLSHttpToolsProtocol(_TLSExtension, HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools (C parser) protocol with the ASGI TLS extension."""


def protocol_class() -> type[asyncio.Protocol]:
    """The faster httptools parser when it is installed (it is a dependency), else h11."""
    return TLSHttpToolsProtocol if HTTPTOOLS else TLSH11Protocol
