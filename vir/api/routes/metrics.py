"""``GET /metrics``: Prometheus text format, for scrapers at ``VIR_METRICS_ALLOW`` only.

Like ``/health`` it needs no client certificate (the embedded server's TLS asks
for one but does not require it); instead the TCP peer (``scope["client"]``,
never a forwarded header) must be one of ``VIR_METRICS_ALLOW`` (default
127.0.0.1). In proxy mode a request from a trusted reverse proxy is refused
whatever ``VIR_METRICS_ALLOW`` says: it may come from anyone on the other side.
The answer holds counts only (vir.api.metrics), never an identifier. A server of
several worker processes answers the sum of them all (vir.api.metrics_workers), or
503 when one of them does not give its figures.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vir.api.blocking import blocking
from vir.api.deps import MetricsAllowDep, MetricsDep, ProxyTrustDep
from vir.api.errors import problem_response
from vir.api.metrics import CONTENT_TYPE, peer_allowed
from vir.api.metrics_workers import SiblingsUnavailable

router = APIRouter()


@router.get("/metrics", tags=["service"], include_in_schema=False, response_model=None)
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
