"""An organisation's active signals, a page at a time (``SignalService.listed``, the
portal's "Mijn meldingen" and "Mijn matches"): newest first by (created_at, id) over all
of them, pages forward and back by that key, the true totals, on SQLite and PostgreSQL
(the suite's database). Before: the portal took 1000 in id order (random)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.world import World, world

from vir.domain.errors import NotPermitted
from vir.services.identity import Caller
from vir.store.records import Signal
from vir.store.tables import PortalSignalRow

LIMIT = 7


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def _seed(w: World) -> list[Signal]:
    """25 signals of organisation 0, three at each moment (the id orders those); the
    first 5 also registered by organisation 1 (a match each)."""
    made = []
    start = w.clock.now
    for i in range(25):
        w.clock.now = start + dt.timedelta(minutes=i // 3)
        made.append(w.register(0, f"child-{i}"))
        if i < 5:
            w.register(1, f"child-{i}")
    return sorted(made, key=lambda s: (s.created_at, s.id), reverse=True)


def _walk(
    w: World, caller: Caller, *, person: str | None = None, matched: bool = False
) -> list[list[str]]:
    pages: list[list[str]] = []
    older = None
    while True:
        page = w.signals.listed(
            caller, person=person, matched=matched, older_than=older, newer_than=None, limit=LIMIT
        )
        if not page.signals:
            return pages
        assert page.before == sum(len(p) for p in pages)
        pages.append([s.id for s in page.signals])
        last = page.signals[-1]
        older = (last.created_at, last.id)
        # And back: the page before this one, exactly.
        if len(pages) > 1:
            first = page.signals[0]
            back = w.signals.listed(
                caller,
                person=person,
                matched=matched,
                older_than=None,
                newer_than=(first.created_at, first.id),
                limit=LIMIT,
            )
            assert [s.id for s in back.signals] == pages[-2]


def test_every_signal_newest_first_a_page_at_a_time(w: World) -> None:
    expected = [s.id for s in _seed(w)]
    caller = w.caller(0)
    first = w.signals.listed(
        caller, person=None, matched=False, older_than=None, newer_than=None, limit=LIMIT
    )
    assert first.total == 25 and first.before == 0
    assert [s.id for s in first.signals] == expected[:LIMIT]
    pages = _walk(w, caller)
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [i for p in pages for i in p] == expected


def test_the_matched_signals_with_their_matches_and_the_true_count(w: World) -> None:
    seeded = _seed(w)
    matched = [s.id for s in seeded if s.local_ref in {f"child-{i}-0" for i in range(5)}]
    caller = w.caller(0)
    page = w.signals.listed(
        caller, person=None, matched=True, older_than=None, newer_than=None, limit=3
    )
    assert page.total == 5 and page.match_total == 5
    assert [s.id for s in page.signals] == matched[:3]
    assert all(len(page.matches[s.id]) == 1 for s in page.signals)
    assert [i for p in _walk(w, caller, matched=True) for i in p] == matched


def test_a_persons_own_signals(w: World) -> None:
    seeded = _seed(w)
    mine = seeded[::2]
    with w.store.db.write() as session:
        for s in mine:
            session.add(PortalSignalRow(signal_id=s.id, person="p-1", created_at=s.created_at))
    caller = w.caller(0)
    pages = _walk(w, caller, person="p-1")
    assert [i for p in pages for i in p] == [s.id for s in mine]
    page = w.signals.listed(
        caller, person="p-1", matched=True, older_than=None, newer_than=None, limit=LIMIT
    )
    assert page.match_total == len([s for s in mine if int(s.local_ref.split("-")[1]) < 5])
    # Another organisation's person id names none of organisation 0's signals.
    other = w.signals.listed(
        w.caller(1), person="p-1", matched=False, older_than=None, newer_than=None, limit=LIMIT
    )
    assert other.total == 0 and other.signals == ()


def test_only_a_reporter_lists(w: World) -> None:
    with pytest.raises(NotPermitted):
        w.signals.listed(
            w.officer, person=None, matched=False, older_than=None, newer_than=None, limit=1
        )
