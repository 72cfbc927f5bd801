"""Registration in the browser with a shared key: three real key holders, any two of which
answer (``vir dev init --threshold 2-of-3``). The page asks them, combines two shares'
answers and unblinds: the pseudonym stored is the Python client's for the same child,
here given by surname, date of birth and gender."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import postgres
from support.browser import axe_violations, chromium, new_context
from support.portal_world import GP, PortalWorld, portal_world

from vir.client.canonical import nl_person
from vir.domain.encoding import b64url_decode
from vir.services.devsetup import DEMO_ORGANISATIONS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(postgres.on_postgresql(), reason="browser tests run on SQLite"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    with portal_world(Path(tmp_path_factory.mktemp("shared")), threshold="2-of-3") as running:
        yield running


def _register(world: PortalWorld, surname: str, unreachable: str | None = None) -> list[str]:
    """Register a child by surname in the browser as the GP; the key holders asked, in
    the order asked. ``unreachable``: a key holder's URL whose requests fail."""
    with chromium(world.certificates) as browser:
        context = new_context(browser)
        evaluations: list[str] = []
        context.on(
            "request",
            lambda r: evaluations.append(r.url) if r.url.endswith("/oprf/evaluate") else None,
        )
        if unreachable is not None:
            context.route(f"{unreachable}/**", lambda route: route.abort("connectionrefused"))
        page = context.new_page()
        page.goto(world.url)
        page.get_by_role("link", name=f"Inloggen bij {DEMO_ORGANISATIONS[1].name}").click()
        page.wait_for_url(f"{world.idp_url}/authorize**")
        with page.expect_navigation(url=f"{world.url}/"):
            page.get_by_role("button", name="Dokter Jansen").click()
        page.goto(f"{world.url}/meldingen/nieuw")
        page.get_by_label("Achternaam").fill(surname)
        page.get_by_label("Geboortedatum").fill("2014-05-06")
        page.get_by_label("Geslacht").select_option("x")
        with page.expect_navigation(url=re.compile(r".*/meldingen/[0-9a-f-]{36}\?klaar=gemeld")):
            page.get_by_role("button", name="Melden").click()
        assert axe_violations(page) == []
        context.close()
    return evaluations


def _stored(world: PortalWorld, surname: str) -> None:
    """The pseudonym stored for the child is the Python client's."""
    with world.service.client("gp") as client:
        expected = client.pseudonymise([nl_person(surname, "2014-05-06", "x")])
    stored = world.service.sql("SELECT person FROM signals WHERE oin = :oin", oin=GP)
    assert b64url_decode(expected.pseudonyms[0]) in [bytes(p) for (p,) in stored]


def _holders(world: PortalWorld) -> list[str]:
    return list(json.loads((world.dev / "endpoints.json").read_text())["keyholders"])


def test_a_threshold_registration_in_the_browser(world: PortalWorld) -> None:
    holders = _holders(world)
    evaluations = _register(world, "van 't Hof")
    # Two answers suffice, and every holder asked counts an evaluation of the GP: the
    # first two are asked, not all three.
    assert sorted(evaluations) == [f"{url}/v1/oprf/evaluate" for url in holders[:2]]
    _stored(world, "van 't Hof")


def test_a_holder_that_does_not_answer_is_replaced_by_the_next(world: PortalWorld) -> None:
    holders = _holders(world)
    evaluations = _register(world, "de Wit", unreachable=holders[0])
    assert sorted(set(evaluations)) == [f"{url}/v1/oprf/evaluate" for url in holders]
    assert evaluations[-1] == f"{holders[2]}/v1/oprf/evaluate"  # asked after the failure
    _stored(world, "de Wit")
