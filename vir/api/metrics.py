"""Metrics without identifiers, the request id and the access log.

``Metrics`` holds one ``prometheus_client.CollectorRegistry`` per app (nothing is
registered globally: ``create_app`` may run several times in one process), written
out in the Prometheus text exposition format 0.0.4 (``GET /metrics``,
``vir.api.routes.metrics``); the worker processes of one server sum their figures
(``vir.api.metrics_workers``), several servers are scraped each. No
label ever holds an identifier: labels are a request method, a route *template*
(``/v1/signals/{local_ref}``, never the concrete path), a status code, a
notification type, an audit action, an outcome, a refusal reason code or a job
name. Every label value is checked against a fixed pattern and anything else
becomes ``other``, so neither a client nor a bug can put a value of its choosing
into a label.

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
transaction, under the registry's lock. Actions are the catalogue's
(``vir.audit.actions``).

Besides: the process (``process_*``, ``python_info``), the last success of each
periodic job in this process (``vir_job_last_success_timestamp_seconds``, set by
``vir.api.lifespan``, and for ``audit.integrate`` by the integrator's thread after
each pass, ``vir.services.integrator``) and the newest signed audit checkpoint, read from the
database at each scrape (``vir_audit_checkpoint_last_timestamp_seconds``: a
checkpoint made by another process, ``vir audit export`` or ``vir audit
checkpoint``, counts too).

``Observe`` (outermost middleware) gives each request an id (a new UUID, or an
incoming ``X-Request-Id`` when it is a canonical UUID: nothing else is taken
from a client), returns it in the ``X-Request-Id`` response header, counts and
times the request, and writes its ``http.request`` log line (``vir.logs``).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from fastapi.telemetry import TelemetryConfig
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vir import logs
from vir.api.metrics_workers import Families, Siblings, merged, snapshot
from vir.audit.actions import Action
from vir.audit.chain import AuditEvent
from vir.domain.errors import ConfigurationError
from vir.domain.matching import NotificationType
from vir.services.refusals import Recorded
from vir.store import outbox
from vir.store.db import Database
from vir.store.sequencer import Integrated
from vir.store.tables import CheckpointRow

# The text format prometheus_client writes (``generate_latest``), version 0.0.4.
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
# Every value the ``task`` label of ``vir_job_last_success_timestamp_seconds`` takes
# (docs/operations-metrics.md lists them): the periodic jobs, and the integrator's
# thread, told after each pass (``vir.services.integrator``).
INTEGRATOR_JOB = "audit.integrate"
# FastAPI's own OpenTelemetry stays off in every vir app: it would hand each request's
# path and query (a local_ref, a notification cursor) to whatever tracer the process has
# as span attributes, and it looks for one on every request. What vir observes is in
# GET /metrics and its own log lines, which name routes by their template only.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
JOBS = ("audit.checkpoint", "lifecycle.run", "refusals.flush", "epochs.retire", INTEGRATOR_JOB)


def code_label(value: object) -> str:
    """A code (action, reason, type) as a label value, or ``other``."""
    text = str(value) if value is not None else ""
    return text if _CODE.fullmatch(text) else OTHER


def route_label(scope: Scope) -> str:
    """The template of the route the request's path belongs to; ``unmatched`` when the
    path is no route's (in any method).

    FastAPI's own routes name themselves in the scope (``scope["route"]``) when the
    router picks them; a request answered before routing (a body refused by
    ``vir.api.limits``: 413, 415, 400) or by a plain Starlette route (``/openapi.json``)
    has none there, so the app's routes are asked, in the router's order, which one
    the path belongs to."""
    route = scope.get("route")
    if route is None:
        route = _route_of(scope)
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    return path if len(path) <= 200 and _TEMPLATE.fullmatch(path) else OTHER


def _route_of(scope: Scope) -> Any:
    """The route Starlette's router would take for ``scope``: the first that matches
    in full, else the first that matches the path in another method (a 405)."""
    app_routes = getattr(getattr(scope.get("app"), "router", None), "routes", None)
    partial = None
    for route in flat_routes(app_routes or ()):
        # A copy: a route may note what it matched in the scope it is given.
        match, _ = route.matches(dict(scope))
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """``routes`` with each included router (FastAPI's ``include_router``, which matches
    as one route and names none) replaced by its own routes, in order. vir's routers
    carry their prefix themselves (``APIRouter(prefix=...)``, already in each route's
    path) and are included without one."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from flat_routes(getattr(inner, "routes", ()))
        else:
            yield route


