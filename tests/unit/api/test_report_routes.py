"""The report routes: a signed checkpoint in every report, CSV for Dutch Excel or for
programs (``dialect``; by default Dutch for a Dutch Accept-Language)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inapp import InApp, in_app
from support.world import MUNICIPALITY, OPERATOR

from vir.api.identity import require_caller
from vir.domain.caller import Caller
from vir.domain.organisations import Role

PERIOD = {"from": "2026-01-01", "to": "2027-01-01"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as running:
        officer = Caller(MUNICIPALITY, "f" * 64, Role.PRIVACY_OFFICER)
        running.app.dependency_overrides[require_caller] = lambda: officer
        yield running


@pytest.mark.parametrize("path", ["/v1/privacy/reports/events", "/v1/privacy/reports/monitor"])
def test_every_report_states_its_checkpoint(app: InApp, path: str) -> None:
    report = app.request("GET", path, params=PERIOD).json()
    checkpoint = report["checkpoint"]
    assert checkpoint["tree_size"] >= 1
    assert checkpoint["verify"].startswith("vir report verify --tree-size ")
    assert checkpoint["note"].startswith(checkpoint["origin"] + "\n")


def test_csv_dialects(app: InApp) -> None:
    path = "/v1/privacy/reports/events"
    dutch = app.request("GET", path, params=PERIOD | {"format": "csv", "dialect": "nl"})
    assert dutch.headers["content-type"] == "text/csv; charset=utf-8"
    assert dutch.content.startswith(b"\xef\xbb\xbfOnderdeel;OIN;Organisatie;")
    rows = list(csv.reader(io.StringIO(dutch.text.lstrip("\ufeff")), delimiter=";"))
    assert any(row[0] == "Herkomst" and row[3] == "Controleren met" for row in rows)
    data = app.request("GET", path, params=PERIOD | {"format": "csv", "dialect": "data"})
    assert data.text.splitlines()[0] == "section,oin,organisation,key,subkey,value"
    by_language = app.request(
        "GET",
        "/v1/privacy/reports/monitor",
        params=PERIOD | {"format": "csv"},
        headers={"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"},
    )
    assert by_language.text.startswith("\ufeffMonitor Verwijsindex;Periode;")
    program = app.request("GET", path, params=PERIOD | {"format": "csv"})
    assert program.text.startswith("section,")
    wrong = app.request("GET", path, params=PERIOD | {"format": "csv", "dialect": "excel"})
    assert wrong.status_code == 422


def test_the_monitors_level_can_be_chosen(app: InApp) -> None:
    path = "/v1/privacy/reports/monitor"
    auto = app.request("GET", path, params=PERIOD).json()
    assert auto["asked"] == {"granularity": "auto", "grouping": "auto"}
    assert 0 <= auto["suppressed"]["share"] <= 1
    chosen = app.request(
        "GET", path, params=PERIOD | {"granularity": "year", "grouping": "categories"}
    ).json()
    assert (chosen["granularity"], chosen["grouping"]) == ("year", "categories")
    wrong = app.request("GET", path, params=PERIOD | {"granularity": "week"})
    assert wrong.status_code == 422


@pytest.mark.parametrize("report", ["events", "monitor", "participation"])
def test_a_region_no_organisation_is_in_is_refused_naming_region(app: InApp, report: str) -> None:
    national = Caller(OPERATOR, "e" * 64, Role.NATIONAL_PRIVACY_OFFICER)
    app.app.dependency_overrides[require_caller] = lambda: national
    answer = app.request(
        "GET", f"/v1/privacy/reports/{report}", params=PERIOD | {"region": "Roterdam"}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert [e["field"] for e in problem["errors"]] == ["region"]
    assert "Rotterdam" in problem["detail"]  # the regions there are, to choose from
    known = app.request(
        "GET", f"/v1/privacy/reports/{report}", params=PERIOD | {"region": "Rotterdam"}
    )
    assert known.status_code == 200
