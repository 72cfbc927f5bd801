"""From the verified client certificate to a ``Caller``.

Two ways a certificate reaches the application, chosen by ``VIR_TLS_MODE``:

- ``embedded`` (default): the embedded server (``vir.server.tls``) puts the
  certificate it verified into ``scope["extensions"]["tls"]["client_cert_chain"]``
  as PEM, the shape of the ASGI TLS extension. Only that is read; a
  ``Client-Cert`` header is ignored entirely, whoever sends it.
- ``proxy``: a reverse proxy terminates mutual TLS and forwards the certificate
  in the RFC 9440 ``Client-Cert`` header. The header is believed only when the
  TCP peer (``scope["client"]``, never ``X-Forwarded-For``) is one of
  ``VIR_TRUSTED_PROXIES``; from any other peer a request carrying it is refused
  (``ForwardedCertificateNotTrusted``) and the refusal is audited.

Either way the certificate is then checked by ``services.identity`` (validity,
registration by fingerprint, revocation) exactly the same.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
import ssl
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from vir.domain.errors import (
    ConfigurationError,
    ForwardedCertificateNotTrusted,
    NoClientCertificate,
)
from vir.services.identity import Caller, Presented, presented

CLIENT_CERT_HEADER = "client-cert"
# RFC 8941 byte sequence: base64 (with padding) between colons.
_BYTE_SEQUENCE = re.compile(r":([A-Za-z0-9+/]+={0,2}):")
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_MAX_HEADER = 16 * 1024

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ProxyTrust:
    """The reverse proxies whose ``Client-Cert`` header is believed (proxy mode only)."""

    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str, setting: str = "VIR_TRUSTED_PROXIES") -> ProxyTrust:
        """``"127.0.0.1, 10.0.0.0/24"``; refuses anything that is not an address or
        network, naming ``setting`` and the entry's position, never its value."""
        networks = []
        for position, item in enumerate((part.strip() for part in text.split(",")), 1):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(
                    f"{setting}: entry {position} is not an IP address or network "
                    "(e.g. 127.0.0.1 or 10.0.0.0/24)"
                ) from None
        return cls(tuple(networks))

    def trusts(self, peer: tuple[str, int] | list[Any] | None) -> bool:
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(str(peer[0]))
        except ValueError:  # a Unix socket or an unknown peer: never a trusted proxy
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def proxy_trust(tls_mode: str, trusted_proxies: str, prefix: str = "VIR_") -> ProxyTrust | None:
    """None in embedded mode (the header is never read); the trusted proxies in proxy mode.
    ``prefix``: of the service's settings (the key holder's: ``VIR_KEYHOLDER_``)."""
    proxies, mode = f"{prefix}TRUSTED_PROXIES", f"{prefix}TLS_MODE"
    trust = ProxyTrust.parse(trusted_proxies, proxies)
    if tls_mode != "proxy":
        if trust.networks:
            raise ConfigurationError(
                f"{proxies} is set, but {mode} is not 'proxy': the embedded "
                "server never believes a Client-Cert header; unset one or set the other"
            )
        return None
    if not trust.networks:
        raise ConfigurationError(
            f"{mode}=proxy needs {proxies} (the reverse proxy's address, "
            "e.g. 127.0.0.1); without it no request could be authenticated"
        )
    return trust


