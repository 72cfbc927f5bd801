"""The follow-up officer's portal pages against hostile use, by hand (no browser): each
guard on its own, through the real portal, provider, key holder and database, with
overdue matches made by the index's own services at a clock 16 days back
(support.portal_followup).

Only a municipality's follow-up officer opens the pages (a professional, a privacy
officer: 403, audited); a reminder needs the session's CSRF token and the portal's
Origin; a wrong number of days or page cursor is refused naming the field; a malformed
or unknown match id is not found; another region's match, one not overdue and one with
every contact confirmed are refused in plain Dutch; each refusal is audited and sends
nothing. The list shows nothing about persons or signals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.portal_followup import Matches, build
from support.portal_world import (
    DOCTOR,
    GP,
    MUNICIPALITY,
    PORTAL_HTTP_MARKS,
    PRIVACY_OFFICER,
    YOUTH_CARE,
    PortalWorld,
    portal_world,
)

from vir.services.devsetup import DEMO_ORGANISATIONS

pytestmark = PORTAL_HTTP_MARKS
OFFICER = f"{MUNICIPALITY}-opvolging"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
UPPER = "ABCDEF00-0000-4000-8000-00000000000A"  # an id is lower case
CARE_NAME = DEMO_ORGANISATIONS[2].name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    with portal_world(Path(tmp_path_factory.mktemp("followup"))) as running:
        yield running


@pytest.fixture(scope="module")
def matches(world: PortalWorld) -> Matches:
    return build(world)


@pytest.fixture
def officer(world: PortalWorld) -> Iterator[tuple[httpx.Client, str]]:
    with world.http() as http:
        yield http, world.sign_in(http, MUNICIPALITY, OFFICER)


def _entries(world: PortalWorld) -> list[dict[str, Any]]:
    rows = world.service.sql("SELECT body FROM audit_entries ORDER BY seq")
    return [json.loads(b if isinstance(b, str) else bytes(b)) for (b,) in rows]


def _refusals(world: PortalWorld) -> list[tuple[str | None, dict[str, Any]]]:
    return [
        (e.get("reason"), e.get("objects") or {})
        for e in _entries(world)
        if e["action"] == "portal.request_refused"
    ]


def _reminders(world: PortalWorld) -> int:
    return len([e for e in _entries(world) if e["action"] == "match.reminded"])


def _main(html: str) -> str:
    return html.split('<main id="inhoud">', 1)[1].split("</main>", 1)[0]


def test_the_list_shows_the_regions_participants_and_nothing_of_persons(
    world: PortalWorld, matches: Matches, officer: tuple[httpx.Client, str]
) -> None:
    http, _csrf = officer
    page = http.get("/opvolging")
    assert page.status_code == 200
    listed = re.findall(r'action="/opvolging/([0-9a-f-]{36})/herinnering"', page.text)
    assert listed == [matches.partly, matches.spanning]
    main = _main(page.text)
    assert CARE_NAME in main and "nog niet" in main and "contact bevestigd" in main
    # No local reference, signal id or pseudonym: only organisations and their people.
    signals = world.service.sql("SELECT id, local_ref FROM signals")
    assert signals and all(i not in main and r not in main for i, r in signals)
    assert "opvolging-" not in main
    assert page.headers["cache-control"] == "no-store"
    listed_entries = [e for e in _entries(world) if e["action"] == "follow_up.overdue_listed"]
    assert listed_entries and listed_entries[-1]["actor"].startswith("person:")


@pytest.mark.parametrize(
    ("person", "oin"), [(DOCTOR, GP), (PRIVACY_OFFICER, MUNICIPALITY)], ids=["gp", "privacy"]
)
def test_only_the_follow_up_officer_opens_the_pages(
    world: PortalWorld, matches: Matches, person: str, oin: str
) -> None:
    before = _reminders(world)
    with world.http() as http:
        csrf = world.sign_in(http, oin, person)
        page = http.get("/opvolging")
        assert page.status_code == 403 and "Geen toegang" in page.text
        assert matches.partly not in page.text
        sent = http.post(f"/opvolging/{matches.spanning}/herinnering", data={"csrf": csrf})
        assert sent.status_code == 403
        home = http.get("/").text
        assert 'href="/opvolging"' not in home  # no link for them either
    assert _reminders(world) == before
    assert ("forbidden", {}) in _refusals(world)
    with world.http() as anonymous:
        for answer in (
            anonymous.get("/opvolging"),
            anonymous.post(f"/opvolging/{matches.spanning}/herinnering", data={"csrf": "x"}),
        ):
            assert answer.status_code == 303 and answer.headers["location"] == "/"


@pytest.mark.parametrize("case", ["missing", "wrong", "origin", "json", "extra", "huge"])
def test_a_reminder_needs_the_csrf_token_and_the_portals_origin(
    world: PortalWorld, matches: Matches, officer: tuple[httpx.Client, str], case: str
) -> None:
    http, csrf = officer
    path = f"/opvolging/{matches.spanning}/herinnering"
    before = _reminders(world)
    if case == "missing":
        answer = http.post(path, data={})
    elif case == "wrong":
        answer = http.post(path, data={"csrf": "x" * 43})
    elif case == "origin":
        answer = http.post(path, data={"csrf": csrf}, headers={"origin": "https://evil.example"})
    elif case == "json":
        answer = http.post(path, json={"csrf": csrf})
    elif case == "extra":
        answer = http.post(path, data={"csrf": csrf, "organisation": YOUTH_CARE})
    else:
        answer = http.post(path, data={"csrf": csrf, "x": "y" * 20000})
    status, heading, reason = {
        "extra": (400, "Niet uitgevoerd", "unexpected_field"),
        "huge": (413, "Formulier te groot", "form_too_large"),  # not taken for a stale form
    }.get(case, (403, "Niet uitgevoerd", "csrf"))
    assert answer.status_code == status, answer.text
    assert heading in answer.text
    assert _reminders(world) == before
    assert (reason, {}) in _refusals(world)


@pytest.mark.parametrize(
    "query",
    [
        {"dagen": "0"},
        {"dagen": "366"},
        {"dagen": "-1"},
        {"dagen": "abc"},
        {"dagen": "1e2"},
        {"dagen": "\u0661\u0664"},  # Arabic-Indic digits: not ASCII
        {"dagen": "9" * 5000},
        {"dagen": "14; DROP TABLE signals"},
    ],
)
def test_a_wrong_number_of_days_is_refused_naming_the_field(
    world: PortalWorld, matches: Matches, officer: tuple[httpx.Client, str], query: dict[str, str]
) -> None:
    http, _csrf = officer
    page = http.get("/opvolging", params=query)
    assert page.status_code == 400
    assert "Controleer het veld &#34;Aantal dagen&#34;" in page.text
    assert 'aria-invalid="true"' in page.text
    assert matches.partly not in page.text
    assert ("invalid", {"field": "dagen"}) in _refusals(world)


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "1.abc",
        "12345678901234567890." + UNKNOWN,  # 20 digits
        "1." + UNKNOWN + "0",
        "1." + UPPER,
        "n" * 5000,
    ],
)
def test_a_malformed_cursor_is_refused_naming_the_field(
    world: PortalWorld, matches: Matches, officer: tuple[httpx.Client, str], cursor: str
) -> None:
    http, _csrf = officer
    page = http.get("/opvolging", params={"na": cursor})
    assert page.status_code == 400
    assert "Controleer het veld &#34;Pagina&#34;" in page.text
    assert len(cursor) < 5 or cursor not in page.text  # not repeated
    assert ("invalid", {"field": "na"}) in _refusals(world)


def test_a_wellformed_cursor_goes_on_from_where_it_says(
    world: PortalWorld, matches: Matches, officer: tuple[httpx.Client, str]
) -> None:
    http, _csrf = officer
    # A cursor past every match: an empty page, no "Volgende", no error.
    page = http.get("/opvolging", params={"na": f"{10**16}.{UNKNOWN}"})
    assert page.status_code == 200 and "Volgende" not in page.text
    assert "herinnering" not in _main(page.text)


@pytest.mark.parametrize(
    ("match", "status", "reason", "text"),
    [
        ("not-an-id", 404, "not_found", "Niet gevonden"),
        (UPPER, 404, "not_found", "Niet gevonden"),
        (UNKNOWN, 404, "not_found", "Niet gevonden"),
        ("utrecht", 403, "forbidden", "Aan deze match doet geen organisatie uit uw regio mee"),
        ("fresh", 409, "conflict", "Deze match is jonger dan 14 dagen"),
        ("confirmed", 409, "conflict", "hebben het contact al bevestigd"),
    ],
)
def test_reminders_that_are_refused(
    world: PortalWorld,
    matches: Matches,
    officer: tuple[httpx.Client, str],
    match: str,
    status: int,
    reason: str,
    text: str,
) -> None:
    http, csrf = officer
    match_id = getattr(matches, match, match)
    before = _reminders(world)
    answer = http.post(f"/opvolging/{match_id}/herinnering", data={"csrf": csrf})
    assert answer.status_code == status, answer.text
    assert text in answer.text
    assert _reminders(world) == before
    about = {"match": match_id} if re.fullmatch(r"[0-9a-f-]{36}", match_id) else {}
    assert (reason, about) in _refusals(world)


def test_a_reminder_reaches_the_regions_participants_once_a_day(
    world: PortalWorld, matches: Matches, officer: tuple[httpx.Client, str]
) -> None:
    http, csrf = officer
    path = f"/opvolging/{matches.spanning}/herinnering"
    sent = http.post(path, data={"csrf": csrf})
    assert sent.status_code == 200, sent.text
    # Rotterdam's youth care only: Utrecht's GP is Utrecht's officer's to remind.
    assert re.findall(r"<li>(.*?)</li>", _main(sent.text)) == [CARE_NAME]
    told = world.service.sql(
        "SELECT oin FROM notifications WHERE match_id = :m AND type = 'match.reminder'",
        m=matches.spanning,
    )
    assert [oin for (oin,) in told] == [YOUTH_CARE]
    again = http.post(path, data={"csrf": csrf})
    assert again.status_code == 429 and "Vandaag al herinnerd" in again.text
    assert ("rate_limited", {"match": matches.spanning}) in _refusals(world)
    listed = http.get("/opvolging").text
    assert "Nog niet gestuurd" in listed  # the other match, not reminded
    assert listed.count("Nog niet gestuurd") == 1
