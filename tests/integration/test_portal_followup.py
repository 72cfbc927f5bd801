"""The follow-up officer's pages in a real browser (Chromium), against the real
development OpenID provider, index database and portal (support.portal_world).

The matches are made by the index's own services at a clock 16 days back
(support.portal_followup): the portal, on the real clock, finds them overdue through
the follow-up check. The demo follow-up officer of Rotterdam (Daan Mulder) signs in,
sees exactly Rotterdam's overdue matches over two pages (not Utrecht's, not those with
contact confirmed, not the fresh one), chooses another number of days, sends a
reminder with the keyboard only (youth care, the one without confirmed contact, gets
``match.reminder`` through the index's API) and is refused politely the second time.
axe-core checks every page and state reached."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import postgres
from support.browser import axe_violations, chromium, follow, new_context, tab_to
from support.portal_followup import AGE, Matches, build
from support.portal_world import GP, MUNICIPALITY, SCHOOL, YOUTH_CARE, PortalWorld, portal_world

from vir.services.devsetup import DEMO_ORGANISATIONS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(postgres.on_postgresql(), reason="browser tests run on SQLite"),
]
SCHOOL_NAME, GP_NAME, CARE_NAME = (o.name for o in DEMO_ORGANISATIONS[:3])
FILLERS = 20  # with the two others: 22 overdue, a second page (20 a page)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    with portal_world(Path(tmp_path_factory.mktemp("followup"))) as running:
        yield running


@pytest.fixture(scope="module")
def matches(world: PortalWorld) -> Matches:
    return build(world, fillers=FILLERS)


@pytest.fixture(scope="module")
def browser(world: PortalWorld) -> Iterator[Any]:
    with chromium(world.certificates) as found:
        yield found


def _listed(page: Any) -> list[str]:
    """The match ids of the list as shown: the reminder buttons' forms."""
    actions = page.locator("main form[method=post]").evaluate_all(
        "forms => forms.map(f => f.getAttribute('action'))"
    )
    return [re.fullmatch(r"/opvolging/([0-9a-f-]{36})/herinnering", a)[1] for a in actions]


def _reminders(world: PortalWorld, oin: str, match_id: str) -> list[dict[str, Any]]:
    """The organisation's ``match.reminder`` notifications of the match, as the index's
    API gives them (numbered by the audit integrator: waited for a moment)."""
    found: list[dict[str, Any]] = []
    for _ in range(50):
        with world.service.client(oin) as client:
            items, _next = client.notifications(limit=500)
        found = [n for n in items if n["type"] == "match.reminder" and n["match"]["id"] == match_id]
        if found:
            return found
        time.sleep(0.1)
    return found


