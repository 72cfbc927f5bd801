"""``create_portal_app``: the portal's web layer (Starlette, server-rendered pages).

Pages are HTML in Dutch, rendered with Jinja2 (escaping on), styled by one style sheet
and, except for the blinding step of registration, work without JavaScript. Every
answer carries a strict Content-Security-Policy (nothing inline, nothing from
elsewhere), HSTS, ``same-origin`` referrers (the callback's URL holds a code: never sent
elsewhere; and a same-origin form post keeps its Origin header) and no caching.

Sessions are server-side (vir.portal.sessions): the cookie ``__Host-vir-portal`` is
``Secure; HttpOnly; SameSite=Strict``, and every form carries the session's CSRF
token, compared in constant time; a POST without it, or from another origin, is
refused and audited. Sign-in (vir.portal.oidc) is the organisation's own provider,
Authorization Code with PKCE; the sign-in cookie binds the provider's redirect to
the browser that started it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.crypto.secretbox import SealedSecretError, SecretBox
from vir.domain.clock import Clock
from vir.portal import config, oidc, sessions
from vir.portal.config import PortalRole
from vir.portal.settings import PortalSettings
from vir.store import audit_log
from vir.store.db import Database
from vir.store.tables import OrganisationRow

SESSION_COOKIE = "__Host-vir-portal"
LOGIN_COOKIE = "__Host-vir-login"
_HERE = Path(__file__).parent
_FORM = "application/x-www-form-urlencoded"
ROLE_LABELS = {
    PortalRole.PROFESSIONAL: "professional",
    PortalRole.COORDINATOR: "coördinator van de organisatie",
    PortalRole.PRIVACY_OFFICER: "privacyfunctionaris",
    PortalRole.FOLLOW_UP_OFFICER: "functionaris opvolging (gemeente)",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Portal:
    """The portal's state: settings, database, clock, providers and templates."""

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
    ) -> None:
        """``event`` in a write transaction of its own."""
        entry = self.event(action, outcome, oin, person=person, roles=roles, reason=reason)
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


async def _form(request: Request, limit: int) -> dict[str, str] | None:
    """A urlencoded form's fields, each once; None when too large, repeated or not a form."""
    if request.headers.get("content-type", "").split(";")[0].strip() != _FORM:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
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


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer: pages, static files, errors alike."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self._app(scope, receive, with_headers)


