"""The app in-process for matchregie tests (coordinators, handover, follow-up): as
``support.inapp.in_app``, with a clock that moves a second at every reading, so that
signals register in the order a test makes them and "the earliest signal" is never a
tie; and both regions' organisations registered (Rotterdam's ``ORGS``, Utrecht's
``UTRECHT_ORGS``, Veilig Thuis and the Rotterdam municipality)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.inapp import InApp, signal_body
from support.instore import T0, UTRECHT_ORGS, fresh_store, template
from support.world import MUNICIPALITY, VEILIG_THUIS

from vir.api.app import create_app
from vir.api.identity import require_caller
from vir.crypto.signing import init_signing_key
from vir.domain.organisations import Organisation, Role
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.settings import Settings


@dataclass
class TickingClock:
    """T0, a second later at every reading, plus ``offset`` (a test moves it on days)."""

    offset: dt.timedelta = dt.timedelta(0)
    seconds: Iterator[int] = field(default_factory=itertools.count)

    def __call__(self) -> dt.datetime:
        return T0 + self.offset + dt.timedelta(seconds=next(self.seconds))


@contextmanager
def regie_app(
    tmp_path: Path, clock: TickingClock | None = None, **settings: Any
) -> Iterator[InApp]:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    with fresh_store(template(tmp_path), tmp_path / "app.sqlite") as store:
        url = store.db.engine.url.render_as_string(hide_password=False)
        config = Settings(
            database_url=url,
            keys_dir=keys,
            checkpoint_interval_seconds=0,
            lifecycle_interval_seconds=0,
            **settings,
        )
        app = create_app(config, clock=clock or TickingClock())
        for org in (VEILIG_THUIS, MUNICIPALITY, *UTRECHT_ORGS):
            register_organisation(app.state.services.db, org, T0)
        try:
            yield InApp(app)
        finally:
            app.state.services.db.dispose()


def act_as(app: InApp, org: Organisation, role: Role = Role.SYSTEM) -> None:
    caller = Caller(org, f"{int(str(org.oin)):064x}", role)
    app.app.dependency_overrides[require_caller] = lambda: caller


def register(app: InApp, org: Organisation, ref: str, child: str) -> dict[str, Any]:
    """``org`` registers a signal on ``child``; the signal with its matches."""
    act_as(app, org)
    reply = app.request("POST", "/v1/signals", json=signal_body(ref, child, app.epoch))
    assert reply.status_code == 201, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def news(app: InApp, org: Organisation) -> list[dict[str, Any]]:
    act_as(app, org)
    reply = app.request("GET", "/v1/notifications", params={"limit": 500})
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items
