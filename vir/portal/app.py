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

import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto.secretbox import SealedSecretError, SecretBox
from vir.domain.clock import Clock
from vir.portal import config, followup, guard, officer, oidc, pages, sessions, throttle
from vir.portal.config import PortalRole
from vir.portal.forms import FormMalformed, FormTooLarge
from vir.portal.settings import KeyHolders, PortalSettings
from vir.portal.state import SESSION_COOKIE, Portal, session_cookie
from vir.store import audit_log
from vir.store.db import Database
from vir.store.tables import PortalSignalRow

# What the portal's person ids are keyed with (vir.crypto.secretbox.SecretBox.subkey).
PERSON_KEY_PURPOSE = "portal person id"

LOGIN_COOKIE = "__Host-vir-login"
STATIC = Path(__file__).parent / "static"


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


def _provider(found: config.OidcConfig) -> str:
    """Which provider and client a sign-in is started with: the callback finishes it only
    with the same (an organisation's sign-in changed meanwhile refuses it)."""
    return f"{found.issuer} {found.client_id}"


def security_headers(holders: KeyHolders) -> dict[str, str]:
    """SECURITY_HEADERS, the policy letting scripts connect to the key holders as well
    (the registration page evaluates the OPRF there)."""
    if not holders.origins:
        return dict(SECURITY_HEADERS)
    policy = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "connect-src 'self'", "connect-src 'self' " + " ".join(holders.origins)
    )
    return SECURITY_HEADERS | {"Content-Security-Policy": policy}


