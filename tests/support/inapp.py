"""The whole app in-process on a fresh store, for ASGI-level tests: the index
(``create_app``, ``in_app``) or the key holder (``create_keyholder_app``,
``in_keyholder``), each with its own store and keys directory.

No TLS here, so no client certificate: ``as_caller`` stands in for the verified
certificate by overriding the ``CurrentCaller`` dependency, and ``peer`` is the
TCP peer the app sees (``scope["client"]``). ``scrape`` asks ``/metrics`` or
``/ready`` as a monitoring system does, with a certificate of its own (``MONITOR``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from support.instore import ORGS, T0, fresh_store, template
from support.world import person

from vir.api.app import create_app
from vir.api.identity import require_caller
from vir.audit.chain import AuditEvent
from vir.crypto import pki
from vir.crypto.keys import init_oprf_key
from vir.crypto.signing import init_signing_key
from vir.domain.encoding import b64url_encode
from vir.keyholder.app import create_keyholder_app
from vir.keyholder.routes import require_evaluator
from vir.keyholder.settings import KeyholderSettings
from vir.services.identity import Caller
from vir.settings import Settings
from vir.store.tables import AuditEntryRow

_ID = re.compile(r"[0-9a-f-]{32,}|[0-9]{20}")


@dataclass
class InApp:
    app: FastAPI

    def as_caller(self, index: int) -> Caller:
        caller = Caller(ORGS[index], f"{index:064x}")
        self.app.dependency_overrides[require_caller] = lambda: caller
        # The key holder's evaluate: a certificate or a person's token (vir.keyholder.routes).
        self.app.dependency_overrides[require_evaluator] = lambda: caller
        return caller

    @property
    def epoch(self) -> int:
        """The index's current key epoch (of its stored pseudonyms); the key holder's
        served epoch."""
        services = self.app.state.services
        if hasattr(services, "keys"):
            return int(services.keys.current().epoch)
        return int(services.epochs.current())

    def anonymous(self) -> None:
        self.app.dependency_overrides.pop(require_caller, None)
        self.app.dependency_overrides.pop(require_evaluator, None)

    def request(
        self,
        method: str,
        path: str,
        *,
        peer: str = "127.0.0.1",
        certificate: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request; ``certificate``: a client certificate (PEM) handed over as the
        embedded server hands over the one it verified, for the app to authenticate
        (no ``as_caller`` standing in then)."""
        app: Any = self.app
        if certificate is not None:
            assert require_caller not in self.app.dependency_overrides, "call anonymous() first"
            app = presenting(self.app, certificate)
        return call_app(app, method, path, peer, kwargs)

    def scrape(self, path: str = "/metrics", *, peer: str = "127.0.0.1") -> httpx.Response:
        """``GET path`` (``/metrics``, ``/ready``) with a monitoring system's certificate,
        handed over as the embedded server hands over the one it verified."""
        return call_app(presenting(self.app, monitor_certificate()), "GET", path, peer, {})


def call_app(app: Any, method: str, path: str, peer: str, kwargs: dict[str, Any]) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://vir") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(call())


@functools.cache
def monitor_certificate() -> str:
    """A monitoring system's client certificate (PEM), of no registered organisation:
    what ``/metrics`` and ``/ready`` need (vir.api.identity.require_tls_client)."""
    # Valid from the apps' clock (T0) to a day from now: the app checks the validity on
    # its own clock, a real server's handshake on the wall clock.
    start, now = min(T0, dt.datetime.now(dt.UTC)), dt.datetime.now(dt.UTC)
    ca = pki.create_ca("monitoring test CA", start - dt.timedelta(days=1))
    issued = pki.issue_client_certificate(
        ca, "00000099999999999999", "Monitoring", start, now + dt.timedelta(days=1)
    )
    return pki.cert_pem(issued.cert).decode()


