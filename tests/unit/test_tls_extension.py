"""The per-connection wrapper puts the handshake's certificate into the ASGI scope."""

from __future__ import annotations

import asyncio
from typing import Any

from vir.api.identity import client_certificate
from vir.server.tls import _WithTLSExtension


def test_scope_gets_the_connection_certificate_and_overrides_anything_else() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    tls = {"client_cert_chain": ["-----BEGIN CERTIFICATE-----\nAAA\n"]}
    wrapped = _WithTLSExtension(app, tls)
    forged = {"type": "http", "extensions": {"tls": {"client_cert_chain": ["forged"]}}}
    asyncio.run(wrapped(forged, None, None))
    assert client_certificate(seen[0]) == tls["client_cert_chain"][0]


def test_no_extension_means_no_certificate() -> None:
    assert client_certificate({"type": "http"}) is None
    assert (
        client_certificate({"type": "http", "extensions": {"tls": {"client_cert_chain": []}}})
        is None
    )
