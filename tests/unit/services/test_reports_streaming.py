"""The reports read the log without holding writers up, and keep only a bounded part of
it in memory: a write made while a report is reading goes through at once, and the
streaming windows give what sorting every point would."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.instore import ORGS
from support.world import World, world

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.services import participation, reports
from vir.store import audit_log

pytestmark = pytest.mark.sqlite_only(
    "the windows are arithmetic; the writer held up is SQLite's (one writer at a time)"
)

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
START, END = dt.date(2026, 8, 1), dt.date(2026, 12, 1)


def _sorted_busiest(
    points: list[tuple[dt.datetime, int]], span: dt.timedelta
) -> tuple[dt.datetime, int]:
    """The reference: every point in memory, sorted, one sliding window."""
    best: tuple[dt.datetime, int] = (min(points)[0], 0)
    ordered = sorted(points)
    for i, (moment, _count) in enumerate(ordered):
        total = sum(c for m, c in ordered[: i + 1] if m > moment - span)
        first = min(m for m, _c in ordered[: i + 1] if m > moment - span)
        if total > best[1]:
            best = (first, total)
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4 * 3600), st.integers(1, 50), st.integers(0, 3 * 3600)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([60, 3600]),
)
def test_the_streaming_window_equals_sorting_every_point(
    raw: list[tuple[int, int, int]], span_seconds: int
) -> None:
    """Points arrive in log order: by integration, each at most LATENESS after its moment."""
    points = [(T0 + dt.timedelta(seconds=s), count) for s, count, _late in raw]
    arrival = sorted(range(len(raw)), key=lambda i: raw[i][0] + min(raw[i][2], 6 * 3600 - 1))
    window = reports._BusiestWindow(dt.timedelta(seconds=span_seconds))
    for i in arrival:
        window.add(*points[i])
    expected = _sorted_busiest(points, dt.timedelta(seconds=span_seconds))
    assert window.busiest()[1] == expected[1]


def test_recent_registrations_keep_what_a_withdrawal_can_still_match() -> None:
    keep = dt.timedelta(minutes=10) + reports.LATENESS
    recent = reports._Recent(keep)
    for n in range(10_000):
        recent.add(f"s{n}", T0 + dt.timedelta(minutes=n))
    last = T0 + dt.timedelta(minutes=9_999)
    assert recent.get("s9999") == last
    assert recent.get("s0") is None  # long past any withdrawal still to come
    kept = [n for n in range(10_000) if recent.get(f"s{n}") is not None]
    assert len(kept) <= keep / dt.timedelta(minutes=1) + 1
    assert kept[0] * 60 >= (9_999 * 60) - keep.total_seconds()


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        w.clock.to(dt.date(2026, 9, 3))
        for n in range(40):
            w.register(n % 2, f"r-{n}")
        w.register(2, "shared")
        w.register(3, "shared")
        yield w


REPORTS: dict[str, Callable[[World], Any]] = {
    "privacy": lambda w: reports.privacy_report(w.store.db, w.clock, None, START, END),
    "monitor": lambda w: reports.monitor_report(w.store.db, w.clock, None, START, END),
    "participation": lambda w: participation.participation_report(
        w.store.db, w.clock, None, START, END
    ),
}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_a_write_goes_through_while_a_report_reads(
    busy: World, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Halfway through the report's reading, another writer appends to the log: it must
    commit at once (on SQLite a report inside a write transaction would hold it until
    the report ended: here, for ever, since the report waits for it)."""
    written = threading.Event()

    def write() -> None:
        with busy.store.db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.REPORT_GENERATED,
                    Outcome.SUCCESS,
                    busy.clock(),
                    actor="admin",
                    objects={"report": "probe", "from": "-", "to": "-"},
                ),
            )
        written.set()

    decode = AuditEvent.decode
    seen = [0]

    def decoding(raw: bytes) -> Any:
        seen[0] += 1
        if seen[0] == 10:  # the report is reading
            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            assert written.wait(10), "a writer waited for the report to end"
        return decode(raw)

    monkeypatch.setattr(AuditEvent, "decode", staticmethod(decoding))
    REPORTS[name](busy)
    assert seen[0] >= 10 and written.is_set()
    actions = busy.actions()
    assert actions.count(Action.REPORT_GENERATED.value) == 2  # the probe, then the report
    assert actions[-1] == Action.REPORT_GENERATED.value


def test_the_window_of_lookups_still_flags_a_burst(busy: World) -> None:
    """The probe flags still work through the streaming windows (the full flag tests
    are in test_reports.py): twelve lookups in one minute, given out of order."""
    moments = [T0 + dt.timedelta(seconds=s) for s in range(0, 60, 5)]
    random.Random(3).shuffle(moments)
    oin = str(ORGS[0].oin)
    for moment in moments:
        with busy.store.db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.ACCESS_REQUESTED, Outcome.SUCCESS, moment, organisation=oin
                ),
            )
    report = reports.privacy_report(busy.store.db, busy.clock, None, START, END)
    (flag,) = [f for f in report["flags"] if f["kind"] == "lookup_burst"]
    assert (
        flag["figures"]["lookups"] == 12
        and flag["figures"]["from"] == "2026-09-01T00:00:00.000000Z"
    )
