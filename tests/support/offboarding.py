"""An index in-process with real certificates, for offboarding an organisation
(``vir org remove``, vir.services.offboarding): the school (``ORGS[0]``) is the one
that leaves, the GP (``ORGS[1]``) its match partner."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from support.clirun import Ran, run_vir
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS, T0

from vir.crypto import pki
from vir.delivery.email import configure_organisation
from vir.domain.organisations import Role
from vir.services.onboarding import register_certificate
from vir.store.db import Database
from vir.store.tables import (
    AuditEntryRow,
    Base,
    OrganisationOidcRow,
    PortalSessionRow,
    WebhookRow,
)

SCHOOL, GP, YOUTH_CARE = 0, 1, 2
CA = pki.create_ca("offboarding test CA", T0 - dt.timedelta(days=1))
# Valid for 30 days from T0: expired long before an archive term ends.
VALID_UNTIL = T0 + dt.timedelta(days=30)
# When the operator offboards: the app's clock (a revocation at the wall clock's now
# would lie in the app's future).
AFTER = T0


@dataclass
class Index:
    app: InApp
    pems: dict[tuple[int, Role], str]
    fingerprints: dict[tuple[int, Role], str]

    @property
    def db(self) -> Database:
        db: Database = self.app.app.state.services.db
        return db

    def oin(self, org: int) -> str:
        return str(ORGS[org].oin)

    def with_certificate(
        self, org: int, method: str, path: str, role: Role = Role.SYSTEM, **kwargs: Any
    ) -> httpx.Response:
        self.app.anonymous()
        return self.app.request(method, path, certificate=self.pems[org, role], **kwargs)

    def register(self, org: int, ref: str, child: str) -> None:
        self.app.as_caller(org)
        reply = self.app.request("POST", "/v1/signals", json=signal_body(ref, child, 1))
        assert reply.status_code == 201, reply.text

    def withdraw(self, org: int, ref: str, reason: str) -> httpx.Response:
        self.app.as_caller(org)
        return self.app.request("DELETE", f"/v1/signals/{ref}", params={"reason": reason})

    def notifications(self, org: int) -> list[dict[str, Any]]:
        self.app.as_caller(org)
        reply = self.app.request("GET", "/v1/notifications", params={"limit": 500})
        assert reply.status_code == 200, reply.text
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def matches(self, org: int, ref: str) -> list[str]:
        self.app.as_caller(org)
        reply = self.app.request("GET", "/v1/matches", params={"local_ref": ref})
        assert reply.status_code == 200, reply.text
        return sorted(m["via"] for m in reply.json()["matches"])

    def audit(self, action: str | None = None) -> list[dict[str, Any]]:
        self.db.integrate()
        with self.db.read() as session:
            bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
            entries = [json.loads(bytes(b)) for b in bodies]
        return [e for e in entries if action is None or e["action"] == action]

    def rows_of(self, org: int) -> dict[str, int]:
        """How many rows of each table name the organisation (its ``oin`` column)."""
        counts = {}
        with self.db.read() as session:
            for table in Base.metadata.sorted_tables:
                if "oin" in table.c:
                    found = session.scalar(
                        select(func.count()).select_from(table).where(table.c.oin == self.oin(org))
                    )
                    if found:
                        counts[table.name] = int(found)
        return counts

    def configure_delivery(self, org: int) -> None:
        """A webhook, e-mail, portal sign-in and a signed-in person for ``org``."""
        oin = self.oin(org)
        configure_organisation(self.db, oin, T0, enabled=True)
        with self.db.write() as session:
            session.add(
                WebhookRow(
                    oin=oin, url="https://school.example/hook", secret="whsec_x", updated_at=T0
                )
            )
            session.add(
                OrganisationOidcRow(
                    oin=oin,
                    issuer="https://idp.school.example",
                    client_id="vir",
                    client_secret="s",
                    person_claim="sub",
                    role_claim="roles",
                    roles="{}",
                    acr=None,
                    organisation_claim=None,
                    updated_at=T0,
                )
            )
            session.add(
                PortalSessionRow(
                    id_hash="a" * 64,
                    oin=oin,
                    person="b" * 64,
                    name="Els Visser",
                    roles="professional",
                    csrf="c" * 64,
                    created_at=T0,
                    last_seen_at=T0,
                )
            )

    def vir(self, *args: str, now: dt.datetime = AFTER) -> Ran:
        """``vir ARGS`` on the index's database, its clock at ``now``."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("vir.cli.utc_now", lambda: now)
            return run_vir(self.db, *args)


@contextmanager
def index(tmp_path: Path) -> Iterator[Index]:
    with in_app(tmp_path) as app:
        db = app.app.state.services.db
        pems, fingerprints = {}, {}
        for org in (SCHOOL, GP):
            for role in (Role.SYSTEM, Role.COORDINATOR):
                issued = pki.issue_client_certificate(
                    CA, str(ORGS[org].oin), ORGS[org].name, T0 - dt.timedelta(hours=1), VALID_UNTIL
                )
                fingerprints[org, role] = register_certificate(db, issued.cert, T0, role)
                pems[org, role] = pki.cert_pem(issued.cert).decode("ascii")
        yield Index(app, pems, fingerprints)
