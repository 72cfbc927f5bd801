"""The whole app in-process (``create_app``) on a fresh store, for ASGI-level tests.

No TLS here, so no client certificate: ``as_caller`` stands in for the verified
certificate by overriding the ``CurrentCaller`` dependency, and ``peer`` is the
TCP peer the app sees (``scope["client"]``).
"""

from __future__ import annotations

import asyncio
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
from vir.crypto.keys import init_oprf_key
from vir.crypto.signing import init_signing_key
from vir.domain.encoding import b64url_encode
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
        return caller

    def anonymous(self) -> None:
        self.app.dependency_overrides.pop(require_caller, None)

    def request(
        self, method: str, path: str, *, peer: str = "127.0.0.1", **kwargs: Any
    ) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(
                app=self.app, raise_app_exceptions=False, client=(peer, 50000)
            )
            async with httpx.AsyncClient(transport=transport, base_url="http://vir") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())


def signal_body(local_ref: str, who: str, epoch: int) -> dict[str, Any]:
    return {
        "local_ref": local_ref,
        "epoch": epoch,
        "person": b64url_encode(person(who)),
        "professional": {"name": "Anna de Vries", "email": "anna@school.example"},
    }


def realistic_run(app: InApp) -> dict[str, list[str]]:
    """Two organisations register about one young person (a match), plus refusals of
    several kinds; returns the identifiers that went in, to look for afterwards."""
    epoch = app.app.state.services.pseudonymisation.epoch
    invalid = b64url_encode(b"\xff" * 32)
    blinded = b64url_encode(person("Sam"))
    refs = ["LLN-2026-000123", "HA-99887766"]
    app.as_caller(0)
    assert app.request("POST", "/v1/signals", json=signal_body(refs[0], "Kim", epoch)).is_success
    app.as_caller(1)
    assert app.request("POST", "/v1/signals", json=signal_body(refs[1], "Kim", epoch)).is_success
    statuses = [
        # a withdrawal reason outside the list (and BSN-shaped): 422, refused as invalid_input
        app.request("DELETE", f"/v1/signals/{refs[1]}", params={"reason": "BSN123456782"}),
        # not a canonical element: refused as invalid_element
        app.request("POST", "/v1/oprf/evaluate", json={"blinded_elements": [invalid]}),
        app.request("POST", "/v1/oprf/evaluate", json={"blinded_elements": [blinded]}),
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
    assert [r.status_code for r in statuses] == [422, 422, 200, 404, 404, 401, 405, 404]
    app.app.state.services.lifecycle.run()
    db = app.app.state.services.db
    with db.read() as session:
        events = [
            AuditEvent.decode(bytes(b))
            for b in session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        ]
    ids = {str(v) for e in events for v in e.objects.values() if isinstance(v, str)}
    ids |= {e.organisation for e in events if e.organisation}
    ids |= {e.certificate for e in events if e.certificate}
    return {
        "local_refs": refs,
        "oins": [str(o.oin) for o in ORGS],
        "pseudonyms": [b64url_encode(person("Kim")), blinded, invalid, person("Kim").hex()],
        "ids": sorted(i for i in ids if _ID.fullmatch(i)),  # signal, match, OIN, certificate
        "bsn": ["123456782", "BSN123456782"],
    }


@contextmanager
def in_app(tmp_path: Path, **settings: Any) -> Iterator[InApp]:
    keys = tmp_path / "keys"
    init_oprf_key(keys)
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
