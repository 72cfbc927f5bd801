"""The per-connection wrapper puts the handshake's certificate into the ASGI scope; behind
a reverse proxy, the Client-Cert header is read, and believed only from a trusted proxy."""

from __future__ import annotations

import asyncio
import base64
import ssl
import types
import urllib.parse
from typing import Any

import pytest
from starlette.requests import Request

from vir.api.identity import (
    ProxyTrust,
    claim_of,
    client_certificate,
    forwarded_certificate,
    proxy_trust,
    require_caller,
)
from vir.domain.errors import ConfigurationError, ForwardedCertificateNotTrusted
from vir.server.tls import _WithTLSExtension
from vir.services.identity import presented


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


# --- Behind a reverse proxy: the Client-Cert header (RFC 9440) -----------------------------


def _pem() -> str:
    import datetime as dt

    from vir.crypto import pki

    now = dt.datetime.now(dt.UTC)
    ca = pki.create_ca("test CA", now)
    issued = pki.issue_client_certificate(
        ca, "00000009000000000001", "School", now, now + dt.timedelta(days=1)
    )
    return pki.cert_pem(issued.cert).decode("ascii")


PEM = _pem()
DER = ssl.PEM_cert_to_DER_cert(PEM)
RFC9440 = ":" + base64.b64encode(DER).decode("ascii") + ":"
# What nginx's $ssl_client_escaped_cert looks like: the PEM, URL-encoded.
ESCAPED = urllib.parse.quote(PEM, safe="")


def test_rfc9440_and_url_encoded_pem_give_the_same_certificate() -> None:
    assert forwarded_certificate(RFC9440) == ssl.DER_cert_to_PEM_cert(DER)
    assert forwarded_certificate(f"  {RFC9440} ") == ssl.DER_cert_to_PEM_cert(DER)
    assert forwarded_certificate(ESCAPED) == PEM
    assert presented(forwarded_certificate(RFC9440)) == presented(PEM)


@pytest.mark.parametrize(
    "value",
    [
        "",
        ":",
        "::",
        ":not base64!:",
        RFC9440[1:],
        RFC9440[:-1],
        "hello",
        "%ZZ",
        ":" + "A" * 20000 + ":",
    ],
)
def test_anything_else_is_no_certificate(value: str) -> None:
    assert presented(forwarded_certificate(value)).fingerprint is None


def test_trusted_proxies_are_addresses_and_networks() -> None:
    trust = ProxyTrust.parse(" 127.0.0.1, 10.1.0.0/16 ,::1,")
    assert trust.trusts(("127.0.0.1", 5000))
    assert trust.trusts(("10.1.200.3", 5000))
    assert trust.trusts(("::ffff:127.0.0.1", 5000))  # IPv4-mapped
    assert trust.trusts(("::1", 5000))
    assert not trust.trusts(("127.0.0.2", 5000))
    assert not trust.trusts(("10.2.0.1", 5000))
    assert not trust.trusts(None)
    assert not trust.trusts(("/run/vir.sock", 0))
    with pytest.raises(ConfigurationError):
        ProxyTrust.parse("127.0.0.1, nginx.local")


def test_proxy_mode_needs_proxies_and_embedded_mode_refuses_them() -> None:
    assert proxy_trust("embedded", "") is None
    assert proxy_trust("proxy", "127.0.0.1") == ProxyTrust.parse("127.0.0.1")
    with pytest.raises(ConfigurationError, match="VIR_TRUSTED_PROXIES"):
        proxy_trust("proxy", " , ")
    with pytest.raises(ConfigurationError, match="VIR_TLS_MODE"):
        proxy_trust("embedded", "127.0.0.1")


class _EchoAuthenticator:
    """Stands in for the registry: "accepts" whatever claim reaches it."""

    def recall(self, claim: Any) -> None:
        return None  # never identified before: always asks authenticate

    def authenticate(self, claim: Any) -> Any:
        return claim


def _request(trust: ProxyTrust | None, peer: str, headers: list[tuple[str, str]]) -> Request:
    services = types.SimpleNamespace(authenticator=_EchoAuthenticator())
    app = types.SimpleNamespace(state=types.SimpleNamespace(proxy_trust=trust, services=services))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/oprf/evaluate",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": (peer, 40000),
        "app": app,
    }
    return Request(scope)


def _outcome(request: Request) -> Any:
    """What reaches the authenticator, or the refusal."""
    try:
        return asyncio.run(require_caller(request))
    except ForwardedCertificateNotTrusted as error:
        return type(error)


def test_embedded_mode_never_reads_the_header() -> None:
    request = _request(None, "127.0.0.1", [("Client-Cert", RFC9440)])
    assert _outcome(request) == presented(None)


def test_proxy_mode_believes_the_header_only_from_a_trusted_peer() -> None:
    trust = ProxyTrust.parse("127.0.0.1")
    expected = presented(PEM).fingerprint
    assert expected is not None
    trusted = _request(trust, "127.0.0.1", [("Client-Cert", RFC9440)])
    assert _outcome(trusted).fingerprint == expected

    untrusted = _request(trust, "127.0.0.2", [("Client-Cert", RFC9440)])
    # What the forged header claims is kept for the refusal's audit entry.
    assert claim_of(untrusted).fingerprint == expected
    assert _outcome(untrusted) is ForwardedCertificateNotTrusted

    no_header = _request(trust, "127.0.0.2", [])
    assert _outcome(no_header) == presented(None)


def test_two_client_cert_headers_are_no_certificate() -> None:
    trust = ProxyTrust.parse("127.0.0.1")
    request = _request(trust, "127.0.0.1", [("Client-Cert", RFC9440), ("Client-Cert", RFC9440)])
    assert claim_of(request).fingerprint is None
