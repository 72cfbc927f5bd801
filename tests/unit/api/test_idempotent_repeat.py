"""A repeat of ``POST /v1/signals`` is idempotent when its content is the same: also when
it now states the removal date the first registration got by default."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from support.inapp import in_app, signal_body


def test_stating_the_default_removal_date_repeats_a_registration_that_left_it_out(
    tmp_path: Path,
) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        body = signal_body("rep-1", "Kim", app.epoch)
        first = app.request("POST", "/v1/signals", json=body)
        assert first.status_code == 201
        given = first.json()["remove_on"]
        restated = app.request("POST", "/v1/signals", json={**body, "remove_on": given})
        assert restated.status_code == 200
        assert restated.json()["signal_id"] == first.json()["signal_id"]
        assert app.request("POST", "/v1/signals", json=body).status_code == 200
        earlier = (dt.date.fromisoformat(given) - dt.timedelta(days=1)).isoformat()
        other = app.request("POST", "/v1/signals", json={**body, "remove_on": earlier})
        assert other.status_code == 409


def test_a_stated_date_is_not_the_same_as_leaving_it_out_when_it_differs_from_the_stored(
    tmp_path: Path,
) -> None:
    with in_app(tmp_path) as app:
        app.as_caller(0)
        body = signal_body("rep-2", "Kim", app.epoch)
        soon = (dt.date.today() + dt.timedelta(days=30)).isoformat()
        assert (
            app.request("POST", "/v1/signals", json={**body, "remove_on": soon}).status_code == 201
        )
        assert (
            app.request("POST", "/v1/signals", json={**body, "remove_on": soon}).status_code == 200
        )
        assert app.request("POST", "/v1/signals", json=body).status_code == 409
