"""``create_keyholder_app(settings)``: the key holder wired together.

The same edge as the index (mutual TLS identities from its own organisation
registry, problem+json, refusal accounting, metrics, ``/ready``, the API headers) and
the same audit code (a hash-chained log with signed checkpoints of its own), around
two routes: evaluate, and the list of epochs. Evaluate also takes a person's access
token from the portal's page (vir.keyholder.bearer), with CORS for the portal's
origins only (vir.keyholder.cors).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vir import __version__
from vir.api import openapi
from vir.api.app import assemble
from vir.api.errors import record_refusal, vir_error_response
from vir.api.headers import API_VERSION
from vir.api.identity import proxy_trust
from vir.api.lifespan import Periodic, service_lifespan
from vir.api.metrics import NO_TELEMETRY
from vir.api.routes import health, metrics
from vir.crypto import oprf
from vir.domain.clock import Clock, utc_now
from vir.domain.errors import ConfigurationError, TokenRefused
from vir.domain.ratelimit import Limit, LimitKind
from vir.keyholder import epochs, routes, usage
from vir.keyholder.bearer import BearerVerifier, ProviderKeys, person_key
from vir.keyholder.cors import PortalCors, parse_origins
from vir.keyholder.custody import Custody
from vir.keyholder.deps import KeyholderServices
from vir.keyholder.evaluation import EvaluationService
from vir.keyholder.settings import KeyholderSettings
from vir.services.identity import Authenticator
from vir.services.integrator import Integrator
from vir.services.refusals import RefusalRecorder
from vir.services.transparency import TransparencyLog
from vir.store.db import Database
from vir.store.migrate import require_current
from vir.store.ratelimits import RateLimits


def create_keyholder_app(settings: KeyholderSettings, *, clock: Clock = utc_now) -> FastAPI:
    """Build the key holder; ConfigurationError (with how to fix it) when it must not start:
    no key for the served epoch, a key readable by others, a wrong HSM PIN, an old schema."""
    oprf.require_strict_backend()
    custody = Custody.open(settings)
    db = Database.connect(settings.database_url)
    require_current(db.engine, "VIR_KEYHOLDER_DATABASE_URL")
    origins = parse_origins(settings.portal_origins)
    # The OPRF keys first: when they are wrapped but no HSM is configured, that is what
    # to say (the checkpoint key is then in the token too, and its file gone).
    keys = epochs.KeyStore(settings.keys_dir, db, load=custody.load_keyring)
    signer = custody.signer(settings.audit_origin)
    require_threshold(keys.current().share_index, settings.threshold)
    limits = RateLimits(
        {
            LimitKind.OPRF: Limit(settings.oprf_rate_per_second, settings.oprf_burst),
            LimitKind.OPRF_HOURLY: Limit.per_hour(settings.oprf_per_hour, settings.oprf_per_hour),
        }
    )
    services = KeyholderServices(
        db=db,
        clock=clock,
        authenticator=Authenticator(db, clock),
        refusals=RefusalRecorder(db, clock, settings.refusal_entries_per_minute),
        transparency=TransparencyLog(db, signer, clock),
        keys=keys,
        evaluation=EvaluationService(keys, db, limits, clock, settings.threshold),
        integrator=Integrator(db),
        bearer=BearerVerifier(db, ProviderKeys(settings.oidc_ca), person_key(signer), clock),
    )

    def retire() -> list[int]:
        return epochs.retire(db, settings.keys_dir, clock())

    app = FastAPI(
        telemetry=NO_TELEMETRY,
        lifespan=service_lifespan(
            services.integrator,
            services.transparency.checkpoint,
            settings.checkpoint_interval_seconds,
            services.refusals.flush,
            settings.refusal_flush_seconds,
            Periodic("epochs.retire", settings.retire_interval_seconds, retire),
        ),
        title="vir key holder",
        version=API_VERSION,
        description="The key holder of vir: evaluates the OPRF (RFC 9497, "
        "ristretto255-SHA512) on blinded elements for organisations, and lists its key "
        "epochs. It never sees an identity or a pseudonym. Mutual TLS on every endpoint "
        "except /health and this document: /ready and /metrics take any client "
        "certificate of the client CA (a monitoring system's own), /metrics only from "
        "VIR_KEYHOLDER_METRICS_ALLOW; errors are application/problem+json. Request bodies "
        "are JSON in UTF-8 (another Content-Type, or none: 415 unsupported-media-type; not UTF-8: "
        "400 malformed-json) of at most VIR_KEYHOLDER_MAX_BODY_BYTES (16 KiB by default; "
        f"over it: 413). Served by vir {__version__}.",
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.services = services
    app.state.clock = clock
    app.state.proxy_trust = proxy_trust(
        settings.tls_mode, settings.trusted_proxies, "VIR_KEYHOLDER_"
    )
    for router in (health.router, routes.router, usage.router, metrics.router):
        app.include_router(router)
    contact = {
        "name": settings.api_contact_name,
        "email": settings.api_contact_email,
        "url": settings.api_contact_url,
    }
    assemble(app, db, lambda: custody.check_key_files(keys.current().epoch), settings, contact)
    app.add_exception_handler(TokenRefused, _token_refused)
    app.add_middleware(PortalCors, origins=origins)
    _document_bearer(app)
    return app


BEARER = "bearerAccessToken"


async def _token_refused(request: Request, error: Exception) -> JSONResponse:
    """401 with the RFC 6750 challenge; the refusal audited with its fixed code (never
    the token), as every refusal is (vir.api.errors)."""
    assert isinstance(error, TokenRefused)
    await run_in_threadpool(record_refusal, request, error.code)
    return vir_error_response(error)


def _document_bearer(app: FastAPI) -> None:
    """The OpenAPI document: evaluate takes a client certificate or a Bearer token.
    Made now and amended in place: both /openapi.json and /v1/openapi.json serve the
    one document FastAPI keeps."""
    spec: dict[str, Any] = app.openapi()
    spec["components"]["securitySchemes"][BEARER] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "a person's OAuth access token (RFC 9068 JWT, typ at+jwt) from "
        "their organisation's OpenID provider, as configured at this key holder (vir "
        "keyholder oidc): for the portal's page, which calls from the person's browser. "
        "A request with a client certificate is judged by the certificate only.",
    }
    operation = spec["paths"]["/v1/oprf/evaluate"]["post"]
    operation["security"] = [{openapi.MUTUAL_TLS: []}, {BEARER: []}]


def require_threshold(share_index: int | None, threshold: int) -> None:
    """A share is served only with its deployment's t (>= 2), a whole key only with t = 1:
    every answer states t, and a client combines that many."""
    if share_index is not None and threshold < 2:
        raise ConfigurationError(
            "this key holder's key is a Shamir share: set VIR_KEYHOLDER_THRESHOLD to the "
            "deployment's t (2 or more)"
        )
    if share_index is None and threshold != 1:
        raise ConfigurationError(
            "VIR_KEYHOLDER_THRESHOLD is above 1, but this key holder's key is a whole key, "
            "not a share"
        )