def test_the_officer_lists_the_regions_overdue_matches_and_reminds(
    world: PortalWorld, matches: Matches, browser: Any, record_property: Any
) -> None:
    checked: dict[str, Any] = {}
    context = new_context(browser)
    page = context.new_page()
    page.goto(world.url)
    page.get_by_role("link", name="Inloggen bij Gemeente Rotterdam").click()
    page.wait_for_url(f"{world.idp_url}/authorize**")
    with page.expect_navigation(url=f"{world.url}/"):
        page.get_by_role("button", name="Daan Mulder").click()
    checked["start page"] = axe_violations(page)

    # Rotterdam's overdue matches, oldest first, over two pages; nothing of Utrecht's.
    page.get_by_role("navigation", name="Menu opvolging").get_by_role(
        "link", name="Opvolging"
    ).click()
    page.wait_for_url(f"{world.url}/opvolging")
    assert page.get_by_label("Aantal dagen").input_value() == "14"
    first = _listed(page)
    assert len(first) == 20
    checked["overdue matches"] = axe_violations(page)
    main = page.inner_text("main")
    assert "Langer dan 14 dagen open" in main and f"{AGE} dagen" in main
    partly = page.locator("section", has=page.get_by_role("heading")).first
    rows = {
        r.locator("td").first.inner_text(): r.locator("td").last.inner_text()
        for r in partly.locator("tbody tr").all()
    }
    assert rows == {
        SCHOOL_NAME: "contact bevestigd",
        GP_NAME: "contact bevestigd",
        CARE_NAME: "nog niet",
    }
    assert "Contact Jeugdzorg" in partly.inner_text() and "0101234567" in partly.inner_text()
    assert "Nog niet gestuurd" in partly.inner_text()
    spanning = page.locator("section").nth(1)
    assert [r.locator("td").first.inner_text() for r in spanning.locator("tbody tr").all()] == [
        CARE_NAME
    ]
    assert re.search(r"Deelnemers in andere regio's\s+1", spanning.inner_text())
    follow(page, page.get_by_role("link", name="Volgende"))
    page.wait_for_url(re.compile(r".*/opvolging\?dagen=14&na=.*"))
    second = _listed(page)
    checked["overdue matches, the second page"] = axe_violations(page)
    assert page.get_by_role("link", name="Volgende").count() == 0
    assert first + second == matches.rotterdam_overdue
    for other in (matches.utrecht, matches.confirmed, matches.fresh):
        assert other not in first + second

    # Another number of days: a wrong one is named; with 30, nothing is overdue.
    page.get_by_label("Aantal dagen").fill("0")
    follow(page, page.get_by_role("button", name="Toon matches"))
    page.wait_for_url(f"{world.url}/opvolging?dagen=0")
    assert 'Controleer het veld "Aantal dagen"' in page.inner_text("main")
    assert page.get_by_label("Aantal dagen").get_attribute("aria-invalid") == "true"
    checked["overdue matches, a wrong number of days"] = axe_violations(page)
    page.get_by_label("Aantal dagen").fill("30")
    follow(page, page.get_by_role("button", name="Toon matches"))
    page.wait_for_url(f"{world.url}/opvolging?dagen=30")
    assert "Er zijn geen matches in uw regio" in page.inner_text("main")
    # The hint names the region's term, not the number asked for (it said 30 here).
    assert "de termijn van uw regio is 14 dagen" in page.inner_text("main")
    assert _listed(page) == []
    checked["overdue matches, none"] = axe_violations(page)

    # The reminder, with the keyboard only: the first match's button.
    page.goto(f"{world.url}/")
    tab_to(page, "Opvolging")
    with page.expect_navigation(url=f"{world.url}/opvolging"):
        page.keyboard.press("Enter")
    tab_to(page, "Herinnering sturen")
    with page.expect_navigation(url=f"{world.url}/opvolging/{matches.partly}/herinnering"):
        page.keyboard.press("Enter")
    main = page.inner_text("main")
    assert "Herinnering gestuurd" in main
    assert page.locator("main li").all_inner_texts() == [CARE_NAME]
    checked["reminder sent"] = axe_violations(page)
    (told,) = _reminders(world, YOUTH_CARE, matches.partly)
    assert told["local_ref"].startswith("opvolging-")
    for oin in (SCHOOL, GP):
        assert _reminders(world, oin, matches.partly) == []

    # Again today: refused politely, saying when; the list shows the reminder.
    tab_to(page, "Terug naar de opvolging")
    with page.expect_navigation(url=f"{world.url}/opvolging"):
        page.keyboard.press("Enter")
    assert "Nog niet gestuurd" not in page.locator("section").first.inner_text()
    tab_to(page, "Herinnering sturen")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    main = page.inner_text("main")
    assert "Vandaag al herinnerd" in main
    assert re.search(r"vanaf \d\d-\d\d-\d{4} \d\d:\d\d", main)
    checked["reminder refused: already today"] = axe_violations(page)
    assert len(_reminders(world, YOUTH_CARE, matches.partly)) == 1
    context.close()

    assert all(not found for found in checked.values()), checked
    entries = [
        json.loads(b if isinstance(b, str) else bytes(b))
        for (b,) in world.service.sql(
            "SELECT body FROM audit_entries WHERE organisation = :oin", oin=MUNICIPALITY
        )
    ]
    reminded = [e for e in entries if e["action"] == "match.reminded"]
    assert [e["objects"]["match"] for e in reminded] == [matches.partly]
    assert reminded[0]["actor"].startswith("person:")  # the officer, by their pseudonym
    refused = [e for e in entries if e["action"] == "portal.request_refused"]
    assert [(e["reason"], e.get("objects")) for e in refused] == [
        ("invalid", {"field": "dagen"}),
        ("rate_limited", {"match": matches.partly}),
    ]
    record_property(
        "terminal_summary",
        f"follow-up officer pages: axe-core WCAG 2.1 AA, {len(checked)} pages and states, "
        "0 violations",
    )
