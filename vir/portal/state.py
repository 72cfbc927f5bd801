"""The portal's state (``Portal``): settings, database, clock, providers, templates, the
signed-in people's access tokens and the scripts' integrity values; shared by the web
layer (vir.portal.app) and the professional's pages (vir.portal.pages)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.domain import functions
from vir.domain.clock import Clock
from vir.portal import oidc, sessions
from vir.portal.config import PortalRole
from vir.portal.forms import MAX_FORM_FIELDS, FormMalformed, FormTooLarge
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


# A signed-in person's refused requests audited one by one in a minute
# (VIR_PORTAL_REFUSALS_PER_MINUTE); past it, one entry says the cap was reached and the
# rest of the minute is answered 429 unaudited. Nobody using the portal gets this many
# refusals in a minute: a script does.
REFUSALS_PER_MINUTE = PortalSettings.model_fields["refusals_per_minute"].default


class RefusalCap:
    """How many of a person's refusals this process audited in the current minute, so
    that a signed-in person cannot grow the audit log (hash-chained, kept for years)
    by a request a millisecond: at most ``per_minute`` + 1 entries a person a minute."""

    def __init__(self, per_minute: int = REFUSALS_PER_MINUTE) -> None:
        self._per_minute = per_minute
        self._counts: dict[tuple[str, str], tuple[dt.datetime, int]] = {}
        self._lock = threading.Lock()

    def take(self, oin: str, person: str, now: dt.datetime) -> int:
        """This refusal's number in the person's minute (1, 2, ...)."""
        minute = now.replace(second=0, microsecond=0)
        with self._lock:
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == minute}
            seen, count = self._counts.get((oin, person), (minute, 0))
            count = count + 1 if seen == minute else 1
            self._counts[(oin, person)] = (minute, count)
            return count

    @property
    def per_minute(self) -> int:
        return self._per_minute


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
        self.refusal_cap = RefusalCap(settings.refusals_per_minute)

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

    def refused(
        self,
        user: sessions.PortalSession,
        reason: str,
        objects: Mapping[str, str | int] | None = None,
    ) -> bool:
        """Audit a signed-in person's refused request (``portal.request_refused``), up to
        ``RefusalCap``: past it, the cap once (reason ``refusal_cap``) and then nothing
        for the rest of the minute. False when the caller should answer 429."""
        number = self.refusal_cap.take(user.oin, user.person, self.clock())
        cap = self.refusal_cap.per_minute
        if number > cap + 1:
            return False
        capped = number == cap + 1
        self.audit(
            Action.PORTAL_REQUEST_REFUSED,
            Outcome.REFUSED,
            user.oin,
            person=user.person,
            roles=user.roles,
            reason="refusal_cap" if capped else reason,
            objects={"refusals": cap} if capped else objects,
        )
        return not capped

    def current(self, request: Request) -> sessions.PortalSession | None:
        token = session_cookie(request)
        if token is None:
            return None
        with self.db.write() as session:
            return sessions.current(session, token, self.clock(), self.idle)

    def organisation_name(self, oin: str) -> str:
        with self.db.read() as session:
            row = session.get(OrganisationRow, oin)
            return row.name if row else oin

    async def read_form(self, request: Request) -> PostedForm | None:
        return await _form(request, self.settings.max_form_bytes)


def session_cookie(request: Request) -> str | None:
    """The browser's session cookie, when it has one of a plausible length."""
    token = request.cookies.get(SESSION_COOKIE, "")
    return token if 0 < len(token) <= 100 else None


class PostedForm(dict[str, str]):
    """A posted form's fields, each with its first value; ``repeated`` names the fields
    given more than once (a form of the portal's own pages gives each once)."""

    repeated: frozenset[str] = frozenset()


async def _form(request: Request, limit: int) -> PostedForm | None:
    """A urlencoded form's fields; None when it is not a form. FormTooLarge when it is
    longer than ``limit`` bytes: refused on its declared Content-Length before the body
    is read, else once the body read passes the limit."""
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
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise FormMalformed from None
    fields = PostedForm()
    repeated = set()
    for key, value in pairs:
        if key in fields:
            repeated.add(key)
        else:
            fields[key] = value
    fields.repeated = frozenset(repeated)
    return fields
