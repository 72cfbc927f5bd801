"""The follow-up officer's pages (issue 18, part 4): the region's overdue matches and
reminders to their participants, in the browser.

For a person whose portal role is ``follow_up_officer``, of a municipality. The portal
calls the index's own follow-up check (vir.services.followup) in-process, acting as the
municipality with ``Role.FOLLOW_UP_OFFICER`` and named in every audit entry by the
person's pseudonymous id, exactly as the API's certificate would: the officer sees what
the API shows (when a match was made, the region's participating organisations with
their professionals' contact details and whether contact is confirmed, how many
participants are in other regions, the region's last reminder) and nothing about
persons or signals. The service audits the list and the reminder; the portal audits
every refusal (``portal.request_refused``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vir.domain.caller import Caller
from vir.domain.errors import AccessDenied, Conflict, InputError, NotFound, RateLimited
from vir.domain.followup import MAX_DAYS
from vir.domain.organisations import Category, Organisation, Role
from vir.portal import forms, sessions
from vir.portal.config import PortalRole
from vir.portal.guard import Refused, RolePages
from vir.services.followup import NOT_OVERDUE, FollowUpCheck, OverduePage, Reminder, period
from vir.store.organisations import get_organisation

if TYPE_CHECKING:
    from vir.portal.state import Portal

_LOCAL = ZoneInfo("Europe/Amsterdam")
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Overdue matches per page of the list ("Volgende" goes on with the service's cursor).
PAGE = 20
# The service's fields, as the list's form names them.
_FIELDS = {"days": forms.OVERDUE_DAYS, "after": forms.OVERDUE_AFTER}


@dataclass(frozen=True)
class Officer:
    """The signed-in follow-up officer as a caller of the follow-up check."""

    user: sessions.PortalSession
    organisation: Organisation
    caller: Caller


class FollowUpPages(RolePages[Officer]):
    """The follow-up officer's pages on ``portal`` (vir.portal.state.Portal)."""

    no_access = "Deze pagina is voor de functionaris opvolging van een gemeente."

    def __init__(self, portal: Portal, origin: str) -> None:
        super().__init__(portal, origin)
        self.check = FollowUpCheck(portal.db, portal.clock)

    def routes(self) -> list[Route]:
        return [
            Route("/opvolging", self.guarded(self.overdue_page)),
            Route(
                "/opvolging/{id}/herinnering",
                self.guarded(self.remind_post, post=forms.REMINDER),
                methods=["POST"],
            ),
        ]

    # -- who acts, refusals, rendering --------------------------------------------------

    def acting(self, user: sessions.PortalSession) -> Officer | None:
        """The person as the municipality's follow-up officer; None for anyone else."""
        if PortalRole.FOLLOW_UP_OFFICER not in user.roles:
            return None
        with self.db.read() as session:
            organisation = get_organisation(session, user.oin)
        if organisation is None or organisation.category is not Category.MUNICIPALITY:
            return None
        caller = Caller(organisation, "", Role.FOLLOW_UP_OFFICER, person=user.person)
        return Officer(user, organisation, caller)

    # -- the overdue matches ------------------------------------------------------------

    def overdue(self, who: Officer, query: Mapping[str, str]) -> OverduePage:
        """A page of the region's overdue matches for the list's query (``dagen``,
        ``na``); InputError naming the form's field."""
        days = _days(query.get(forms.OVERDUE_DAYS))
        after = query.get(forms.OVERDUE_AFTER) or None
        try:
            return self.check.overdue(who.caller, days, after, PAGE)
        except InputError as error:
            field = _FIELDS.get(error.field, error.field)
            raise InputError(field, error.detail) from None

    async def overdue_page(self, request: Request, who: Officer) -> Response:
        query = request.query_params
        # The hint names the region's own term, whatever number of days is asked for.
        region = await run_in_threadpool(period, self.db, who.organisation.region)
        try:
            page = await run_in_threadpool(self.overdue, who, query)
        except InputError as error:
            await run_in_threadpool(self.refuse, who.user, "invalid", {"field": error.field})
            return self.render(
                who,
                "followup_overdue.html",
                400,
                page=None,
                days=query.get(forms.OVERDUE_DAYS, "")[:10],
                default_days=region.days,
                max_days=MAX_DAYS,
                problem=forms.problem(error.field),
            )
        return self.render(
            who,
            "followup_overdue.html",
            page=page,
            days=str(page.days),
            default_days=region.days,
            max_days=MAX_DAYS,
            problem=None,
            first=not query.get(forms.OVERDUE_AFTER),
        )

    # -- reminders ----------------------------------------------------------------------

    def remind(self, who: Officer, match_id: str) -> Reminder:
        """The reminder, or the refusal in plain Dutch."""
        if not _ID.fullmatch(match_id):
            raise _not_found(None)
        about = {"match": match_id}
        try:
            return self.check.remind(who.caller, match_id)
        except NotFound:
            raise _not_found(about) from None
        except AccessDenied:
            raise Refused(
                "forbidden",
                403,
                "Geen match van uw regio",
                "Aan deze match doet geen organisatie uit uw regio mee. U kunt alleen "
                "herinneringen sturen voor matches in uw eigen regio.",
                about,
            ) from None
        except RateLimited as limited:
            again = self.portal.clock() + dt.timedelta(seconds=limited.retry_after)
            raise Refused(
                "rate_limited",
                429,
                "Vandaag al herinnerd",
                "Voor deze match is de afgelopen 24 uur al een herinnering gestuurd. U kunt "
                f"weer een herinnering sturen vanaf {_local(again)}.",
                about,
            ) from None
        except Conflict as conflict:
            raise self.not_needed(who, conflict, about) from None

    def not_needed(self, who: Officer, conflict: Conflict, about: Mapping[str, str]) -> Refused:
        """The service's two conflicts: the match is not overdue yet, or every participant
        of the region confirmed contact (its message says which)."""
        if conflict.detail.startswith(NOT_OVERDUE):
            days = period(self.db, who.organisation.region).days
            text = (
                f"Deze match is jonger dan {days} dagen. Een herinnering kan pas als het "
                "contact daarna nog niet is bevestigd."
            )
        else:
            text = (
                "Alle deelnemende organisaties uit uw regio hebben het contact al bevestigd. "
                "Een herinnering is niet nodig."
            )
        return Refused("conflict", 409, "Geen herinnering nodig", text, about)

    async def remind_post(self, request: Request, who: Officer) -> Response:
        reminder = await run_in_threadpool(self.remind, who, request.path_params["id"])
        return self.render(who, "followup_reminded.html", reminder=reminder)


def routes(portal: Portal, origin: str) -> list[Route]:
    """The follow-up officer's pages on ``portal``."""
    return FollowUpPages(portal, origin).routes()


def _days(value: str | None) -> int | None:
    """The number of days asked for (None: the region's period); InputError otherwise."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_DAYS):
        raise InputError(forms.OVERDUE_DAYS, f"give a number of days from 1 to {MAX_DAYS}")
    return int(text)


def _local(moment: dt.datetime) -> str:
    """A moment as Dutch local time, as the pages show moments."""
    return moment.astimezone(_LOCAL).strftime("%d-%m-%Y %H:%M")


def _not_found(about: Mapping[str, str] | None) -> Refused:
    return Refused(
        "not_found",
        404,
        "Niet gevonden",
        "Deze match bestaat niet (meer), of is al beëindigd.",
        about,
    )