class _Registry(CollectorRegistry):
    """A registry without the ``*_created`` series prometheus_client adds to every
    counter and histogram label set: they would double the series for a timestamp
    nobody alerts on. Dropped here, per registry, instead of through the library's
    process-wide switch."""

    def collect(self) -> Iterable[Any]:
        for family in super().collect():
            if family.type in ("counter", "histogram"):
                created = family.name + "_created"
                family.samples = [s for s in family.samples if s.name != created]
            yield family


class _NewestCheckpoint(Collector):
    """``vir_audit_checkpoint_last_timestamp_seconds``, read at each scrape; 0 when the
    database holds no checkpoint, nothing when it cannot be read (``/ready`` says so)."""

    NAME = "vir_audit_checkpoint_last_timestamp_seconds"
    HELP = "Unix time the newest signed audit checkpoint was made (by any process); 0: none."

    def __init__(self, newest: Callable[[], dt.datetime | None]) -> None:
        self._newest = newest

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """What ``collect`` yields, without reading the database (at registration)."""
        return [GaugeMetricFamily(self.NAME, self.HELP)]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            moment = self._newest()
        except Exception:  # a scrape must not fail with the database; /ready reports it
            return
        family = GaugeMetricFamily(self.NAME, self.HELP)
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)  # stored as UTC
        family.add_metric([], moment.timestamp() if moment is not None else 0.0)
        yield family


class _Deliveries(Collector):
    """``vir_deliveries`` (by channel and state: pending, retrying, dead) and
    ``vir_deliveries_dead`` (by channel), read from the outbox at each scrape: every
    instance and worker process sees the same numbers. Delivered deliveries are not
    counted here (they pile up until retention; ``vir_deliveries_delivered_total`` counts
    them as they happen), so a scrape costs only the open and dead ones (index ranges,
    ``vir.store.outbox.counts``). Nothing when the database cannot be read."""

    NAME = "vir_deliveries"
    HELP = "Notification deliveries in the outbox not delivered yet, by channel and state."
    DEAD = "vir_deliveries_dead"
    DEAD_HELP = "Dead-lettered notification deliveries, by channel (vir outbox list --state dead)."

    def __init__(self, counts: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._counts = counts

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(self.NAME, self.HELP),
            GaugeMetricFamily(self.DEAD, self.DEAD_HELP),
        ]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            counts = self._counts()
        except Exception:  # a scrape must not fail with the database
            return
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=("channel", "state"))
        dead = GaugeMetricFamily(self.DEAD, self.DEAD_HELP, labels=("channel",))
        for channel in outbox.CHANNELS:
            for state in outbox.NOT_DELIVERED:
                family.add_metric([channel, state], float(counts.get((channel, state), 0)))
            dead.add_metric([channel], float(counts.get((channel, outbox.DEAD), 0)))
        yield family
        yield dead


def delivery_counts(db: Database) -> dict[tuple[str, str], int]:
    with db.read() as session:
        return outbox.counts(session, outbox.CHANNELS)


