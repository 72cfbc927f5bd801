"""From the ASGI TLS extension to a ``Caller``.

The embedded server (``vir.server.tls``) puts the verified client certificate
into ``scope["extensions"]["tls"]["client_cert_chain"]`` as PEM, the shape of
the ASGI TLS extension. This module reads only that: a header sent by a client
can never stand in for a certificate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from vir.services.identity import Caller, Presented, presented


def client_certificate(scope: Mapping[str, Any]) -> str | None:
    """The leaf certificate (PEM) the TLS layer verified, or None."""
    tls = scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    return chain[0] if chain else None


def endpoint_name(request: Request) -> str:
    """Method and route template (``POST /v1/oprf/evaluate``): no ids from the URL."""
    route = request.scope.get("route")
    path = route.path if isinstance(route, Route) else "?"
    return f"{request.method} {path}"


def claim_of(request: Request) -> Presented:
    """What the request's certificate claims (kept on the request for refusal records)."""
    claim: Presented | None = getattr(request.state, "claim", None)
    if claim is None:
        claim = presented(client_certificate(request.scope))
        request.state.claim = claim
    return claim


async def require_caller(request: Request) -> Caller:
    """The calling organisation. A recently accepted certificate is answered from memory
    on the event loop; otherwise the registry is consulted in a worker thread."""
    claim = claim_of(request)
    authenticator = request.app.state.services.authenticator
    cached: Caller | None = authenticator.cached(claim)
    if cached is not None:
        return cached
    caller: Caller = await run_in_threadpool(authenticator.authenticate, claim)
    return caller


CurrentCaller = Annotated[Caller, Depends(require_caller)]