def presenting(app: FastAPI, pem: str) -> Any:
    """``app`` behind a TLS server that verified ``pem`` (ASGI's TLS extension)."""

    async def with_certificate(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            tls = {"client_cert_chain": [pem]}
            scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": tls}}
        await app(scope, receive, send)

    return with_certificate


def signal_body(local_ref: str, who: str, epoch: int) -> dict[str, Any]:
    return {
        "local_ref": local_ref,
        "epoch": epoch,
        "person": b64url_encode(person(who)),
        "professional": {"name": "Anna de Vries", "email": "anna@school.example"},
    }


def _audit_ids(db: Any) -> set[str]:
    """The identifiers (signal, match, OIN, certificate) the audit log of ``db`` holds."""
    db.integrate()
    with db.read() as session:
        events = [
            AuditEvent.decode(bytes(b))
            for b in session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        ]
    ids = {str(v) for e in events for v in e.objects.values() if isinstance(v, str)}
    ids |= {e.organisation for e in events if e.organisation}
    ids |= {e.certificate for e in events if e.certificate}
    return {i for i in ids if _ID.fullmatch(i)}


def realistic_run(app: InApp) -> dict[str, list[str]]:
    """Two organisations register about one young person (a match), plus refusals of
    several kinds; returns the identifiers that went in, to look for afterwards."""
    epoch = app.epoch
    refs = ["LLN-2026-000123", "HA-99887766"]
    app.as_caller(0)
    assert app.request("POST", "/v1/signals", json=signal_body(refs[0], "Kim", epoch)).is_success
    app.as_caller(1)
    assert app.request("POST", "/v1/signals", json=signal_body(refs[1], "Kim", epoch)).is_success
    statuses = [
        # a withdrawal reason outside the list (and BSN-shaped): 422, refused as invalid_input
        app.request("DELETE", f"/v1/signals/{refs[1]}", params={"reason": "BSN123456782"}),
        app.request("GET", "/v1/matches", params={"local_ref": "NO-SUCH-REF"}),
        # another organisation's local_ref: 404
        app.request("DELETE", f"/v1/signals/{refs[0]}", params={"reason": "risk_ended"}),
    ]
    app.anonymous()
    statuses += [
        app.request("DELETE", f"/v1/signals/{refs[0]}?reason=risk_ended"),  # 401: no certificate
        app.request("PUT", f"/v1/signals/{refs[0]}"),  # no such method: 405
        app.request("GET", "/v1/no/such/path/123456782"),  # no such route: 404
    ]
    assert [r.status_code for r in statuses] == [422, 404, 404, 401, 405, 404]
    app.app.state.services.lifecycle.run()
    return {
        "local_refs": refs,
        "oins": [str(o.oin) for o in ORGS],
        "pseudonyms": [b64url_encode(person("Kim")), person("Kim").hex()],
        "ids": sorted(_audit_ids(app.app.state.services.db)),  # signal, match, OIN, cert
        "bsn": ["123456782", "BSN123456782"],
    }


def keyholder_run(holder: InApp) -> dict[str, list[str]]:
    """An organisation evaluates at the key holder, with refusals of several kinds;
    returns the elements and identifiers that went in or came out, to look for
    afterwards."""
    invalid = b64url_encode(b"\xff" * 32)
    blinded = b64url_encode(person("Sam"))
    holder.as_caller(0)
    good = holder.request("POST", "/v1/oprf/evaluate", json={"blinded_elements": [blinded]})
    statuses = [
        good,
        # not a canonical element: refused as invalid_element
        holder.request("POST", "/v1/oprf/evaluate", json={"blinded_elements": [invalid]}),
        holder.request("GET", "/v1/oprf/epochs"),
    ]
    holder.anonymous()
    statuses += [
        # 401: no certificate
        holder.request("POST", "/v1/oprf/evaluate", json={"blinded_elements": [blinded]}),
        holder.request("PUT", "/v1/oprf/evaluate"),  # no such method: 405
        holder.request("GET", "/v1/no/such/path/123456782"),  # no such route: 404
    ]
    assert [r.status_code for r in statuses] == [200, 422, 200, 401, 405, 404]
    (evaluated,) = good.json()["evaluated_elements"]
    return {
        "oins": [str(ORGS[0].oin)],
        "elements": [blinded, invalid, evaluated, person("Sam").hex()],
        "ids": sorted(_audit_ids(holder.app.state.services.db)),  # OIN, certificate
        "bsn": ["123456782"],
    }


@contextmanager
def in_app(tmp_path: Path, **settings: Any) -> Iterator[InApp]:
    """The index; its keys directory holds its checkpoint key only (never an OPRF key)."""
    keys = tmp_path / "keys"
    init_signing_key(keys)
    with fresh_store(template(tmp_path), tmp_path / "app.sqlite") as store:
        url = store.db.engine.url.render_as_string(hide_password=False)
        config = Settings(
            database_url=url,
            keys_dir=keys,
            checkpoint_interval_seconds=0,
            lifecycle_interval_seconds=0,
            **settings,
        )
        app = create_app(config, clock=lambda: T0)
        try:
            yield InApp(app)
        finally:
            app.state.services.db.dispose()


@contextmanager
def in_keyholder(tmp_path: Path, **settings: Any) -> Iterator[InApp]:
    """The key holder, on a store and keys directory of its own (``tmp_path/keyholder``):
    an OPRF key for epoch 1 and its checkpoint key."""
    folder = tmp_path / "keyholder"
    keys = folder / "keys"
    init_oprf_key(keys)
    init_signing_key(keys)
    with fresh_store(template(tmp_path), folder / "keyholder.sqlite") as store:
        url = store.db.engine.url.render_as_string(hide_password=False)
        config = KeyholderSettings(
            database_url=url,
            keys_dir=keys,
            checkpoint_interval_seconds=0,
            retire_interval_seconds=0,
            **settings,
        )
        app = create_keyholder_app(config, clock=lambda: T0)
        try:
            yield InApp(app)
        finally:
            app.state.services.db.dispose()
