"""The key holder's typed dependencies, each read from its one ``KeyholderServices``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from vir.domain.clock import Clock
from vir.keyholder.evaluation import EvaluationService
from vir.store.db import Database

if TYPE_CHECKING:
    from vir.keyholder.app import KeyholderServices


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
