"""Metrics without identifiers, the request id and the access log.

``Metrics`` is a small per-process registry written out in the Prometheus text
exposition format 0.0.4 (``GET /metrics``, ``vir.api.routes.metrics``); with
several processes Prometheus scrapes each. No label ever holds an identifier:
labels are a request method, a route *template* (``/v1/signals/{local_ref}``,
never the concrete path), a status code, a notification type, an audit action,
an outcome or a refusal reason code. Every label value is checked against a
fixed pattern and anything else becomes ``other``, so neither a client nor a bug
can put a value of its choosing into a label.

Refusals are counted as they are answered (``refused_request``, from the error
handlers), one per refused request: the audit log sums them per key and minute
(``vir.services.refusals``), and those past its per-minute cap, or not taken by the
database, are counted in ``vir_refusals_overflow_total`` as well.

The other domain counters are read from the audit log, which sees every event: the
``vir.store.audit_log`` module hands the events appended in a write transaction
to ``Database`` observers *after that transaction committed* (the commit of its
write group, ``vir.store.db``), and drops them on rollback. Counting in ``append`` itself
would count transactions that later roll back (a busy database, a conflict); a
commit that succeeds is exactly what happened. One observer call per
transaction, under the registry's lock.

``Observe`` (outermost middleware) gives each request an id (a new UUID, or an
incoming ``X-Request-Id`` when it is a canonical UUID: nothing else is taken
from a client), returns it in the ``X-Request-Id`` response header, counts and
times the request, and writes its ``http.request`` log line (``vir.logs``).
"""

from __future__ import annotations

