"""``create_app(settings)``: the only place the service is wired together."""

from __future__ import annotations

import functools

from fastapi import FastAPI

from vir import __version__
from vir.api import errors, openapi
from vir.api.deps import Services
from vir.api.headers import API_VERSION, ResponseHeaders
from vir.api.identity import proxy_trust
from vir.api.lifespan import Once, Periodic, periodic_lifespan
from vir.api.limits import BodySizeLimit
from vir.api.metrics import install as install_metrics
from vir.api.routes import audit, functions, health, metrics, oprf, privacy, reports, signals
from vir.crypto import oprf as group
from vir.crypto.evaluator import Evaluator, LocalEvaluator
from vir.crypto.keys import load_oprf_keyring
from vir.crypto.signing import load_signing_key
from vir.domain.clock import Clock, utc_now
from vir.domain.ratelimit import Limit, LimitKind
from vir.services.consultations import ConsultationService
from vir.services.identity import Authenticator, crl_marker
from vir.services.lifecycle import Lifecycle
from vir.services.privacy import PrivacyService
from vir.services.pseudonymisation import PseudonymisationService
from vir.services.refusals import RefusalRecorder
from vir.services.signals import NotificationService, SignalService
from vir.services.transparency import TransparencyLog
from vir.settings import Settings
from vir.store.db import Database
from vir.store.migrate import require_current
from vir.store.ratelimits import RateLimits


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    evaluator: Evaluator | None = None,
) -> FastAPI:
    """Build the app; raises ConfigurationError (with how to fix it) when it must not start."""
    group.require_strict_backend()
    if evaluator is None:
        evaluator = LocalEvaluator(load_oprf_keyring(settings.keys_dir))
    signer = load_signing_key(settings.keys_dir, settings.audit_origin)
    trust = proxy_trust(settings.tls_mode, settings.trusted_proxies)
    db = Database.connect(settings.database_url)
    require_current(db.engine)
    limits = rate_limits(settings)
    services = Services(
        db=db,
        clock=clock,
        authenticator=Authenticator(
            db,
            clock,
            revocation_marker=crl_marker(settings.client_crl) if settings.client_crl else None,
        ),
        pseudonymisation=PseudonymisationService(evaluator, db, limits, clock),
        signals=SignalService(db, clock, evaluator.epoch, settings.information_duty_days, limits),
        notifications=NotificationService(db, clock),
        refusals=RefusalRecorder(db, clock, settings.refusal_entries_per_minute),
        transparency=TransparencyLog(db, signer, clock),
        lifecycle=Lifecycle(db, clock),
        consultations=ConsultationService(db, clock, limits),
        privacy=PrivacyService(db, clock, settings.information_duty_days, limits),
    )
    jobs = [
        Periodic(
            "audit.checkpoint",
            settings.checkpoint_interval_seconds,
            services.transparency.checkpoint,
        ),
        Periodic("lifecycle.run", settings.lifecycle_interval_seconds, services.lifecycle.run),
        Periodic("refusals.flush", settings.refusal_flush_seconds, services.refusals.flush),
    ]
    # Counts of refusals left by an instance that stopped or crashed; at stop, this one's.
    at_start = [Once("refusals.flush", services.refusals.flush)]
    at_stop = [Once("refusals.flush", functools.partial(services.refusals.flush, final=True))]
    app = FastAPI(
        lifespan=periodic_lifespan(jobs, at_start, at_stop),
        title="vir",
        version=API_VERSION,
        description="Privacy-preserving signal index (Verwijsindex). Mutual TLS on every "
        "endpoint except /health, /metrics (VIR_METRICS_ALLOW only) and this document "
        "(/openapi.json, /v1/openapi.json); errors are application/problem+json. "
        f"Served by vir {__version__}.",
        # Swagger UI and ReDoc load their scripts from a CDN: not served (docs/api.md).
        docs_url=None,
        redoc_url=None,
        # /v1/signals/ is not /v1/signals: no redirect, a 404 problem.
        redirect_slashes=False,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.services = services
    app.state.clock = clock
    app.state.proxy_trust = trust
    errors.install(app)
    app.include_router(health.router)
    app.include_router(oprf.router)
    app.include_router(signals.router)
    app.include_router(functions.router)
    app.include_router(privacy.router)
    app.include_router(reports.router)
    app.include_router(audit.router)
    app.include_router(metrics.router)
    # /ready checks the database and the key files a restart would load.
    local_epoch = evaluator.epoch if isinstance(evaluator, LocalEvaluator) else None
    health.install_readiness(app, db, settings.keys_dir, local_epoch)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_metrics(app, db, settings.metrics_allow)  # GET /metrics, request ids, access log
    contact = {
        "name": settings.api_contact_name,
        "email": settings.api_contact_email,
        "url": settings.api_contact_url,
    }
    openapi.install(app, contact)
    # Outside everything, Starlette's ServerErrorMiddleware included, so that even the
    # answer to an unexpected exception (500) carries API-Version and the security headers.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: ResponseHeaders(build())  # type: ignore[method-assign]
    return app


def rate_limits(settings: Settings) -> RateLimits:
    """The per-organisation limits of ``settings``, in buckets shared through the database."""
    return RateLimits(
        {
            LimitKind.OPRF: Limit(settings.oprf_rate_per_second, settings.oprf_burst),
            LimitKind.REGISTER: Limit.per_hour(settings.register_per_hour, settings.register_burst),
            LimitKind.WITHDRAW: Limit.per_hour(settings.withdraw_per_hour, settings.withdraw_burst),
            LimitKind.PRIVACY_LOOKUP: Limit.per_hour(
                settings.privacy_lookups_per_hour, settings.privacy_lookup_burst
            ),
            LimitKind.CONSULTATION: Limit(settings.consult_rate_per_second, settings.consult_burst),
        }
    )
