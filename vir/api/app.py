"""``create_app(settings)``: the only place the service is wired together."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from fastapi import FastAPI

from vir import __version__
from vir.api import errors, openapi
from vir.api.deps import Services
from vir.api.headers import API_VERSION, ResponseHeaders
from vir.api.identity import proxy_trust
from vir.api.lifespan import Periodic, service_lifespan
from vir.api.limits import BodySizeLimit
from vir.api.metrics import NO_TELEMETRY
from vir.api.metrics import install as install_metrics
from vir.api.routes import (
    addresses,
    audit,
    consultations,
    followup,
    functions,
    health,
    matches,
    metrics,
    organisations,
    privacy,
    reports,
    signals,
    signals_batch,
)
from vir.api.routes.signals import notification_item
from vir.api.routes.signals_batch import BATCH_PATH
from vir.crypto import oprf as group
from vir.crypto.custody import require_no_oprf_key
from vir.crypto.keyfile import require_private
from vir.crypto.secretbox import require_secret_key
from vir.crypto.signing import CheckpointSigner, load_signing_key
from vir.delivery.registry import make_worker
from vir.delivery.worker import Worker
from vir.domain.clock import Clock, utc_now
from vir.domain.ratelimit import Limit, LimitKind
from vir.services.consultations import ConsultationService
from vir.services.epochs import EpochBook
from vir.services.evaluation_counts import KeyholderCounts
from vir.services.identity import Authenticator
from vir.services.integrator import Integrator
from vir.services.lifecycle import Lifecycle
from vir.services.privacy import PrivacyService
from vir.services.refusals import RefusalRecorder
from vir.services.reports import EvaluationCounts
from vir.services.signals import NotificationService, SignalService
from vir.services.transparency import TransparencyLog
from vir.settings import Settings
from vir.store.db import Database
from vir.store.migrate import require_current
from vir.store.ratelimits import RateLimits


def create_app(settings: Settings, *, clock: Clock = utc_now) -> FastAPI:
    """Build the index; raises ConfigurationError (with how to fix it) when it must not start.

    The index holds no OPRF key and evaluates nothing: organisations pseudonymise at the
    key holder (``vir.keyholder``). An OPRF key file in its keys directory is refused.
    """
    group.require_strict_backend()
    signer = require_index_keys(settings)
    trust = proxy_trust(settings.tls_mode, settings.trusted_proxies)
    db = Database.connect(settings.database_url)
    require_current(db.engine)
    limits = rate_limits(settings)
    epochs = EpochBook(db)
    services = Services(
        db=db,
        clock=clock,
        authenticator=Authenticator(db, clock),
        epochs=epochs,
        signals=SignalService(db, clock, epochs, settings.information_duty_days, limits),
        notifications=NotificationService(db, clock),
        refusals=RefusalRecorder(db, clock, settings.refusal_entries_per_minute),
        transparency=TransparencyLog(db, signer, clock),
        lifecycle=Lifecycle(db, clock),
        consultations=ConsultationService(db, clock, limits),
        privacy=PrivacyService(db, clock, settings.information_duty_days, limits),
        integrator=Integrator(db),
        evaluation_counts=evaluation_counts(settings),
    )
    delivery = delivery_worker(settings, db, clock)
    app = FastAPI(
        telemetry=NO_TELEMETRY,
        lifespan=service_lifespan(
            services.integrator,
            services.transparency.checkpoint,
            settings.checkpoint_interval_seconds,
            services.refusals.flush,
            settings.refusal_flush_seconds,
            Periodic("lifecycle.run", settings.lifecycle_interval_seconds, services.lifecycle.run),
            delivery=delivery,
        ),
        title="vir",
        version=API_VERSION,
        description="Privacy-preserving signal index (Verwijsindex). Mutual TLS on every "
        "endpoint except /health and this document (/openapi.json, /v1/openapi.json): "
        "/ready and /metrics take any client certificate of the client CA (a monitoring "
        "system's own), /metrics only from VIR_METRICS_ALLOW; errors are "
        "application/problem+json. Request bodies are JSON in UTF-8 (a body of another "
        "Content-Type, or none: 415 unsupported-media-type; not UTF-8: 400 malformed-json) of at "
        "most VIR_MAX_BODY_BYTES (64 KiB by default), POST /v1/signals/batch at most "
        "VIR_MAX_BATCH_BODY_BYTES (1 MiB by default); over it: 413. "
        "Pseudonyms are made at the key holder, a separate service (POST /v1/oprf/evaluate "
        f"there). Served by vir {__version__}.",
        # Swagger UI and ReDoc load their scripts from a CDN: not served (docs/api.md).
        docs_url=None,
        redoc_url=None,
        # /v1/signals/ is not /v1/signals: no redirect, a 404 problem.
        redirect_slashes=False,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.services = services
    app.state.delivery = delivery  # its results counted by /metrics (vir.api.metrics)
    app.state.clock = clock
    app.state.proxy_trust = trust
    for router in (
        health.router,
        signals.router,
        signals_batch.router,
        matches.router,
        followup.router,
        consultations.router,
        organisations.router,
        addresses.router,
        functions.router,
        privacy.router,
        reports.router,
        audit.router,
        metrics.router,
    ):
        app.include_router(router)
    contact = {
        "name": settings.api_contact_name,
        "email": settings.api_contact_email,
        "url": settings.api_contact_url,
    }
    # The batch's 500 items do not fit the limit of every other request.
    larger = {f"POST {BATCH_PATH}": settings.max_batch_body_bytes}
    assemble(app, db, lambda: require_index_keys(settings), settings, contact, larger)
    return app


def require_index_keys(settings: Settings) -> CheckpointSigner:
    """Every key file check of the index's start, and of its ``/ready`` (the same one, so
    that ready means a restart would start): no OPRF key beside it, the checkpoint key,
    the webhook secret key (used only when a secret is first sealed or opened, but an
    exposed one is refused now) and, with key holders to count for reports, the client
    key the index calls them with (read at the first report). ConfigurationError names
    the file, never its content."""
    require_no_oprf_key(settings.keys_dir)
    signer = load_signing_key(settings.keys_dir, settings.audit_origin)
    require_secret_key(settings.keys_dir)
    if settings.usage_keyholders.strip():
        require_private(settings.usage_client_key, "VIR_USAGE_CLIENT_KEY")
    return signer


class Edge(Protocol):
    """The settings every vir service reads at its edge (index and key holder alike)."""

    @property
    def max_body_bytes(self) -> int: ...

    @property
    def metrics_allow(self) -> str: ...

    @property
    def ready_min_free_mb(self) -> int: ...


def assemble(
    app: FastAPI,
    db: Database,
    check_keys: Callable[[], object],
    edge: Edge,
    contact: dict[str, str],
    larger: Mapping[str, int] | None = None,
) -> None:
    """What every vir service has around its routes: problem+json errors, ``/ready`` over
    the database and ``check_keys`` (the start-up key check), the body checks (size,
    JSON only, UTF-8, nesting: ``larger`` names the routes with a larger body limit of
    their own), metrics and access log, the OpenAPI document, and the API-Version and
    security headers on every answer."""
    errors.install(app)
    health.install_readiness(app, db, check_keys, edge.ready_min_free_mb * 1024 * 1024)
    app.add_middleware(BodySizeLimit, max_bytes=edge.max_body_bytes, larger=larger)
    # The setting's name as this service reads it (the key holder's: VIR_KEYHOLDER_...).
    prefix = getattr(edge, "model_config", {}).get("env_prefix", "VIR_")
    # GET /metrics, request ids, access log
    install_metrics(app, db, edge.metrics_allow, f"{prefix}METRICS_ALLOW")
    openapi.install(app, contact)
    # Outside everything, Starlette's ServerErrorMiddleware included, so that even the
    # answer to an unexpected exception (500) carries API-Version and the security headers.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: ResponseHeaders(build())  # type: ignore[method-assign]


def evaluation_counts(settings: Settings) -> EvaluationCounts | None:
    """The key holders' counts for the privacy report, or None when none is configured."""
    urls = tuple(u.strip() for u in settings.usage_keyholders.split(",") if u.strip())
    if not urls:
        return None
    return KeyholderCounts(
        urls,
        settings.usage_threshold,
        settings.usage_ca,
        settings.usage_client_cert,
        settings.usage_client_key,
    ).counts


def rate_limits(settings: Settings) -> RateLimits:
    """The per-organisation limits of ``settings``, in buckets shared through the database."""
    return RateLimits(
        {
            LimitKind.REGISTER: Limit.per_hour(settings.register_per_hour, settings.register_burst),
            LimitKind.WITHDRAW: Limit.per_hour(settings.withdraw_per_hour, settings.withdraw_burst),
            LimitKind.PRIVACY_LOOKUP: Limit.per_hour(
                settings.privacy_lookups_per_hour, settings.privacy_lookup_burst
            ),
            LimitKind.CONSULTATION: Limit(settings.consult_rate_per_second, settings.consult_burst),
        }
    )


def delivery_worker(settings: Settings, db: Database, clock: Clock) -> Worker | None:
    """The delivery worker of this process (docs/delivery.md), or None when delivery runs
    in ``vir worker`` processes (``VIR_DELIVERY_INPROCESS=0``). The channels are made
    either way, so that a channel configured wrongly stops the service at start."""
    worker = make_worker(settings, db, clock, notification_item)
    return worker if settings.delivery_inprocess else None