def client_certificate(scope: Mapping[str, Any]) -> str | None:
    """The leaf certificate (PEM) the TLS layer verified, or None."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return chain[0] if chain else None


def forwarded_certificate(value: str) -> str | None:
    """The PEM of a ``Client-Cert`` header value, or None when it holds no certificate.

    RFC 9440: the DER certificate as an RFC 8941 byte sequence (``:base64:``). Also
    accepted, because nginx without njs cannot produce that: the URL-encoded PEM of
    ``$ssl_client_escaped_cert`` (deploy/nginx/README.md). Anything else, or a value
    that does not decode, is no certificate.
    """
    value = value.strip()
    if not value or len(value) > _MAX_HEADER:
        return None
    match = _BYTE_SEQUENCE.fullmatch(value)
    if match is not None:
        try:
            der = base64.b64decode(match.group(1), validate=True)
        except binascii.Error:
            return None
        return ssl.DER_cert_to_PEM_cert(der) if der else None
    pem = urllib.parse.unquote(value, errors="strict") if "%" in value else value
    return pem if pem.startswith(_PEM_BEGIN) else None


def endpoint_name(request: Request) -> str:
    """Method and route template (``POST /v1/oprf/evaluate``): no ids from the URL."""
    route = request.scope.get("route")
    path = route.path if isinstance(route, Route) else "?"
    return f"{request.method} {path}"


def _certificate_of(request: Request) -> tuple[str | None, bool]:
    """The certificate (PEM) this request presents, and whether it may be believed."""
    trust: ProxyTrust | None = getattr(request.app.state, "proxy_trust", None)
    if trust is None:
        return client_certificate(request.scope), True
    values = request.headers.getlist(CLIENT_CERT_HEADER)
    if not values:
        return None, True
    try:
        pem = forwarded_certificate(values[0]) if len(values) == 1 else None
    except UnicodeDecodeError:
        pem = None
    return pem, trust.trusts(request.scope.get("client"))


def claim_of(request: Request) -> Presented:
    """What the request's certificate claims (kept on the request for refusal records).

    A ``Client-Cert`` header from a peer that is no trusted proxy is still parsed for
    what it claims, so that the refusal records whom it tried to pass for.
    """
    claim: Presented | None = getattr(request.state, "claim", None)
    if claim is None:
        pem, believed = _certificate_of(request)
        # presented() remembers what it parsed; an untrusted peer must not fill that memory.
        claim = presented(pem) if believed else presented.__wrapped__(pem)
        request.state.claim = claim
        request.state.claim_believed = believed
    return claim


def presents_certificate(request: Request) -> bool:
    """Whether the request comes with a client certificate: the one the embedded server
    verified or, behind a reverse proxy, a ``Client-Cert`` header (believed or not)."""
    if getattr(request.app.state, "proxy_trust", None) is None:
        return client_certificate(request.scope) is not None
    return bool(request.headers.getlist(CLIENT_CERT_HEADER))


R = TypeVar("R")
_NOT_YET = object()


def once_a_request(
    dependency: Callable[[Request], Awaitable[R]],
) -> Callable[[Request], Awaitable[R]]:
    """``dependency`` (of the request alone) run once a request: what it found the first
    time is kept on the request and given again. A route settles who calls before it
    reads the body (``vir.api.strict``, ``before_body``); FastAPI's own call of the
    dependency afterwards gets the same answer, with no second registry read or token
    verification."""
    key = f"vir_once_{dependency.__qualname__}"

    @functools.wraps(dependency)
    async def once(request: Request) -> R:
        found = getattr(request.state, key, _NOT_YET)
        if found is _NOT_YET:
            found = await dependency(request)
            setattr(request.state, key, found)
        return cast(R, found)

    once.once_a_request = True  # type: ignore[attr-defined]  # checked by before_body
    return once


@once_a_request
async def require_caller(request: Request) -> Caller:
    """The calling organisation, from the registry: every request reads its
    certificate's row, so a revocation is refused from the next request on. A caller
    identified before is recalled on the event loop when the database is a local SQLite
    file (microseconds); anything else is looked up in a worker thread."""
    claim = claim_of(request)
    if not request.state.claim_believed:
        raise ForwardedCertificateNotTrusted()
    authenticator = request.app.state.services.authenticator
    recalled: Caller | None = authenticator.recall(claim)
    if recalled is not None:
        return recalled
    caller: Caller = await run_in_threadpool(authenticator.authenticate, claim)
    return caller


CurrentCaller = Annotated[Caller, Depends(require_caller)]


async def require_tls_client(request: Request) -> None:
    """For the service's own endpoints (``/ready``, ``/metrics``): a client certificate
    the TLS layer verified, whoever it names (API-CONTRACT.md: mutual TLS on every
    endpoint but ``/health`` and the OpenAPI document). A monitoring system has one of
    its own from the client CA; it need not be an organisation's.

    Embedded mode: the handshake checked the chain to the client CA and the CRL; without
    a certificate, ``NoClientCertificate`` (401). Proxy mode: the reverse proxy requires
    a verified certificate for every path (``ssl_verify_client on``), and the instance's
    own port is internal (plain HTTP on 127.0.0.1): what reaches it directly comes from
    this host, and ``/metrics`` is served to local scrapers only, never via the proxy
    (``vir.api.routes.metrics``).
    """
    if getattr(request.app.state, "proxy_trust", None) is not None:
        return
    if client_certificate(request.scope) is None:
        raise NoClientCertificate()
    # The handshake checked the chain (and the CRL the server loaded at start); a
    # certificate that has expired since, or was revoked after the start, is refused here.
    authenticator = request.app.state.services.authenticator
    await run_in_threadpool(authenticator.vouch, claim_of(request))


TlsClient = Depends(require_tls_client)
