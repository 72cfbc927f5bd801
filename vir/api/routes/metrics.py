"""``GET /metrics``: Prometheus text format, for scrapers at ``VIR_METRICS_ALLOW`` only.

Two checks. Embedded mode: the scraper presents a client certificate of the client
CA, as on every endpoint but ``/health`` and the OpenAPI document (any certificate
the TLS layer verified, e.g. the monitoring system's own: ``require_tls_client``;
401 without one). And the TCP peer (``scope["client"]``, never a forwarded header)
must be one of ``VIR_METRICS_ALLOW`` (default 127.0.0.1), else 403. In proxy mode the
instance's port is internal (plain HTTP on 127.0.0.1) and ``/metrics`` is for local
scrapers on it only: a request from a trusted reverse proxy is refused whatever
``VIR_METRICS_ALLOW`` says, as it may come from anyone on the other side. The answer
holds counts only (vir.api.metrics), never an identifier. A server of several worker
processes answers the sum of them all (vir.api.metrics_workers), or 503 when one of
them does not give its figures.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vir.api.blocking import blocking
from vir.api.deps import MetricsAllowDep, MetricsDep, ProxyTrustDep
from vir.api.errors import problem_response
from vir.api.identity import TlsClient
from vir.api.metrics import CONTENT_TYPE, peer_allowed
from vir.api.metrics_workers import SiblingsUnavailable
from vir.api.strict import StrictRoute

router = APIRouter(route_class=StrictRoute)


@router.get(
    "/metrics",
    tags=["service"],
    include_in_schema=False,
    response_model=None,
    dependencies=[TlsClient],
)
@blocking
def metrics(
    request: Request, found: MetricsDep, allow: MetricsAllowDep, trust: ProxyTrustDep
) -> Response | JSONResponse:
    peer = request.scope.get("client")
    via_proxy = trust is not None and trust.trusts(peer)
    if via_proxy or not peer_allowed(allow, peer):
        return problem_response(
            403,
            "metrics-not-allowed",
            "Metrics not allowed",
            "/metrics answers only addresses in VIR_METRICS_ALLOW, never via the reverse proxy",
        )
    try:
        text = found.render()
    except SiblingsUnavailable:
        return problem_response(
            503,
            "metrics-unavailable",
            "Metrics unavailable",
            "another worker process of this server did not give its figures; scrape again",
        )
    return Response(text, media_type=CONTENT_TYPE)