def create_portal_app(
    settings: PortalSettings,
    db: Database,
    clock: Clock,
    providers: oidc.Providers,
    box: SecretBox,
) -> Starlette:
    """The portal on ``db``; ``box`` opens the organisations' client secrets."""
    portal = Portal(settings, db, clock, providers)
    origin = settings.public_url.rstrip("/")

    async def home(request: Request) -> Response:
        user = await run_in_threadpool(portal.current, request)
        if user is None:
            with db.read() as session:
                organisations = config.sign_in_organisations(session)
            response = portal.page("signin.html", organisations=organisations, user=None)
            if request.cookies.get(SESSION_COOKIE):
                response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
            return response
        return portal.page(
            "home.html",
            user=user,
            organisation=await run_in_threadpool(portal.organisation_name, user.oin),
            roles=", ".join(ROLE_LABELS[r] for r in user.roles),
            idle_minutes=settings.idle_minutes,
        )

    def configured(oin: str) -> config.OidcConfig | None:
        """The organisation's sign-in; None when it has none, or when its client secret
        does not open here (audited: the operator must set it again)."""
        if not (len(oin) == 20 and oin.isdigit()):
            return None
        try:
            with db.read() as session:
                return config.load(session, oin, box)
        except SealedSecretError as broken:
            portal.audit(Action.PORTAL_SIGN_IN_REFUSED, Outcome.FAILED, oin, reason=broken.code)
            return None

    async def start(request: Request) -> Response:
        oin = request.query_params.get("organisatie", "")
        found = await run_in_threadpool(configured, oin)
        if found is None:
            return portal.message(
                "Inloggen niet mogelijk", "Kies een organisatie uit de lijst.", 400
            )
        with db.write() as session:
            state, binding, login = sessions.start_login(session, oin, clock())
        try:
            url = await run_in_threadpool(
                oidc.authorization_url,
                providers,
                found,
                settings.redirect_uri,
                state,
                login.nonce,
                login.verifier,
            )
        except oidc.SignInFailed as failure:
            await run_in_threadpool(
                portal.audit,
                Action.PORTAL_SIGN_IN_REFUSED,
                Outcome.FAILED,
                oin,
                reason=failure.code,
            )
            return portal.message(
                "Inloggen niet mogelijk",
                "De inlogdienst van uw organisatie is nu niet bereikbaar. Probeer het later.",
                502,
            )
        response = RedirectResponse(url, status_code=303)
        # Lax: the provider's redirect back is a top-level navigation from another site.
        response.set_cookie(
            LOGIN_COOKIE,
            binding,
            max_age=600,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(request: Request) -> Response:
        params = request.query_params
        state, code = params.get("state", ""), params.get("code", "")
        binding = request.cookies.get(LOGIN_COOKIE, "")
        if not (0 < len(state) <= 100 and 0 < len(binding) <= 100):
            return portal.message("Inloggen mislukt", "Begin opnieuw met inloggen.", 400)
        with db.write() as session:
            login = sessions.finish_login(session, state, binding, clock())
        if login is None:
            return portal.message("Inloggen mislukt", "Begin opnieuw met inloggen.", 400)
        found = await run_in_threadpool(configured, login.oin)
        try:
            if found is None:
                raise oidc.SignInFailed("not_configured")
            if params.get("error") or not 0 < len(code) <= 2048:
                raise oidc.SignInFailed("provider_denied")
            who = await run_in_threadpool(
                oidc.sign_in,
                providers,
                found,
                code,
                login.verifier,
                login.nonce,
                settings.redirect_uri,
            )
        except oidc.SignInFailed as failure:
            await run_in_threadpool(
                portal.audit,
                Action.PORTAL_SIGN_IN_REFUSED,
                Outcome.REFUSED,
                login.oin,
                reason=failure.code,
            )
            return portal.message(
                "Inloggen mislukt",
                "U kunt met dit account niet inloggen bij de verwijsindex. Neem contact op "
                "met de beheerder van uw organisatie als u denkt dat dit niet klopt.",
                403,
            )
        with db.write() as session:
            token = sessions.create(session, login.oin, who.person, who.name, who.roles, clock())
            audit_log.append(
                session,
                portal.event(
                    Action.PORTAL_SIGNED_IN,
                    Outcome.SUCCESS,
                    login.oin,
                    person=who.person,
                    roles=who.roles,
                ),
            )
        # A page of our own that moves on: the session cookie (SameSite=Strict) is not
        # sent on a redirect chain that another site started.
        response = portal.message("Ingelogd", "U bent ingelogd.", 200, error=False, next="/")
        response.set_cookie(
            SESSION_COOKIE, token, path="/", secure=True, httponly=True, samesite="strict"
        )
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True)
        return response

    async def logout(request: Request) -> Response:
        user = await run_in_threadpool(portal.current, request)
        form = await _form(request, settings.max_form_bytes)
        if user is None:
            return RedirectResponse("/", status_code=303)
        if (
            not _same_origin(request, origin)
            or form is None
            or not secrets.compare_digest(form.get("csrf", ""), user.csrf)
        ):
            await run_in_threadpool(
                portal.audit,
                Action.PORTAL_REQUEST_REFUSED,
                Outcome.REFUSED,
                user.oin,
                person=user.person,
                roles=user.roles,
                reason="csrf",
            )
            return portal.message(
                "Niet uitgevoerd",
                "Dit formulier is verlopen of komt niet van deze website. Probeer het opnieuw.",
                403,
            )
        with db.write() as session:
            sessions.end(session, user.token_hash)
            audit_log.append(
                session,
                portal.event(
                    Action.PORTAL_SIGNED_OUT,
                    Outcome.SUCCESS,
                    user.oin,
                    person=user.person,
                    roles=user.roles,
                ),
            )
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
        return response

    async def health(_request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def not_found(_request: Request, _exc: Exception) -> Response:
        return portal.message("Pagina niet gevonden", "Deze pagina bestaat niet.", 404)

    routes = [
        Route("/", home),
        Route("/inloggen", start),
        Route("/auth/callback", callback),
        Route("/uitloggen", logout, methods=["POST"]),
        Route("/health", health),
        Mount("/static", app=StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found},
        middleware=[Middleware(SecurityHeaders)],
    )
    app.state.portal = portal
    return app


def _same_origin(request: Request, origin: str) -> bool:
    """A form post from the portal's own pages: an Origin header, when the browser sends
    one, must be the portal's (SameSite=Strict and the CSRF token are the main guards)."""
    sent = request.headers.get("origin")
    return sent is None or sent == origin
