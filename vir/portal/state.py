"""The portal's state (``Portal``): settings, database, clock, providers, templates, the
signed-in people's access tokens and the scripts' integrity values; shared by the web
layer (vir.portal.app) and the professional's pages (vir.portal.pages)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent
from vir.domain import functions
from vir.domain.clock import Clock
from vir.portal import oidc, sessions
from vir.portal.config import PortalRole
from vir.portal.forms import FormTooLarge
from vir.portal.settings import PortalSettings
from vir.portal.tokens import AccessTokens
from vir.store import audit_log
from vir.store.db import Database
from vir.store.tables import OrganisationRow

SESSION_COOKIE = "__Host-vir-portal"
_HERE = Path(__file__).parent
_FORM = "application/x-www-form-urlencoded"
# The scripts pages load, each with Subresource Integrity (``Portal.integrity``).
SCRIPTS = ("vir-blind.js", "pseudonym-form.js", "register.js", "officer-access.js")


def _integrity(name: str) -> str:
    digest = hashlib.sha384((_HERE / "static" / name).read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


_LOCAL = ZoneInfo("Europe/Amsterdam")


def _date(value: dt.date) -> str:
    return value.strftime("%d-%m-%Y")


def _moment(value: dt.datetime) -> str:
    """A stored moment (UTC) as Dutch local time."""
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return moment.astimezone(_LOCAL).strftime("%d-%m-%Y %H:%M")


class Portal:
    """The portal's state: settings, database, clock, providers, templates, the
    signed-in people's access tokens and the scripts' integrity values."""

    def __init__(
        self, settings: PortalSettings, db: Database, clock: Clock, providers: oidc.Providers
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.providers = providers
        self.idle = dt.timedelta(minutes=settings.idle_minutes)
        self.templates = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(default=True),
        )
        self.templates.filters["datum"] = _date
        self.templates.filters["moment"] = _moment
        self.templates.globals["function_label"] = functions.label
        self.tokens = AccessTokens()
        self.integrity = {name: _integrity(name) for name in SCRIPTS}

    def page(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(**values)
        return HTMLResponse(html, status_code=status)

    def message(
        self, heading: str, text: str, status: int, *, error: bool = True, **values: Any
    ) -> HTMLResponse:
        return self.page("message.html", status, heading=heading, text=text, error=error, **values)

    def event(
        self,
        action: Action,
        outcome: str,
        oin: str | None,
        *,
        person: str | None = None,
        roles: tuple[PortalRole, ...] = (),
        reason: str | None = None,
        objects: Mapping[str, str | int] | None = None,
    ) -> AuditEvent:
        """A portal audit entry: the person by their pseudonymous id, their roles."""
        return audit_log.new_event(
            action,
            outcome,
            self.clock(),
            organisation=oin,
            actor=f"person:{person}" if person else "portal",
            role=",".join(r.value for r in roles) or None,
            reason=reason,
            objects=objects,
        )

    def audit(
        self,
        action: Action,
        outcome: str,
        oin: str | None,
        *,
        person: str | None = None,
        roles: tuple[PortalRole, ...] = (),
        reason: str | None = None,
        objects: Mapping[str, str | int] | None = None,
    ) -> None:
        """``event`` in a write transaction of its own."""
        entry = self.event(
            action, outcome, oin, person=person, roles=roles, reason=reason, objects=objects
        )
        with self.db.write() as session:
            audit_log.append(session, entry)

    def current(self, request: Request) -> sessions.PortalSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 100:
            return None
        with self.db.write() as session:
            return sessions.current(session, token, self.clock(), self.idle)

    def organisation_name(self, oin: str) -> str:
        with self.db.read() as session:
            row = session.get(OrganisationRow, oin)
            return row.name if row else oin

    async def read_form(self, request: Request) -> dict[str, str] | None:
        return await _form(request, self.settings.max_form_bytes)


async def _form(request: Request, limit: int) -> dict[str, str] | None:
    """A urlencoded form's fields, each once; None when a field is repeated or it is not a
    form. FormTooLarge when it is longer than ``limit`` bytes: refused on its declared
    Content-Length before the body is read, else once the body read passes the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise FormTooLarge
    if request.headers.get("content-type", "").split(";")[0].strip() != _FORM:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormTooLarge
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            return None
        fields[key] = value
    return fields