import ipaddress
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vir import logs
from vir.audit.chain import AuditEvent
from vir.domain.errors import ConfigurationError
from vir.domain.matching import NotificationType
from vir.services.refusals import Recorded

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Request latency buckets, seconds (upper bounds; +Inf is added).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
OTHER = "other"
_CODE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
# A route template as FastAPI writes it: literal segments and {name} placeholders.
_TEMPLATE = re.compile(r"(/([A-Za-z0-9_.-]+|\{[a-z_][a-z0-9_]*(:[a-z]+)?\}))*/?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LIFECYCLE_OUTCOMES = ("archived", "erased", "destroyed")
# Why a refusal has no audit entry of its own: past the per-minute cap (summed in the
# minute's overflow entry), or not taken by the database at all.
OVERFLOW_CAUSES = {Recorded.OVERFLOW: "cap", Recorded.UNRECORDED: "unrecorded"}

Labels = tuple[tuple[str, str], ...]


def code_label(value: object) -> str:
    """A code (action, reason, type) as a label value, or ``other``."""
    text = str(value) if value is not None else ""
    return text if _CODE.fullmatch(text) else OTHER


def route_label(scope: Scope) -> str:
    """The matched route's template; ``unmatched`` when no route matched."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return path if len(path) <= 200 and _TEMPLATE.fullmatch(path) else OTHER


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _series(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} {_number(value)}"


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}")
        return tuple((k, labels[k]) for k in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self.values: dict[Labels, float] = {} if labelnames else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        self.values[key] = self.values.get(key, 0.0) + amount

    def lines(self) -> list[str]:
        return self.header() + [_series(self.name, k, v) for k, v in sorted(self.values.items())]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(buckets))
        # Per label set: cumulative bucket counts, then [sum, count].
        self.values: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        counts, totals = self.values.setdefault(
            self._key(labels), ([0] * len(self.buckets), [0.0, 0.0])
        )
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        totals[0] += value
        totals[1] += 1

    def lines(self) -> list[str]:
        out = self.header()
        for key, (counts, (total, count)) in sorted(self.values.items()):
            for bound, in_bucket in zip(self.buckets, counts, strict=True):
                le = (*key, ("le", repr(float(bound))))
                out.append(_series(f"{self.name}_bucket", le, in_bucket))
            out.append(_series(f"{self.name}_bucket", (*key, ("le", "+Inf")), count))
            out.append(_series(f"{self.name}_sum", key, total))
            out.append(_series(f"{self.name}_count", key, count))
        return out


class Metrics:
    """The registry of one process (one app): thread-safe, rendered on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = Counter(
            "vir_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
        )
        self.latency = Histogram(
            "vir_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ("route",),
            BUCKETS,
        )
        self.matches_created = Counter("vir_matches_created_total", "Matches created.")
        self.matches_ended = Counter("vir_matches_ended_total", "Matches ended.")
        self.notifications = Counter(
            "vir_notifications_created_total", "Notifications created, by type.", ("type",)
        )
        self.lifecycle_runs = Counter("vir_lifecycle_runs_total", "Lifecycle runs completed.")
        self.lifecycle_signals = Counter(
            "vir_lifecycle_signals_total",
            "Signals removed by lifecycle runs: archived, erased, or destroyed (archive term).",
            ("outcome",),
        )
        self.consultations = Counter("vir_consultations_total", "Veilig Thuis consultations made.")
        self.oprf_elements = Counter(
            "vir_oprf_evaluated_elements_total", "Blinded elements evaluated by the OPRF."
        )
        self.refused = Counter(
            "vir_requests_refused_total",
            "Refused API requests (audited per key and minute), by reason code.",
            ("reason",),
        )
        self.refusals_overflow = Counter(
            "vir_refusals_overflow_total",
            "Refused API requests not itemised in the audit log: past the per-minute cap "
            "(cause cap: summed in the minute's overflow entry) or not stored (unrecorded).",
            ("reason", "cause"),
        )
        self.audit_events = Counter(
            "vir_audit_events_total",
            "Committed audit log entries, by action and outcome.",
            ("action", "outcome"),
        )
        for kind in NotificationType:
            self.notifications.inc(0, type=kind.value)
        for outcome in LIFECYCLE_OUTCOMES:
            self.lifecycle_signals.inc(0, outcome=outcome)
        self._all: list[Counter | Histogram] = [
            self.requests,
            self.latency,
            self.matches_created,
            self.matches_ended,
            self.notifications,
            self.lifecycle_runs,
            self.lifecycle_signals,
            self.consultations,
            self.oprf_elements,
            self.refused,
            self.refusals_overflow,
            self.audit_events,
        ]

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else OTHER
        with self._lock:
            self.requests.inc(method=method, route=route, status=str(status))
            self.latency.observe(seconds, route=route)

    def refused_request(self, reason: str, recorded: Recorded) -> None:
        """Count one refused request, and whether the audit log itemises it."""
        label = code_label(reason)
        with self._lock:
            self.refused.inc(reason=label)
            cause = OVERFLOW_CAUSES.get(recorded)
            if cause is not None:
                self.refusals_overflow.inc(reason=label, cause=cause)

    def committed(self, events: Sequence[AuditEvent]) -> None:
        """Count the events of one committed transaction (a ``Database`` commit observer)."""
        with self._lock:
            for event in events:
                self._count(event)

    def _count(self, event: AuditEvent) -> None:
        action = event.action
        self.audit_events.inc(action=code_label(action), outcome=code_label(event.outcome))
        objects = event.objects
        if action == "match.created":
            self.matches_created.inc()
        elif action == "match.ended":
            self.matches_ended.inc()
        elif action == "notification.created":
            self.notifications.inc(type=code_label(objects.get("type")))
        elif action == "lifecycle.run":
            self.lifecycle_runs.inc()
            for outcome in LIFECYCLE_OUTCOMES:
                self.lifecycle_signals.inc(_count_of(objects.get(outcome)), outcome=outcome)
        elif action == "consultation.made":
            self.consultations.inc()
        elif action == "oprf.evaluate":
            self.oprf_elements.inc(_count_of(objects.get("elements")))

    def render(self) -> str:
        with self._lock:
            lines = [line for metric in self._all for line in metric.lines()]
        return "\n".join(lines) + "\n"


def _count_of(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(text: str) -> tuple[Network, ...]:
    """``VIR_METRICS_ALLOW``: comma-separated addresses/networks allowed to read /metrics."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"VIR_METRICS_ALLOW: {item!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def peer_allowed(networks: Sequence[Network], peer: Any) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(str(peer[0]))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def request_id_of(scope: Scope) -> str:
    """The incoming ``X-Request-Id`` when it is a canonical UUID, else a new one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text: str = value.decode("latin-1").strip().lower()
            if _UUID.fullmatch(text):
                return text
            break
    return str(uuid.uuid4())


class Observe:
    """Request id, request metrics and the ``http.request`` log line."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        monotonic: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.monotonic = monotonic

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = logs.REQUEST_ID.set(request_id)
        start = self.monotonic()
        status = 500

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            seconds = self.monotonic() - start
            route = route_label(scope)
            method = str(scope.get("method", ""))
            self.metrics.observe_request(method, route, status, seconds)
            logs.emit(
                logs.HTTP_REQUEST,
                method=method if method in METHODS else OTHER,
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 3),
            )
            logs.REQUEST_ID.reset(token)


def install(app: Any, db: Any, metrics_allow: str) -> Metrics:
    """Wire metrics, request ids and access logs into ``app``; call after the last
    ``add_middleware`` so that ``Observe`` is outermost (it sees 413s too)."""
    from vir.api.routes import metrics as route  # here: the route module imports this one

    metrics = Metrics()
    app.state.metrics = metrics
    app.state.metrics_allow = parse_allow(metrics_allow)
    db.observe_commits(metrics.committed)
    app.include_router(route.router)
    app.add_middleware(Observe, metrics=metrics)
    return metrics