class SecurityHeaders:
    """Adds the security headers to every answer: pages, static files, errors alike."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self._app = app
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._headers.items():
                    headers[name] = value
            await send(message)

        await self._app(scope, receive, with_headers)


def create_portal_app(
    settings: PortalSettings,
    db: Database,
    clock: Clock,
    providers: oidc.Providers,
    box: SecretBox,
    services: pages.Services,
) -> Starlette:
    """The portal on ``db``; ``box`` opens the organisations' client secrets, ``services``
    are the index's, which the professional's pages call for the signed-in person."""
    portal = Portal(settings, db, clock, providers)
    person_key = box.subkey(PERSON_KEY_PURPOSE)
    origin = settings.public_url.rstrip("/")
    holders = settings.key_holders()
    failures = throttle.FailedSignIns()

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

    def configured(oin: str, *, signing_in: bool = True) -> config.OidcConfig | None:
        """The organisation's sign-in; None when it has none, or when its client secret
        does not open here (audited when ``signing_in``: the operator must set it
        again)."""
        if not (len(oin) == 20 and oin.isdigit()):
            return None
        try:
            with db.read() as session:
                return config.load(session, oin, box)
        except SealedSecretError as broken:
            if signing_in:
                portal.audit(Action.PORTAL_SIGN_IN_REFUSED, Outcome.FAILED, oin, reason=broken.code)
            return None

    def provider_logout(oin: str) -> str | None:
        """The provider's end-session address for a person of ``oin`` who just signed
        out here (``oidc.logout_url``), coming back to the portal's start page."""
        found = configured(oin, signing_in=False)
        return None if found is None else oidc.logout_url(providers, found, f"{origin}/")

    def end_session(session: Session, user: sessions.PortalSession) -> None:
        """Sign ``user`` out: the session and its access token gone, audited."""
        portal.tokens.drop(user.token_hash)
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

    async def start(request: Request) -> Response:
        oin = request.query_params.get("organisatie", "")
        found = await run_in_threadpool(configured, oin)
        if found is None:
            return portal.message(
                "Inloggen niet mogelijk", "Kies een organisatie uit de lijst.", 400
            )
        # Nothing is written: the sign-in travels in the browser's sealed cookie. The
        # session this browser has (someone else's, on a shared workstation) ends when
        # the new one is made, not here: a link to this page ends nothing.
        had = session_cookie(request)
        state, cookie, login = sessions.start_login(
            box, oin, _provider(found), clock(), None if had is None else sessions.digest(had)
        )
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
            cookie,
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
        peer = request.client.host if request.client is not None else ""
        if failures.exceeded(peer, clock()):
            refused = portal.message(
                "Inloggen mislukt",
                "Te veel mislukte pogingen. Probeer het over een paar minuten opnieuw.",
                429,
            )
            refused.headers["Retry-After"] = str(failures.retry_after)
            return refused
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        login = sessions.open_login(box, state, cookie, clock())
        if login is not None:
            with db.write() as session:
                if not sessions.use_login(session, state, clock()):
                    login = None
        if login is None:
            failures.add(peer, clock())
            return portal.message("Inloggen mislukt", "Begin opnieuw met inloggen.", 400)
        found = await run_in_threadpool(configured, login.oin)
        try:
            if found is None or _provider(found) != login.provider:
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
            failures.add(peer, clock())
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
        person = oidc.stored_person(person_key, who.person)
        with db.write() as session:
            previous = sessions.find(session, login.replaces) if login.replaces else None
            if previous is not None:
                end_session(session, previous)
            # Signals this person registered before ids were keyed (stop 42) are theirs.
            session.execute(
                update(PortalSignalRow)
                .where(PortalSignalRow.person == who.person)
                .values(person=person)
            )
            token = sessions.create(session, login.oin, person, who.name, who.roles, clock())
            audit_log.append(
                session,
                portal.event(
                    Action.PORTAL_SIGNED_IN,
                    Outcome.SUCCESS,
                    login.oin,
                    person=person,
                    roles=who.roles,
                ),
            )
        if who.access_token is not None:
            portal.tokens.keep(sessions.digest(token), who.access_token, who.expires_in)
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
        try:
            form = await portal.read_form(request)
        except (FormTooLarge, FormMalformed) as error:
            if user is None:
                return RedirectResponse("/", status_code=303)
            refused = guard.too_large() if isinstance(error, FormTooLarge) else guard.malformed()
            await run_in_threadpool(portal.refused, user, refused.reason)
            return portal.message(refused.heading, refused.text, refused.status)
        if user is None:
            return RedirectResponse("/", status_code=303)
        if (
            not _same_origin(request, origin)
            or form is None
            or bool(form.repeated)
            or not secrets.compare_digest(form.get("csrf", ""), user.csrf)
        ):
            await run_in_threadpool(portal.refused, user, "csrf")
            return portal.message(
                "Niet uitgevoerd",
                "Dit formulier is verlopen of komt niet van deze website. Probeer het opnieuw.",
                403,
            )
        with db.write() as session:
            end_session(session, user)
        onward = await run_in_threadpool(provider_logout, user.oin)
        response: Response
        if onward is None:
            response = RedirectResponse("/", status_code=303)
        else:
            # On to the provider, to end the person's session there too (a shared
            # workstation's next user would otherwise be signed in as them at one click).
            # A page of our own that moves on: this form's page allows form posts to this
            # site only (form-action 'self'), redirects after them included.
            response = portal.message(
                "Uitgelogd",
                "U bent uitgelogd. U wordt nu ook uitgelogd bij de inlogdienst van uw organisatie.",
                200,
                error=False,
                next=onward,
            )
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True)
        return response

    async def health(_request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def not_found(request: Request, _exc: Exception) -> Response:
        # A signed-in person keeps the header: their name, the menu and "Uitloggen".
        user = await run_in_threadpool(portal.current, request)
        signed_in: dict[str, Any] = {}
        if user is not None:
            name = await run_in_threadpool(portal.organisation_name, user.oin)
            signed_in = {"user": user, "organisation": name}
        return portal.message("Pagina niet gevonden", "Deze pagina bestaat niet.", 404, **signed_in)

    routes = [
        Route("/", home),
        Route("/inloggen", start),
        Route("/auth/callback", callback),
        Route("/uitloggen", logout, methods=["POST"]),
        Route("/health", health),
        *pages.routes(portal, services, holders, origin),
        *officer.routes(portal, holders, origin),
        *followup.routes(portal, origin),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: not_found},
        middleware=[Middleware(SecurityHeaders, headers=security_headers(holders))],
    )
    # /meldingen/ is not /meldingen: a 404, not a redirect built from the Host header
    # (Starlette's redirect_slashes), which a proxy passing any Host would aim elsewhere.
    app.router.redirect_slashes = False
    app.state.portal = portal
    return app


def _same_origin(request: Request, origin: str) -> bool:
    """A form post from the portal's own pages: an Origin header, when the browser sends
    one, must be the portal's (SameSite=Strict and the CSRF token are the main guards)."""
    sent = request.headers.get("origin")
    return sent is None or sent == origin
