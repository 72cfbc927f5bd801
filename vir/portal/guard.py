"""What every group of the portal's pages shares (``RolePages``): the signed-in person
acting in a role, the guard on every handler, the check of every form, refusals audited
and shown in plain Dutch, and rendering with the person and organisation in the header.

A group (the professional's pages, the privacy officer's, the follow-up officer's)
says who may use it (``acting``: the person in its role, or None) and whom the pages
are for (``no_access``); the rest is here, so that a form on any page is checked the
same way: from the portal's own page (its ``Origin``, when the browser sends one), with
the session's CSRF token compared in constant time, and only the form's own fields.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vir.domain.organisations import Organisation
from vir.portal import forms, sessions

if TYPE_CHECKING:
    from vir.portal.state import Portal

STALE = "Dit formulier is verlopen of komt niet van deze website. Probeer het opnieuw."
TOO_LARGE = (
    "Dit formulier is groter dan het portaal aanneemt. Het is niet verwerkt en niet "
    "bewaard. Vul het opnieuw in, met kortere waarden."
)
TOO_MANY = (
    "Er zijn in korte tijd te veel verzoeken geweigerd. Wacht een minuut en probeer het "
    "dan opnieuw."
)
MALFORMED = (
    "Dit formulier kon niet worden gelezen (tekens die geen tekst zijn, of te veel "
    "velden). Het is niet verwerkt en niet bewaard."
)
UNEXPECTED = (
    "Dit formulier bevat gegevens die hier niet horen (zoals een BSN of een naam). "
    "Ze zijn niet verwerkt en niet bewaard."
)


class Refused(Exception):
    """A request a page answers with a refusal, audited with ``reason`` (and
    ``objects``: the id it was about, when there is one)."""

    def __init__(
        self,
        reason: str,
        status: int,
        heading: str,
        text: str,
        objects: Mapping[str, str | int] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.heading = heading
        self.text = text
        self.objects = objects


def unexpected() -> Refused:
    return Refused("unexpected_field", 400, "Niet uitgevoerd", UNEXPECTED)


def too_large() -> Refused:
    return Refused("form_too_large", 413, "Formulier te groot", TOO_LARGE)


def malformed() -> Refused:
    return Refused("malformed_form", 400, "Niet uitgevoerd", MALFORMED)


class Acting(Protocol):
    """A signed-in person in a group's role, for its organisation."""

    @property
    def user(self) -> sessions.PortalSession: ...

    @property
    def organisation(self) -> Organisation: ...


W = TypeVar("W", bound=Acting)


class RolePages(Generic[W]):
    """The shared part of a group of pages for one role."""

    no_access = "Deze pagina is niet voor uw rol."  # whom the pages are for, in Dutch

    def __init__(self, portal: Portal, origin: str) -> None:
        self.portal = portal
        self.db = portal.db
        self.origin = origin

    def acting(self, user: sessions.PortalSession) -> W | None:
        """The signed-in person in this group's role; None for anyone else."""
        raise NotImplementedError

    def context(self, who: W) -> dict[str, Any]:
        """What the group's templates show besides the person and organisation."""
        del who
        return {}

    def about(self, request: Request, refused: Refused) -> Mapping[str, str | int] | None:
        """What a refusal's audit entry names as the object asked for."""
        del request
        return refused.objects

    def refuse(
        self,
        user: sessions.PortalSession,
        reason: str,
        objects: Mapping[str, str | int] | None = None,
    ) -> bool:
        """Audit the refusal (``Portal.refused``); False past the person's cap."""
        return self.portal.refused(user, reason, objects)

    def too_many(self, who: W) -> Response:
        return self.render(who, "message.html", 429, heading="Te veel", text=TOO_MANY, error=True)

    def render(self, who: W, template: str, status: int = 200, **values: Any) -> Response:
        return self.portal.page(
            template,
            status,
            user=who.user,
            organisation=who.organisation.name,
            **self.context(who),
            **values,
        )

    def guarded(
        self,
        handler: Callable[[Request, W], Awaitable[Response]],
        *,
        post: frozenset[str] | None = None,
        prefix: str = "",
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for a signed-in person in this role; for a POST (``post``: the
        form's fields, and those starting with ``prefix``), once the Origin and the CSRF
        token check out, with the form in ``request.state.form``. Without a session: the
        start page; without the role: 403. Refusals are audited and shown in Dutch."""

        async def endpoint(request: Request) -> Response:
            user = await run_in_threadpool(self.portal.current, request)
            if user is None:
                return RedirectResponse("/", status_code=303)
            who = await run_in_threadpool(self.acting, user)
            if who is None:
                await run_in_threadpool(self.refuse, user, "forbidden")
                return self.portal.message(
                    "Geen toegang",
                    self.no_access,
                    403,
                    user=user,
                    organisation=await run_in_threadpool(self.portal.organisation_name, user.oin),
                )
            try:
                if post is not None:
                    request.state.form = await self.checked_form(request, user, post, prefix)
                return await handler(request, who)
            except Refused as refused:
                objects = self.about(request, refused)
                if not await run_in_threadpool(self.refuse, user, refused.reason, objects):
                    return self.too_many(who)
                return self.render(
                    who,
                    "message.html",
                    refused.status,
                    heading=refused.heading,
                    text=refused.text,
                    error=True,
                )

        return endpoint

    async def checked_form(
        self,
        request: Request,
        user: sessions.PortalSession,
        allowed: frozenset[str],
        prefix: str = "",
    ) -> dict[str, str]:
        """The posted form, from the portal's own page with the session's CSRF token
        and only ``allowed`` fields; Refused otherwise."""
        try:
            form = await self.portal.read_form(request)
        except forms.FormTooLarge:
            raise too_large() from None
        except forms.FormMalformed:
            raise malformed() from None
        sent = request.headers.get("origin")
        if (
            form is None
            or (sent is not None and sent != self.origin)
            or "csrf" in form.repeated
            or not secrets.compare_digest(form.get("csrf", ""), user.csrf)
        ):
            raise Refused("csrf", 403, "Niet uitgevoerd", STALE)
        try:
            if form.repeated:  # the portal's own pages give each field once
                raise forms.UnexpectedField
            forms.only(form, allowed, prefix=prefix)
        except forms.UnexpectedField:
            raise unexpected() from None
        return form
