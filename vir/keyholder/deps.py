"""The key holder's services (what ``create_keyholder_app`` wires together) and the typed
dependencies its routes read from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from vir.domain.clock import Clock
from vir.keyholder.bearer import BearerVerifier
from vir.keyholder.epochs import KeyStore
from vir.keyholder.evaluation import EvaluationService
from vir.services.identity import Authenticator
from vir.services.integrator import Integrator
from vir.services.refusals import RefusalRecorder
from vir.services.transparency import TransparencyLog
from vir.store.db import Database


@dataclass(frozen=True)
class KeyholderServices:
    """What ``create_keyholder_app`` wires together (the attribute names the shared edge
    reads: ``db``, ``clock``, ``authenticator``, ``refusals``)."""

    db: Database
    clock: Clock
    authenticator: Authenticator
    refusals: RefusalRecorder
    transparency: TransparencyLog
    keys: KeyStore
    evaluation: EvaluationService
    integrator: Integrator
    bearer: BearerVerifier  # people's access tokens (vir.keyholder.bearer)


def _services(request: Request) -> KeyholderServices:
    services: KeyholderServices = request.app.state.services
    return services


async def database(request: Request) -> Database:
    return _services(request).db


async def clock(request: Request) -> Clock:
    return _services(request).clock


async def evaluation_service(request: Request) -> EvaluationService:
    return _services(request).evaluation


DatabaseDep = Annotated[Database, Depends(database)]
ClockDep = Annotated[Clock, Depends(clock)]
EvaluationDep = Annotated[EvaluationService, Depends(evaluation_service)]
