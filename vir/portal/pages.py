"""The professional's pages (issue 18, part 2): register a signal (blinded in the
browser), my signals (contact details, withdraw), my matches with their follow-up
(matchregie), and notifications.

The portal calls vir's services in-process, acting for the signed-in person: as their
organisation, with the role their portal role gives (a professional: ``Role.SYSTEM``,
the organisation's coordinator: ``Role.COORDINATOR``), and named in every audit entry
by their pseudonymous id (``Caller.person``). A professional sees the signals they
registered here (``portal_signals``) and those signals' matches; the coordinator sees
all of the organisation's. Anything else, another organisation's above all, gets the
same "not found" page as an unknown id, and an audit entry.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vir.domain import functions
from vir.domain.caller import Caller
from vir.domain.coordination import FollowUp
from vir.domain.errors import Conflict, InputError, NotFound, NotPermitted, RateLimited, VirError
from vir.domain.organisations import Organisation, Role
from vir.domain.signals import Professional, WithdrawalReason
from vir.portal import forms, sessions
from vir.portal.config import PortalRole
from vir.portal.guard import Refused, RolePages
from vir.portal.settings import KeyHolders
from vir.services.matchregie import MAX_CONTACTS, Matchregie
from vir.services.signals import (
    ListedPage,
    NotificationService,
    SignalChange,
    SignalRequest,
    SignalService,
)
from vir.services.views import MatchDetail, MatchView
from vir.store import signals as repo
from vir.store.organisations import get_organisation
from vir.store.records import Signal, StoredNotification
from vir.store.tables import PortalSignalRow

if TYPE_CHECKING:
    from vir.portal.state import Portal

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Signals a page of "Mijn meldingen" and "Mijn matches" (the matches of this many
# signals: as many lookups of a signal's matches).
PAGE = 100
# A page's place in a list (``?na=``: the signals older than it, ``?voor=``: newer): the
# key of a signal, (created_at, id), as microseconds since 1970 and the id, base64url.
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,100}")
_KEY = re.compile(r"(0|[1-9][0-9]{0,17})\.(" + _ID.pattern + ")")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
# The notifications page shows the newest this many.
NOTIFICATIONS_SHOWN = 500
_ALREADY = (
    "Uw organisatie heeft al een actieve melding over deze jeugdige. U vindt die onder "
    "Mijn meldingen."
)


@dataclass(frozen=True)
class Services:
    """What the pages call (the index's own services, on its database)."""

    signals: SignalService
    matchregie: Matchregie
    notifications: NotificationService


@dataclass(frozen=True)
class Acting:
    """The signed-in person as a caller of the services."""

    user: sessions.PortalSession
    organisation: Organisation
    caller: Caller

    @property
    def coordinator(self) -> bool:
        return self.caller.role is Role.COORDINATOR


def _not_found() -> Refused:
    """Another organisation's (or person's) signal or match, or an unknown id: one and
    the same answer, 403, so that an id tells nothing about whether it exists."""
    return Refused(
        "not_found",
        403,
        "Geen toegang",
        "Dit bestaat niet, of u hebt er geen toegang toe.",
    )


Handler = Callable[[Request, Acting], Awaitable[Response]]
# What a match action does with the form, once the match is known to be visible.
Act = Callable[[Acting, str, Mapping[str, str]], object]
T = TypeVar("T")


class Pages(RolePages[Acting]):
    """The professional's pages on ``portal`` (vir.portal.state.Portal): each handler
    takes the request and the person acting (``guarded`` makes sure there is one)."""

    no_access = "Deze pagina is voor professionals en coördinatoren van een organisatie die meldt."

    def __init__(
        self, portal: Portal, services: Services, holders: KeyHolders, origin: str
    ) -> None:
        super().__init__(portal, origin)
        self.services = services
        self.holders = holders

    def routes(self) -> list[Route]:
        guarded, act = self.guarded, self.match_action
        return [
            Route("/meldingen", guarded(self.signals_page)),
            Route("/meldingen/nieuw", guarded(self.register_page)),
            Route(
                "/meldingen/nieuw",
                guarded(self.register_post, post=forms.REGISTER),
                methods=["POST"],
            ),
            Route("/meldingen/{id}", guarded(self.signal_page)),
            Route(
                "/meldingen/{id}/contact",
                guarded(
                    self.signal_change(self.change_contact, forms.CONTACT, "contact"),
                    post=forms.CONTACT,
                ),
                methods=["POST"],
            ),
            Route(
                "/meldingen/{id}/verwijderdatum",
                guarded(
                    self.signal_change(self.change_removal, forms.REMOVAL, "verwijderdatum"),
                    post=forms.REMOVAL,
                ),
                methods=["POST"],
            ),
            Route(
                "/meldingen/{id}/intrekken",
                guarded(self.withdraw_post, post=forms.WITHDRAW),
                methods=["POST"],
            ),
            Route("/matches", guarded(self.matches_page)),
            Route("/matches/{id}", guarded(self.match_page)),
            Route(
                "/matches/{id}/contact",
                guarded(
                    act(self.contact_made, "contact"),
                    post=frozenset(),
                    prefix=forms.CONTACT_PREFIX,
                ),
                methods=["POST"],
            ),
            Route(
                "/matches/{id}/opvolging",
                guarded(act(self.coordinator_step, "opvolging"), post=forms.FOLLOW_UP),
                methods=["POST"],
            ),
            Route(
                "/matches/{id}/overdragen",
                guarded(act(self.hand_over, "overdracht"), post=forms.HANDOVER),
                methods=["POST"],
            ),
            Route(
                "/matches/{id}/overname",
                guarded(act(self.answer, "antwoord"), post=forms.ANSWER),
                methods=["POST"],
            ),
            Route("/notificaties", guarded(self.notifications_page)),
        ]

    # -- who acts, refusals, rendering --------------------------------------------------

    def acting(self, user: sessions.PortalSession) -> Acting | None:
        """The person as a caller; None when no portal role of theirs registers signals."""
        if PortalRole.COORDINATOR in user.roles:
            role = Role.COORDINATOR
        elif PortalRole.PROFESSIONAL in user.roles:
            role = Role.SYSTEM
        else:
            return None
        with self.db.read() as session:
            organisation = get_organisation(session, user.oin)
        if organisation is None or not organisation.category.reports:
            return None
        return Acting(user, organisation, Caller(organisation, "", role, person=user.person))

    def refused(self, who: Acting, error: VirError) -> None:
        """Audit a service's refusal of the person's request (the field it names)."""
        field = {"field": forms.form_field(error.field)} if isinstance(error, InputError) else None
        self.refuse(who.user, _reason(error), field)

    def context(self, who: Acting) -> dict[str, Any]:
        return {"coordinator": who.coordinator}

    def about(self, request: Request, refused: Refused) -> Mapping[str, str | int] | None:
        return refused.objects or _object(request)

    # -- signals ------------------------------------------------------------------------

    def own_signal(self, who: Acting, signal_id: str) -> Signal:
        """One of the person's signals (the organisation's, for its coordinator)."""
        if not _ID.fullmatch(signal_id):
            raise _not_found()
        with self.db.read() as session:
            found = repo.signals_by_id(session, [signal_id])
            registered_by = session.scalar(
                select(PortalSignalRow.person).where(PortalSignalRow.signal_id == signal_id)
            )
        mine = who.coordinator or registered_by == who.user.person
        if not found or found[0].oin != who.user.oin or not mine:
            raise _not_found()
        return found[0]

    def listed(self, who: Acting, request: Request, *, matched: bool = False) -> Listing:
        """The page of the person's active signals (the organisation's, for its
        coordinator; ``matched``: those in a match, with their matches) that the request's
        cursor names, newest first: the newest ``PAGE`` without one. A cursor that is not
        one of ours: Refused."""
        older, newer = _cursors(request)
        person = None if who.coordinator else who.user.person

        def read(older: repo.ListKey | None, newer: repo.ListKey | None) -> ListedPage:
            return self.services.signals.listed(
                who.caller,
                person=person,
                matched=matched,
                older_than=older,
                newer_than=newer,
                limit=PAGE,
            )

        page = read(older, newer)
        if newer is not None and len(page.signals) < PAGE:
            page = read(None, None)  # back to the start of the list: the newest page, full
        return Listing(page, request.url.path)

    async def signals_page(self, request: Request, who: Acting) -> Response:
        found = await run_in_threadpool(self.listed, who, request)
        return self.render(
            who, "signals.html", listing=found, done=request.query_params.get("klaar")
        )

    def register_form(
        self,
        who: Acting,
        values: Mapping[str, str],
        status: int = 200,
        problem: tuple[str, str] | None = None,
    ) -> Response:
        return self.render(
            who,
            "register.html",
            status,
            values={"name": who.user.name, **values},
            functions=functions.of_category(who.organisation.category),
            holders=self.holders,
            token=self.portal.tokens.get(who.user.token_hash),
            problem=problem,
            integrity=self.portal.integrity,
        )

    async def register_page(self, _request: Request, who: Acting) -> Response:
        return self.register_form(who, {})

    def register(self, who: Acting, form: Mapping[str, str]) -> Signal:
        """Register the signal of ``form`` (pseudonyms made in the browser) for the person,
        and note that they registered it."""
        parents = tuple(p for p in (forms.pseudonym(form, f"parent_{i}") for i in (1, 2)) if p)
        person = forms.pseudonym(form, "person")
        if person is None:
            raise InputError("person", "missing")
        request = SignalRequest(
            local_ref=f"portal-{secrets.token_hex(12)}",
            epoch=forms.epoch(form),
            person=person,
            parents=parents,
            address=forms.pseudonym(form, "address"),
            remove_on=forms.date(form, "remove_on"),
            professional=_professional(form),
            # The 23rd birthday, worked out in the browser from the date of birth (which
            # is not sent), when it comes before the archive term ends (register.js).
            archive_until=forms.date(form, "archive_until"),
        )
        done = self.services.signals.register(who.caller, request)
        with self.db.write() as session:
            if session.get(PortalSignalRow, done.signal.id) is None:
                session.add(
                    PortalSignalRow(
                        signal_id=done.signal.id,
                        person=who.user.person,
                        created_at=self.portal.clock(),
                    )
                )
        return done.signal

    async def submit(
        self,
        who: Acting,
        act: Callable[[], T],
        again: Callable[[VirError], Response],
        to: Callable[[T], str],
    ) -> Response:
        """A form's POST: ``act``, then on to the page ``to`` names (303); when a service
        refuses, the refusal is audited and ``again`` shows the form with the problem."""
        try:
            done = await run_in_threadpool(act)
        except VirError as error:
            await run_in_threadpool(self.refused, who, error)
            return await run_in_threadpool(again, error)
        return RedirectResponse(to(done), status_code=303)

    async def register_post(self, request: Request, who: Acting) -> Response:
        form = request.state.form
        return await self.submit(
            who,
            lambda: self.register(who, form),
            lambda error: self.register_form(
                who,
                forms.kept(form, ("remove_on", *forms.CONTACT)),
                _status(error),
                _problem(error, conflict=_ALREADY),
            ),
            lambda signal: f"/meldingen/{signal.id}?klaar=gemeld",
        )

    def signal_form(
        self,
        who: Acting,
        signal_id: str,
        status: int = 200,
        problem: tuple[str, str] | None = None,
        values: Mapping[str, str] | None = None,
        done: str | None = None,
    ) -> Response:
        signal = self.own_signal(who, signal_id)
        try:
            matches = self.services.signals.matches(who.caller, signal.local_ref)
        except NotFound:  # withdrawn meanwhile
            raise _not_found() from None
        p = signal.professional
        shown = {
            "name": p.name,
            "email": p.email or "",
            "phone": p.phone or "",
            "function": p.function or "",
        }
        return self.render(
            who,
            "signal.html",
            status,
            signal=signal,
            matches=matches,
            values={**shown, **(values or {})},
            functions=functions.of_category(who.organisation.category),
            reasons=forms.REASON_LABELS,
            via_labels=VIA_LABELS,
            problem=problem,
            done=done,
        )

    async def signal_page(self, request: Request, who: Acting) -> Response:
        return await run_in_threadpool(
            self.signal_form,
            who,
            request.path_params["id"],
            done=request.query_params.get("klaar"),
        )

    def change_contact(self, who: Acting, signal_id: str, form: Mapping[str, str]) -> None:
        signal = self.own_signal(who, signal_id)
        change = SignalChange(professional=_professional(form))
        self.services.signals.update(who.caller, signal.local_ref, change)

    def change_removal(self, who: Acting, signal_id: str, form: Mapping[str, str]) -> None:
        signal = self.own_signal(who, signal_id)
        remove_on = forms.date(form, "remove_on")
        if remove_on is None:
            raise InputError("remove_on", "give the new removal date")
        self.services.signals.update(
            who.caller, signal.local_ref, SignalChange(remove_on=remove_on)
        )

    def signal_change(self, change: Act, fields: frozenset[str], done: str) -> Handler:
        """A POST that changes one of the person's signals with ``change``: back to the
        signal's page (``?klaar=done``), or the page again with the refusal and the values
        of ``fields`` kept."""

        async def handler(request: Request, who: Acting) -> Response:
            form, signal_id = request.state.form, request.path_params["id"]
            return await self.submit(
                who,
                lambda: change(who, signal_id, form),
                lambda error: self.signal_form(
                    who, signal_id, _status(error), _problem(error), forms.kept(form, fields)
                ),
                lambda _: f"/meldingen/{signal_id}?klaar={done}",
            )

        return handler

    def withdraw(self, who: Acting, signal_id: str, form: Mapping[str, str]) -> None:
        """Withdraw the person's signal, once they confirmed it (it cannot be undone:
        WCAG 2.1 SC 3.3.4, a deletion is checked or confirmed)."""
        signal = self.own_signal(who, signal_id)
        try:
            reason = WithdrawalReason(form.get("reason", ""))
        except ValueError:
            raise InputError("reason", "not a reason code") from None
        if form.get("confirm") != "ja":
            raise InputError("confirm", "not confirmed")
        self.services.signals.withdraw(who.caller, signal.local_ref, reason)

    async def withdraw_post(self, request: Request, who: Acting) -> Response:
        form, signal_id = request.state.form, request.path_params["id"]
        return await self.submit(
            who,
            lambda: self.withdraw(who, signal_id, form),
            lambda error: self.signal_form(who, signal_id, _status(error), _problem(error)),
            lambda _: "/meldingen?klaar=ingetrokken",
        )

    # -- matches ------------------------------------------------------------------------

    async def matches_page(self, request: Request, who: Acting) -> Response:
        found = await run_in_threadpool(self.listed, who, request, matched=True)
        return self.render(who, "matches.html", listing=found, via_labels=VIA_LABELS)

    def match_detail(self, who: Acting, match_id: str) -> MatchDetail:
        """The match, when one of the person's signals is in it (the organisation's, for
        its coordinator); else the "not found" refusal."""
        if not _ID.fullmatch(match_id):
            raise _not_found()
        if not who.coordinator:
            with self.db.read() as session:
                mine = repo.registered_in_match(session, who.user.oin, who.user.person, match_id)
            if not mine:
                raise _not_found()
        try:
            return self.services.matchregie.read(who.caller, match_id)
        except NotFound:
            raise _not_found() from None

    def match_form(
        self,
        who: Acting,
        match_id: str,
        status: int = 200,
        problem: tuple[str, str] | None = None,
        done: str | None = None,
    ) -> Response:
        detail = self.match_detail(who, match_id)
        view, handover = detail.match, detail.handover
        others = {p.organisation.oin: p.organisation for p in view.participants}
        others.pop(who.user.oin, None)
        return self.render(
            who,
            "match.html",
            status,
            detail=detail,
            view=view,
            others=sorted(others.values(), key=lambda o: o.name),
            coordinates=view.coordinator is not None
            and view.coordinator.organisation.oin == who.user.oin,
            offered_to_us=handover is not None and handover.to_organisation.oin == who.user.oin,
            follow_up_labels=forms.FOLLOW_UP_LABELS,
            via_labels=VIA_LABELS,
            problem=problem,
            done=done,
        )

    async def match_page(self, request: Request, who: Acting) -> Response:
        return await run_in_threadpool(
            self.match_form,
            who,
            request.path_params["id"],
            done=request.query_params.get("klaar"),
        )

    def match_action(self, act: Act, done: str) -> Handler:
        """A matchregie form's handler: ``act`` on a match visible to the person, then back
        to the match's page (or the page again, with the problem)."""

        def run(who: Acting, match_id: str, form: Mapping[str, str]) -> None:
            self.match_detail(who, match_id)  # visible to this person, or not found
            act(who, match_id, form)

        async def handler(request: Request, who: Acting) -> Response:
            form, match_id = request.state.form, request.path_params["id"]
            return await self.submit(
                who,
                lambda: run(who, match_id, form),
                lambda error: self.match_form(who, match_id, _status(error), _problem(error)),
                lambda _: f"/matches/{match_id}?klaar={done}",
            )

        return handler

    def contact_made(self, who: Acting, match_id: str, form: Mapping[str, str]) -> object:
        prefix = forms.CONTACT_PREFIX
        chosen = [key[len(prefix) :] for key in form if key.startswith(prefix)]
        if len(chosen) > MAX_CONTACTS or any(not _is_oin(o) for o in chosen):
            raise InputError("contact_with", "not an organisation of this match")
        return self.services.matchregie.follow_up(
            who.caller, match_id, FollowUp.CONTACT_MADE, chosen
        )

    def coordinator_step(self, who: Acting, match_id: str, form: Mapping[str, str]) -> object:
        event = form.get("event", "")
        if event not in (FollowUp.PLAN_AGREED.value, FollowUp.CARE_STARTED.value):
            raise InputError("event", "not a step")
        return self.services.matchregie.follow_up(who.caller, match_id, FollowUp(event), [])

    def hand_over(self, who: Acting, match_id: str, form: Mapping[str, str]) -> object:
        to = form.get("to", "")
        if not _is_oin(to):
            raise InputError("to", "not an organisation of this match")
        return self.services.matchregie.offer(who.caller, match_id, to)

    def answer(self, who: Acting, match_id: str, form: Mapping[str, str]) -> object:
        choice = form.get("answer", "")
        if choice not in ("accept", "decline"):
            raise InputError("answer", "accept or decline")
        return self.services.matchregie.answer(who.caller, match_id, choice == "accept")

    # -- notifications ------------------------------------------------------------------

    def notifications_of(self, who: Acting) -> list[StoredNotification]:
        """The newest notifications of the person's signals (the organisation's, for its
        coordinator), newest first. (It read the organisation's oldest 5,000 and kept the
        person's: past that, new ones never showed, and ten audit entries said 5,000
        were read.)"""
        person = None if who.coordinator else who.user.person
        return self.services.notifications.newest(who.caller, person, NOTIFICATIONS_SHOWN)

    async def notifications_page(self, _request: Request, who: Acting) -> Response:
        found = await run_in_threadpool(self.notifications_of, who)
        return self.render(who, "notifications.html", notifications=found, types=_TYPES)


@dataclass(frozen=True)
class Listing:
    """A page of a list of signals as the templates show it: ``page`` and the links to
    the pages before (newer) and after (older) it, at ``path``."""

    page: ListedPage
    path: str

    @property
    def signals(self) -> tuple[Signal, ...]:
        return self.page.signals

    @property
    def rows(self) -> list[tuple[Signal, MatchView]]:
        """Each match of the page's signals, with its signal."""
        return [(s, m) for s in self.page.signals for m in self.page.matches.get(s.id, ())]

    @property
    def first(self) -> int:
        """The place of the page's first signal in the list (1: the newest)."""
        return self.page.before + 1

    @property
    def last(self) -> int:
        return self.page.before + len(self.page.signals)

    @property
    def newer(self) -> str | None:
        """The link to the page before this one, when there is one."""
        if not self.page.signals or self.page.before == 0:
            return None
        return f"{self.path}?voor={_cursor(self.page.signals[0])}"

    @property
    def older(self) -> str | None:
        """The link to the page after this one, when there is one."""
        if not self.page.signals or self.last >= self.page.total:
            return None
        return f"{self.path}?na={_cursor(self.page.signals[-1])}"


def _cursor(signal: Signal) -> str:
    """The opaque cursor of a signal's place in a list (``_KEY``)."""
    micros = (signal.created_at - _EPOCH) // _MICROSECOND
    text = f"{micros}.{signal.id}".encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()


def _bad_cursor() -> Refused:
    return Refused(
        "bad_cursor",
        400,
        "Pagina niet gevonden",
        "Deze verwijzing naar een pagina van de lijst klopt niet. Begin bij de eerste pagina.",
    )


def _key(cursor: str) -> repo.ListKey:
    """The (created_at, id) a cursor made by ``_cursor`` holds; Refused for anything
    else (only the cursor exactly as ``_cursor`` writes it)."""
    if not _CURSOR.fullmatch(cursor):
        raise _bad_cursor()
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise _bad_cursor() from None
    found = _KEY.fullmatch(text)
    if found is None:
        raise _bad_cursor()
    try:
        at = _EPOCH + int(found[1]) * _MICROSECOND
    except OverflowError:
        raise _bad_cursor() from None
    key = (at, found[2])
    if base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode() != cursor:
        raise _bad_cursor()
    return key


def _cursors(request: Request) -> tuple[repo.ListKey | None, repo.ListKey | None]:
    """(older than, newer than): the keys of the request's ``na`` or ``voor`` (at most
    one of them, once); Refused for anything else."""
    after = request.query_params.getlist("na")
    before = request.query_params.getlist("voor")
    if len(after) + len(before) > 1:
        raise _bad_cursor()
    if after:
        return _key(after[0]), None
    if before:
        return None, _key(before[0])
    return None, None


def routes(portal: Portal, services: Services, holders: KeyHolders, origin: str) -> list[Route]:
    """The professional's pages on ``portal``."""
    return Pages(portal, services, holders, origin).routes()


# How a household match's household is shared (MatchView.via_name), in Dutch.
VIA_LABELS = {"person": "zelfde jeugdige", "parent": "ouder", "address": "adres"}

_TYPES = {
    "match.created": "Nieuwe match",
    "match.joined": "Iemand sloot aan bij een match",
    "match.left": "Iemand verliet een match",
    "match.contact_changed": "Contactgegevens gewijzigd",
    "match.historical": "Eerdere melding (archief)",
    "match.coordinator": "Nieuwe regisseur",
    "match.handover_offered": "Regie aangeboden",
    "match.handover_declined": "Regie niet overgenomen",
    "match.reminder": "Herinnering opvolging",
    "match.safety_feedback": "Terugkoppeling Veilig Thuis",
}


def _professional(form: Mapping[str, str]) -> Professional:
    return Professional(
        form.get("name", "").strip(),
        forms.optional(form, "email"),
        forms.optional(form, "phone"),
        forms.optional(form, "function"),
    )


def _object(request: Request) -> dict[str, str | int] | None:
    """The id a refused request was about, for its audit entry (when it is an id)."""
    found = request.path_params.get("id", "")
    if not _ID.fullmatch(found):
        return None
    kind = "match" if request.url.path.startswith("/matches/") else "signal"
    return {kind: found}


def _reason(error: VirError) -> str:
    if isinstance(error, InputError):
        return "invalid"
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, NotPermitted):
        return "forbidden"
    if isinstance(error, Conflict):
        return "conflict"
    if isinstance(error, RateLimited):
        return "rate_limited"
    return "refused"


def _status(error: VirError) -> int:
    if isinstance(error, InputError):
        return 400
    if isinstance(error, NotPermitted):
        return 403
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, RateLimited):
        return 429
    return 400


def _problem(error: VirError, *, conflict: str | None = None) -> tuple[str, str]:
    """(field or "", a Dutch sentence) for a refusal shown above the form."""
    if isinstance(error, InputError):
        return forms.problem(error.field)
    if isinstance(error, NotPermitted):
        return "", (
            "Dit mag alleen de regisseur van deze match (of de organisatie waaraan de regie "
            "is aangeboden)."
        )
    if isinstance(error, Conflict):
        return "", conflict or "Dit is al vastgelegd, of kan nu nog niet."
    if isinstance(error, RateLimited):
        return "", (
            "Uw organisatie heeft te veel verzoeken gedaan. Probeer het over een paar minuten "
            "opnieuw."
        )
    return "", "Dit kon niet worden uitgevoerd."


def _is_oin(text: str) -> bool:
    return len(text) == 20 and text.isascii() and text.isdigit()