class Metrics:
    """The registry of one app: thread-safe, rendered on demand.

    ``newest_checkpoint``: reads the time of the newest stored checkpoint (None: no
    gauge). ``process``: add the process and platform collectors.
    """

    def __init__(
        self,
        newest_checkpoint: Callable[[], dt.datetime | None] | None = None,
        *,
        process: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        self._siblings: Siblings | None = None
        self.registry = registry = _Registry(auto_describe=True)
        self.requests = Counter(
            "vir_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "vir_http_request_duration_seconds",
            "Time from request to the end of the response, by route template.",
            ("route",),
            buckets=BUCKETS,
            registry=registry,
        )
        self.matches_created = Counter(
            "vir_matches_created_total", "Matches created.", registry=registry
        )
        self.matches_ended = Counter("vir_matches_ended_total", "Matches ended.", registry=registry)
        self.notifications = Counter(
            "vir_notifications_created_total",
            "Notifications created, by type.",
            ("type",),
            registry=registry,
        )
        self.lifecycle_runs = Counter(
            "vir_lifecycle_runs_total", "Lifecycle runs completed.", registry=registry
        )
        self.lifecycle_signals = Counter(
            "vir_lifecycle_signals_total",
            "Signals removed by lifecycle runs: archived, erased, or destroyed (archive term).",
            ("outcome",),
            registry=registry,
        )
        self.consultations = Counter(
            "vir_consultations_total", "Veilig Thuis consultations made.", registry=registry
        )
        self.oprf_elements = Counter(
            "vir_oprf_evaluated_elements_total",
            "Blinded elements evaluated by the OPRF.",
            registry=registry,
        )
        self.refused = Counter(
            "vir_requests_refused_total",
            "Refused API requests (audited per key and minute), by reason code.",
            ("reason",),
            registry=registry,
        )
        self.refusals_overflow = Counter(
            "vir_refusals_overflow_total",
            "Refused API requests not itemised in the audit log: past the per-minute cap "
            "(cause cap: summed in the minute's overflow entry) or not stored (unrecorded).",
            ("reason", "cause"),
            registry=registry,
        )
        self.audit_events = Counter(
            "vir_audit_events_total",
            "Committed audit log entries, by action and outcome.",
            ("action", "outcome"),
            registry=registry,
        )
        self.integration_delay = Histogram(
            "vir_audit_integration_delay_seconds",
            "Time from staging an audit entry (its transaction committing) to its "
            "integration into the hash chain, by this process's integrator.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.integrated_entries = Counter(
            "vir_audit_integrated_entries_total",
            "Audit entries chained into the log by this process's integrator.",
            registry=registry,
        )
        self.delivered = Counter(
            "vir_deliveries_delivered",
            "Notification deliveries this process's delivery worker recorded as delivered, "
            "by channel.",
            ("channel",),
            registry=registry,
        )
        self.job_last_success = Gauge(
            "vir_job_last_success_timestamp_seconds",
            "Unix time of the last successful run of a periodic job in this process; 0: none yet.",
            # Not "job": Prometheus's own label on every scraped series (it would arrive
            # as exported_job); these are vir's periodic tasks.
            ("task",),
            registry=registry,
        )
        for kind in NotificationType:
            self.notifications.labels(type=kind.value)
        for outcome in LIFECYCLE_OUTCOMES:
            self.lifecycle_signals.labels(outcome=outcome)
        for channel in outbox.CHANNELS:
            self.delivered.labels(channel=channel)
        if newest_checkpoint is not None:
            registry.register(_NewestCheckpoint(newest_checkpoint))
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else OTHER
        with self._lock:
            self.requests.labels(method=method, route=route, status=str(status)).inc()
            self.latency.labels(route=route).observe(seconds)

    def refused_request(self, reason: str, recorded: Recorded) -> None:
        """Count one refused request, and whether the audit log itemises it."""
        label = code_label(reason)
        with self._lock:
            self.refused.labels(reason=label).inc()
            cause = OVERFLOW_CAUSES.get(recorded)
            if cause is not None:
                self.refusals_overflow.labels(reason=label, cause=cause).inc()

    def job_scheduled(self, job: str) -> None:
        """A periodic job runs in this process: its gauge shows 0 until it first succeeds."""
        with self._lock:
            self.job_last_success.labels(task=code_label(job))

    def job_succeeded(self, job: str, at: float | None = None) -> None:
        """A job run ended without an error (``at``: Unix time, now when None)."""
        with self._lock:
            when = time.time() if at is None else at
            self.job_last_success.labels(task=code_label(job)).set(when)

    def committed(self, events: Sequence[AuditEvent]) -> None:
        """Count the events of one committed transaction (a ``Database`` commit observer)."""
        with self._lock:
            for event in events:
                self._count(event)

    def integrated(self, done: Integrated) -> None:
        """Told by the integrator (``vir.services.integrator``) after each integration."""
        for delay in done.delays:
            self.integration_delay.observe(delay)
        self.integrated_entries.inc(done.entries)

    def delivery_recorded(self, channel: str, state: str) -> None:
        """Told by this process's delivery worker of each delivery state it recorded."""
        if state == outbox.DELIVERED and channel in outbox.CHANNELS:
            self.delivered.labels(channel=channel).inc()

    def _count(self, event: AuditEvent) -> None:
        action = event.action
        self.audit_events.labels(action=code_label(action), outcome=code_label(event.outcome)).inc()
        objects = event.objects
        if action == Action.MATCH_CREATED:
            self.matches_created.inc()
        elif action == Action.MATCH_ENDED:
            self.matches_ended.inc()
        elif action == Action.NOTIFICATION_CREATED:
            self.notifications.labels(type=code_label(objects.get("type"))).inc()
        elif action == Action.LIFECYCLE_RUN:
            self.lifecycle_runs.inc()
            for outcome in LIFECYCLE_OUTCOMES:
                count = _count_of(objects.get(outcome))
                self.lifecycle_signals.labels(outcome=outcome).inc(count)
        elif action == Action.CONSULTATION_MADE:
            self.consultations.inc()
        elif action == Action.OPRF_EVALUATE:
            self.oprf_elements.inc(_count_of(objects.get("elements")))

    def share_with(self, siblings: Siblings) -> None:
        """This process is one worker of several on one port: answer the siblings' scrapes
        with this registry's figures, and sum theirs into this one's
        (vir.api.metrics_workers)."""
        self._siblings = siblings
        siblings.serve(self.figures)

    def figures(self) -> Families:
        """This process's figures, as a sibling worker asks for them."""
        with self._lock:
            return snapshot(self.registry)

    def render(self) -> str:
        """The text format of this process's registry or, with siblings, of the sum of
        theirs and this one's (SiblingsUnavailable when one does not answer)."""
        if self._siblings is None:
            with self._lock:
                return generate_latest(self.registry).decode("utf-8")
        mine = self.figures()
        return generate_latest(merged([mine, *self._siblings.gather()])).decode("utf-8")


def _count_of(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(text: str, setting: str = "VIR_METRICS_ALLOW") -> tuple[Network, ...]:
    """``VIR_METRICS_ALLOW`` (``setting``): comma-separated addresses/networks allowed to
    read /metrics. A refusal names the setting and the entry's position, never its value
    (README: a setting that cannot take its value is named without the value)."""
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


def install(app: Any, db: Any, metrics_allow: str, setting: str = "VIR_METRICS_ALLOW") -> Metrics:
    """Wire metrics, request ids and access logs into ``app``; call after the last
    ``add_middleware`` so that ``Observe`` is outermost (it sees 413s too). The
    ``GET /metrics`` route (``vir.api.routes.metrics``) is included by ``create_app``."""
    metrics = Metrics(functools.partial(newest_checkpoint_at, db))
    metrics.registry.register(_Deliveries(functools.partial(delivery_counts, db)))
    app.state.metrics = metrics
    app.state.metrics_allow = parse_allow(metrics_allow, setting)
    db.observe_commits(metrics.committed)
    integrator = getattr(getattr(app.state, "services", None), "integrator", None)
    if integrator is not None:
        integrator.observe(metrics.integrated)
        integrator.observe_passes(functools.partial(metrics.job_succeeded, INTEGRATOR_JOB))
    delivery = getattr(app.state, "delivery", None)
    if delivery is not None:
        delivery.observe(metrics.delivery_recorded)
    app.add_middleware(Observe, metrics=metrics)
    return metrics


def newest_checkpoint_at(db: Database) -> dt.datetime | None:
    """When the newest stored audit checkpoint was made; None when there is none."""
    with db.read() as session:
        return session.scalar(select(func.max(CheckpointRow.created_at)))
