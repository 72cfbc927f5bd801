"""Typed dependencies: what routes get from the app, each read from one place.

``create_app`` puts one ``Services`` on ``app.state``; nothing else reads that untyped
bag. A route asks for the service it needs (``signals: SignalServiceDep``), so mypy
follows a request from the route into the service, and a test can override one
dependency instead of patching state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from vir.api.identity import ProxyTrust
from vir.api.metrics import Metrics, Network
from vir.domain.clock import Clock
from vir.services.consultations import ConsultationService
from vir.services.epochs import EpochBook
from vir.services.identity import Authenticator
from vir.services.integrator import Integrator
from vir.services.lifecycle import Lifecycle
from vir.services.privacy import PrivacyService
from vir.services.refusals import RefusalRecorder
from vir.services.reports import EvaluationCounts
from vir.services.signals import NotificationService, SignalService
from vir.services.transparency import TransparencyLog
from vir.store.db import Database


@dataclass(frozen=True)
class Services:
    """Everything ``create_app`` wires together, once per app."""

    db: Database
    clock: Clock
    authenticator: Authenticator
    epochs: EpochBook
    signals: SignalService
    notifications: NotificationService
    refusals: RefusalRecorder
    transparency: TransparencyLog
    lifecycle: Lifecycle
    consultations: ConsultationService
    privacy: PrivacyService
    integrator: Integrator
    # The key holder's evaluation counts for the privacy report (None: the index's own log).
    evaluation_counts: EvaluationCounts | None = None


def services_of(request: Request) -> Services:
    """The app's services: the one place that reads them from ``app.state``."""
    services: Services = request.app.state.services
    return services


# Plain (async) functions reading attributes: they run on the event loop, no thread hop.
async def database(request: Request) -> Database:
    return services_of(request).db


async def clock(request: Request) -> Clock:
    return services_of(request).clock


async def signal_service(request: Request) -> SignalService:
    return services_of(request).signals


async def notification_service(request: Request) -> NotificationService:
    return services_of(request).notifications


async def epoch_book(request: Request) -> EpochBook:
    return services_of(request).epochs


async def consultation_service(request: Request) -> ConsultationService:
    return services_of(request).consultations


async def privacy_service(request: Request) -> PrivacyService:
    return services_of(request).privacy


async def evaluation_counts(request: Request) -> EvaluationCounts | None:
    return services_of(request).evaluation_counts


async def transparency_log(request: Request) -> TransparencyLog:
    return services_of(request).transparency


async def metrics(request: Request) -> Metrics:
    found: Metrics = request.app.state.metrics
    return found


async def metrics_allow(request: Request) -> tuple[Network, ...]:
    allow: tuple[Network, ...] = request.app.state.metrics_allow
    return allow


async def proxy_trust(request: Request) -> ProxyTrust | None:
    trust: ProxyTrust | None = getattr(request.app.state, "proxy_trust", None)
    return trust


DatabaseDep = Annotated[Database, Depends(database)]
ClockDep = Annotated[Clock, Depends(clock)]
SignalServiceDep = Annotated[SignalService, Depends(signal_service)]
NotificationServiceDep = Annotated[NotificationService, Depends(notification_service)]
EpochsDep = Annotated[EpochBook, Depends(epoch_book)]
ConsultationServiceDep = Annotated[ConsultationService, Depends(consultation_service)]
PrivacyServiceDep = Annotated[PrivacyService, Depends(privacy_service)]
TransparencyDep = Annotated[TransparencyLog, Depends(transparency_log)]
EvaluationCountsDep = Annotated[EvaluationCounts | None, Depends(evaluation_counts)]
MetricsDep = Annotated[Metrics, Depends(metrics)]
MetricsAllowDep = Annotated[tuple[Network, ...], Depends(metrics_allow)]
ProxyTrustDep = Annotated[ProxyTrust | None, Depends(proxy_trust)]
