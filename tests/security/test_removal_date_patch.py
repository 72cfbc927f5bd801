"""A new removal date over the API (PATCH ``remove_on``): malformed, impossible and
out-of-rule dates are refused with a problem naming ``remove_on``, another
organisation's signal is 404, and a refusal changes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.inapp import InApp, in_app, signal_body


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as running:
        running.as_caller(0)
        reply = running.request(
            "POST", "/v1/signals", json=signal_body("r-1", "kim", running.epoch)
        )
        assert reply.status_code == 201, reply.text
        yield running


def _remove_on(app: InApp) -> str:
    found: str = app.request("GET", "/v1/signals/r-1").json()["remove_on"]
    return found


@pytest.mark.parametrize(
    "value",
    [
        "2027-02-30",
        "27-01-2027",
        "2027-1-5",
        "20270105",
        "2027-01-05T00:00:00Z",
        20270105,
        "",
        "x" * 5000,
        None,
    ],
)
def test_a_malformed_date_names_the_field(app: InApp, value: Any) -> None:
    before = _remove_on(app)
    reply = app.request("PATCH", "/v1/signals/r-1", json={"remove_on": value})
    assert reply.status_code in (400, 422), reply.text
    if value is not None:
        assert "remove_on" in reply.text
    assert _remove_on(app) == before


def test_out_of_rule_dates_are_refused(app: InApp) -> None:
    before = _remove_on(app)
    today = app.app.state.clock().date()
    for day in (today, today + dt.timedelta(days=2 * 366 + 1)):
        reply = app.request("PATCH", "/v1/signals/r-1", json={"remove_on": day.isoformat()})
        assert reply.status_code == 422, reply.text
        assert [e["field"] for e in reply.json()["errors"]] == ["remove_on"]
    assert _remove_on(app) == before
    soon = (today + dt.timedelta(days=30)).isoformat()
    reply = app.request("PATCH", "/v1/signals/r-1", json={"remove_on": soon})
    assert reply.status_code == 200 and reply.json()["remove_on"] == soon


def test_another_organisations_signal(app: InApp) -> None:
    app.as_caller(1)
    soon = (app.app.state.clock().date() + dt.timedelta(days=30)).isoformat()
    reply = app.request("PATCH", "/v1/signals/r-1", json={"remove_on": soon})
    assert reply.status_code == 404
    app.as_caller(0)
    assert _remove_on(app) != soon
