"""A signed-in person cannot grow the audit log by a refused request a millisecond.

Each refused portal request was one ``portal.request_refused`` entry: 500 requests for
unknown signals in three seconds made 500 entries in a log that is hash-chained and
kept for years. Now a person's refusals are audited one by one up to 20 a minute, the
21st is one ``refusal_cap`` entry, and the rest of the minute is answered 429 without an
entry (``vir.portal.state.RefusalCap``). A real portal process, as a browser reaches it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.portal_world import DOCTOR, GP, PORTAL_HTTP_MARKS, PortalWorld, portal_world

from vir.portal.state import REFUSALS_PER_MINUTE

pytestmark = PORTAL_HTTP_MARKS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    cap = REFUSALS_PER_MINUTE  # the default, as an operator gets it
    with portal_world(Path(tmp_path_factory.mktemp("flood")), refusals_per_minute=cap) as running:
        yield running


def _refusals(world: PortalWorld) -> list[dict[str, Any]]:
    rows = world.service.sql("SELECT body FROM audit_entries")
    entries = [json.loads(b if isinstance(b, bytes | str) else bytes(b)) for (b,) in rows]
    return [e for e in entries if e["action"] == "portal.request_refused"]


def test_a_persons_refusals_are_capped_per_minute(world: PortalWorld) -> None:
    with world.http() as gp:
        world.sign_in(gp, GP, DOCTOR)
        before = len(_refusals(world))
        # The whole flood within one minute of the portal's clock (it takes about a second).
        if dt.datetime.now(dt.UTC).second > 45:
            time.sleep(61 - dt.datetime.now(dt.UTC).second)
        statuses = [gp.get(f"/meldingen/{uuid.uuid4()}").status_code for _ in range(40)]
        # Staged entries are integrated into the log in the background: wait for them.
        deadline = time.monotonic() + 20
        while len(added := _refusals(world)[before:]) <= REFUSALS_PER_MINUTE:
            assert time.monotonic() < deadline, added
            time.sleep(0.2)
        time.sleep(1)  # and for any that should not be there
        added = _refusals(world)[before:]
    assert statuses == [403] * REFUSALS_PER_MINUTE + [429] * (40 - REFUSALS_PER_MINUTE)
    assert [e["reason"] for e in added] == ["not_found"] * REFUSALS_PER_MINUTE + ["refusal_cap"]
    assert added[-1]["objects"] == {"refusals": REFUSALS_PER_MINUTE}
