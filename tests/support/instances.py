"""Several app instances (``create_app``) in-process on one fresh store, sharing a clock
that tests move: what two ``vir serve`` processes on one database are, minus TLS.

As in ``support.inapp`` there is no client certificate: ``Instances.acting`` stands in
for the verified one on every instance (the caller, and the claim a refusal records),
and a request's ``peer`` is the TCP peer the app sees.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from sqlalchemy import select
from support.inapp import call_app, monitor_certificate, presenting
from support.instore import T0, fresh_store, template
from support.world import MUNICIPALITY, VEILIG_THUIS, Clock

from vir.api.app import create_app
from vir.api.identity import require_caller
from vir.audit.chain import AuditEvent, verify_chain
from vir.crypto.keys import init_oprf_key
from vir.crypto.signing import init_signing_key
from vir.keyholder.app import create_keyholder_app
from vir.keyholder.routes import require_evaluator
from vir.keyholder.settings import KeyholderSettings
from vir.services.identity import Caller, Presented
from vir.services.onboarding import register_organisation
from vir.settings import Settings
from vir.store import audit_log
from vir.store.db import Database
from vir.store.tables import AuditEntryRow

ATTACKER = "203.0.113.7"
MINUTE = dt.timedelta(minutes=1)


@dataclass
class Instances:
    apps: list[FastAPI]
    clock: Clock
    db: Database  # the store's own connection, for reading what the apps wrote
    acting: Caller | None = field(default=None)

    def act_as(self, caller: Caller | None) -> None:
        """Every instance takes requests to come from ``caller`` (None: no certificate)."""
        self.acting = caller
        for app in self.apps:
            # The key holder's evaluate takes a certificate or a bearer token
            # (require_evaluator): standing in for the certificate covers both.
            for dependency in (require_caller, require_evaluator):
                if caller is None:
                    app.dependency_overrides.pop(dependency, None)
                else:
                    app.dependency_overrides[dependency] = self._verified

    async def _verified(self, request: Request) -> Caller:
        caller = self.acting
        assert caller is not None
        # What the certificate would have claimed: refusals record it.
        request.state.claim = Presented(caller.oin, caller.certificate)
        request.state.claim_believed = True
        return caller

    def requests(
        self, calls: list[tuple[int, str, str, dict[str, Any]]], peer: str = ATTACKER
    ) -> list[httpx.Response]:
        """``(instance, method, path, httpx keyword arguments)`` one after the other."""

        async def run() -> list[httpx.Response]:
            clients = [
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(
                        app=app, raise_app_exceptions=False, client=(peer, 50000)
                    ),
                    base_url="http://vir",
                )
                for app in self.apps
            ]
            try:
                return [
                    await clients[n].request(method, path, **kwargs)
                    for n, method, path, kwargs in calls
                ]
            finally:
                for client in clients:
                    await client.aclose()

        return asyncio.run(run())

    def request(
        self, instance: int, method: str, path: str, peer: str = ATTACKER, **kwargs: Any
    ) -> httpx.Response:
        return self.requests([(instance, method, path, kwargs)], peer)[0]

    def metrics(self, instance: int) -> str:
        """The instance's ``/metrics``, scraped as a monitoring system does (a certificate
        of its own, from this host)."""
        app: Any = presenting(self.apps[instance], monitor_certificate())
        return call_app(app, "GET", "/metrics", "127.0.0.1", {}).text

    def events(self, action: str | None = None) -> list[AuditEvent]:
        self.db.integrate()
        with self.db.read() as session:
            query = select(AuditEntryRow.body).order_by(AuditEntryRow.seq)
            if action is not None:
                query = query.where(AuditEntryRow.action == action)
            return [AuditEvent.decode(bytes(b)) for b in session.scalars(query)]

    def chain_intact(self) -> bool:
        self.db.integrate()
        with self.db.read() as session:
            return verify_chain(audit_log.stored_entries(session)).intact

    def flush_refusals(self) -> int:
        """Move past the minute and write its refusal counts (what any instance's periodic
        job does); returns the entries written."""
        self.clock.now += MINUTE
        return int(self.apps[0].state.services.refusals.flush())

    def lifespan(self, instance: int) -> Any:
        """The instance's lifespan (start and stop jobs), as a server would run it."""
        return self.apps[instance].router.lifespan_context(self.apps[instance])


def refused_count(events: list[AuditEvent]) -> int:
    """The refused requests ``request.refused`` entries stand for (their counts)."""
    counts = [e.objects.get("count", 1) for e in events]
    return sum(c if isinstance(c, int) else 1 for c in counts)


@contextmanager
def instances(
    tmp_path: Path, count: int = 2, *, keyholder: bool = False, **settings: Any
) -> Iterator[Instances]:
    """``count`` index instances on one store; ``keyholder``: key holder instances instead
    (``create_keyholder_app``, its settings), on a store of their own."""
    keys = tmp_path / "keys"
    if keyholder:
        init_oprf_key(keys)
    init_signing_key(keys)
    clock = Clock(T0)
    with fresh_store(template(tmp_path), tmp_path / "instances.sqlite") as store:
        for org in (MUNICIPALITY, VEILIG_THUIS):
            register_organisation(store.db, org, T0)
        url = store.db.engine.url.render_as_string(hide_password=False)
        common: dict[str, Any] = {
            "database_url": url,
            "keys_dir": keys,
            "checkpoint_interval_seconds": 0,
            "refusal_flush_seconds": 0,
        }
        if keyholder:
            held = KeyholderSettings(**common, retire_interval_seconds=0, **settings)
            apps = [create_keyholder_app(held, clock=clock) for _ in range(count)]
        else:
            config = Settings(**common, lifecycle_interval_seconds=0, **settings)
            apps = [create_app(config, clock=clock) for _ in range(count)]
        try:
            yield Instances(apps, clock, store.db)
        finally:
            for app in apps:
                app.state.services.db.dispose()
