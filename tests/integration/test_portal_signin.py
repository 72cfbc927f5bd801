"""Signing in to the portal in a real browser (Chromium), through the real development
OpenID provider: choose the organisation, pick the demo user at the provider, come back
signed in; the session cookie's flags as the browser holds them; signing out, at the
provider too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import postgres
from support.browser import axe_violations, chromium, focused_name, new_context
from support.portal import GP, SCHOOL, RunningPortal, running_portal

from vir.portal.app import SESSION_COOKIE

pytestmark = [
    pytest.mark.integration,
    # One browser run covers the pages; the database behind them is the hostile tests'.
    pytest.mark.skipif(postgres.on_postgresql(), reason="browser tests run on SQLite"),
]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPortal]:
    with running_portal(Path(tmp_path_factory.mktemp("portal"))) as running:
        yield running


@pytest.fixture(scope="module")
def browser(portal: RunningPortal) -> Iterator[Any]:
    folder = Path(portal.ca).parent
    with chromium([folder / "portal.crt", folder / "idp.crt"]) as found:
        yield found


def _sign_out_here_and_at_the_provider(page: Any, portal: RunningPortal) -> None:
    """Sign out, then on at the provider (its end_session_endpoint), which sends the
    browser back to the portal's start page."""
    with page.expect_request(f"{portal.idp.issuer}/logout?**"):
        page.get_by_role("button", name="Uitloggen").click()
    page.wait_for_url(f"{portal.url}/")
    page.get_by_role("heading", level=1, name="Inloggen").wait_for()


def test_sign_in_and_out_in_the_browser(
    portal: RunningPortal, browser: Any, record_property: Any
) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(portal.url)
    assert page.locator("html").get_attribute("lang") == "nl"
    checked = {"sign-in page": axe_violations(page)}
    page.get_by_role("link", name=f"Inloggen bij {GP.name}").click()
    page.wait_for_url(f"{portal.idp.issuer}/authorize**")
    checked["provider's page"] = axe_violations(page)
    with page.expect_navigation(url=f"{portal.url}/"):
        page.get_by_role("button", name="Dokter Jansen").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Welkom, Dokter Jansen"
    checked["start page"] = axe_violations(page)
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies[SESSION_COOKIE]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Strict"
    assert session["expires"] == -1  # a session cookie: gone when the browser closes
    # Past the page's form-action 'self' (the next test keeps that policy).
    _sign_out_here_and_at_the_provider(page, portal)
    assert SESSION_COOKIE not in {c["name"] for c in context.cookies()}
    page.goto(f"{portal.url}/nergens")
    checked["not found"] = axe_violations(page)
    page.goto(f"{portal.url}/auth/callback?state=x")
    checked["sign-in failed"] = axe_violations(page)
    context.close()
    assert all(not found for found in checked.values()), checked
    record_property(
        "terminal_summary", f"portal: axe-core WCAG 2.1 AA, {len(checked)} pages, 0 violations"
    )


def test_signing_out_reaches_the_provider_under_the_pages_own_policy(
    portal: RunningPortal, browser: Any
) -> None:
    """The other tests' context bypasses the pages' Content-Security-Policy (to inject
    axe-core). This one does not: the sign-out form's page allows form posts to the
    portal only (form-action 'self'), which a browser holds a form's redirects to as
    well, and the way on to the provider's end_session_endpoint must get past it."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(portal.url)
    page.get_by_role("link", name=f"Inloggen bij {GP.name}").click()
    page.wait_for_url(f"{portal.idp.issuer}/authorize**")
    with page.expect_navigation(url=f"{portal.url}/"):
        page.get_by_role("button", name="Dokter Jansen").click()
    _sign_out_here_and_at_the_provider(page, portal)
    context.close()


def test_sign_in_with_the_keyboard_only(portal: RunningPortal, browser: Any) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(portal.url)
    page.keyboard.press("Tab")
    assert focused_name(page) == "Naar de inhoud"  # the skip link comes first
    page.keyboard.press("Tab")
    assert focused_name(page) == f"Inloggen bij {SCHOOL.name}"  # organisations by name
    page.keyboard.press("Enter")
    page.wait_for_url(f"{portal.idp.issuer}/authorize**")
    for _ in range(5):
        page.keyboard.press("Tab")
        if focused_name(page) == "Juf de Vries":
            break
    with page.expect_navigation(url=f"{portal.url}/"):
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", level=1).inner_text() == "Welkom, Juf de Vries"
    context.close()
