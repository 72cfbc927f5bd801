"""``GET /health`` and ``GET /ready``: say nothing about data.

``/health`` is liveness only: the process answers, to anyone (no client certificate).
``/ready`` is for a load balancer or a readiness probe, which presents a client
certificate of the client CA (``vir.api.identity.require_tls_client``: any, not an
organisation's; 401 without one): 200 ``{"status": "ready"}`` when the database
answers a trivial query, a SQLite database's folder can be written and its file
system has the free space ``VIR_READY_MIN_FREE_MB`` asks (a full disk fails every
commit: the instance should leave the pool, not answer 503 to every write), and the
key files pass the very checks the service's start-up makes (the same function:
present, a regular file, not accessible by group or others, and for the index
well-formed), so a restart would start (the index's checkpoint and webhook secret
keys; the key holder's served epoch's OPRF key and checkpoint key), else 503
problem+json (``urn:vir:problem:not-ready``) with ``Retry-After`` and the names of the
checks that failed (``database``, ``disk``, ``keys``): never a path, an error message
or a key. PostgreSQL's disk is the server's: its own monitoring watches it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from vir.api.blocking import blocking
from vir.api.errors import problem_response
from vir.api.identity import TlsClient
from vir.api.openapi import MUTUAL_TLS
from vir.api.problems import problem_responses
from vir.api.strict import StrictRoute
from vir.store.db import Database, sqlite_file

router = APIRouter(route_class=StrictRoute)
# Seconds a load balancer waits before asking again.
RETRY_AFTER = 5
DATABASE = "database"
DISK = "disk"
KEYS = "keys"


class Health(BaseModel):
    status: str


@dataclass(frozen=True)
class Readiness:
    """What ``/ready`` checks: the database, and ``check_keys``, the service's start-up
    check of its key files, which raises when a restart would be refused (None: only
    that the app was built, which needs its keys)."""

    db: Database | None
    check_keys: Callable[[], object] | None = None
    min_free_bytes: int = 0

    def not_ready(self) -> list[str]:
        """The names of the checks that fail, in a fixed order; empty when ready."""
        failed = []
        if not self._database():
            failed.append(DATABASE)
        if not self._disk():
            failed.append(DISK)
        if not self._keys():
            failed.append(KEYS)
        return failed

    def _disk(self) -> bool:
        """Whether a SQLite database's folder can be written and has ``min_free_bytes``
        free (for this process's user: ``f_bavail``); True for PostgreSQL."""
        if self.db is None or self.min_free_bytes <= 0:
            return True
        database = sqlite_file(str(self.db.engine.url))
        if database is None:
            return True
        folder = database.parent
        try:
            found = os.statvfs(folder)
        except OSError:
            return False
        writable = os.access(folder, os.W_OK) and (
            not database.exists() or os.access(database, os.W_OK)
        )
        read_only = bool(found.f_flag & os.ST_RDONLY)
        free = found.f_bavail * found.f_frsize
        return writable and not read_only and free >= self.min_free_bytes

    def _database(self) -> bool:
        if self.db is None:
            return False
        try:
            with self.db.read() as session:
                return session.execute(text("SELECT 1")).scalar() == 1
        except Exception:  # any failure means not ready; what failed is not for this answer
            return False

    def _keys(self) -> bool:
        if self.check_keys is None:
            return True
        try:
            self.check_keys()
        except Exception:  # what failed (a path, a mode) is not for this answer
            return False
        return True


def install_readiness(
    app: Any, db: Database, check_keys: Callable[[], object], min_free_bytes: int = 0
) -> None:
    """Tell ``/ready`` the database, the start-up key check a restart of ``app`` makes,
    and the free space a SQLite database's file system must have."""
    app.state.readiness = Readiness(db, check_keys, min_free_bytes)


def readiness_of(app: Any) -> Readiness:
    state = app.state
    found = getattr(state, "readiness", None)
    if isinstance(found, Readiness):
        return found
    # Not installed: the database of the app's services; the keys were loaded when the
    # services were built (create_app refuses to start without them).
    services = getattr(state, "services", None)
    db = getattr(services, "db", None)
    return Readiness(db if isinstance(db, Database) else None)


@router.get("/health", response_model=Health, tags=["service"])
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Health,
    tags=["service"],
    dependencies=[TlsClient],
    responses={
        **problem_responses(401),
        503: {"description": "Not ready: the problem names the failing checks."},
    },
    openapi_extra={"security": [{MUTUAL_TLS: []}]},
    description="Readiness: the database answers, its disk has room and the key files are "
    "in place. Needs a "
    "client certificate of the client CA (any, e.g. the monitoring system's own; it need "
    "not be an organisation's): 401 without one.",
)
@blocking
def ready(request: Request) -> Health | JSONResponse:
    failed = readiness_of(request.app).not_ready()
    if failed:
        return problem_response(
            503,
            "not-ready",
            "Not ready",
            "not ready: " + ", ".join(failed),
            headers={"Retry-After": str(RETRY_AFTER)},
            checks=failed,
        )
    return Health(status="ready")
