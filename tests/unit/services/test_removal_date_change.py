"""A reporter sets a new removal date on its signal (PATCH ``remove_on``): extended or
shortened within the rules of registration (in the future, at most two years from the
day the signal was made, not after the 23rd birthday), audited, and the signal removed
on the new day; a registration repeated with the new date is a repeat, one with the old
date is not."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.world import World, person, world

from vir.domain.errors import Conflict, InputError, NotFound
from vir.domain.signals import Professional
from vir.services.signals import SignalChange, SignalRequest

TODAY = dt.date(2026, 11, 22)  # support.instore.T0


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def _register(w: World, archive_until: dt.date | None = None) -> SignalRequest:
    request = SignalRequest(
        "ref-1",
        1,
        person("noor"),
        (),
        None,
        dt.date(2027, 6, 1),
        Professional("Anna", "anna@a.example"),
        archive_until,
    )
    w.signals.register(w.caller(0), request)
    return request


def test_a_signal_is_extended_and_shortened(w: World) -> None:
    first = _register(w)
    longer = w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2028, 11, 1)))
    assert longer.signal.remove_on == dt.date(2028, 11, 1)
    assert w.signals.own(w.caller(0), "ref-1").remove_on == dt.date(2028, 11, 1)
    shorter = w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2026, 12, 1)))
    assert shorter.signal.remove_on == dt.date(2026, 12, 1)
    changed = [e for e in w.audit() if e.action == "signal.removal_changed"]
    assert [e.objects["remove_on"] for e in changed] == ["2028-11-01", "2026-12-01"]
    # A repeat with the date now in force is a repeat; the old date is other content.
    again = w.signals.register(
        w.caller(0), dataclasses.replace(first, remove_on=dt.date(2026, 12, 1))
    )
    assert not again.created
    with pytest.raises(Conflict):
        w.signals.register(w.caller(0), first)
    # The lifecycle removes it on the new day.
    w.clock.to(dt.date(2026, 12, 1))
    w.lifecycle.run()
    own = w.signals.list_own(w.caller(0), archived=False, uninformed=False, after=None, limit=10)
    assert own == []


@pytest.mark.parametrize(
    "remove_on",
    [TODAY, TODAY - dt.timedelta(days=1), dt.date(2028, 11, 23), dt.date(2030, 1, 1)],
    ids=["today", "past", "two-years-and-a-day", "far"],
)
def test_a_date_outside_the_rules_is_refused_and_nothing_changes(
    w: World, remove_on: dt.date
) -> None:
    _register(w)
    with pytest.raises(InputError) as refused:
        w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=remove_on))
    assert refused.value.field == "remove_on"
    assert w.signals.own(w.caller(0), "ref-1").remove_on == dt.date(2027, 6, 1)
    assert not [e for e in w.audit() if e.action == "signal.removal_changed"]


def test_never_more_than_two_years_after_the_signal_was_made(w: World) -> None:
    """Found by a walk against DESIGN.md in stop 42: the new date was held to two years
    from the day of the change, so a reporter moving it on every 23 months kept a
    signal for good. The law removes a signal at most two years after it was made."""
    _register(w)  # made on TODAY
    w.clock.to(dt.date(2028, 10, 12))
    with pytest.raises(InputError) as refused:
        w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2030, 10, 12)))
    assert refused.value.field == "remove_on" and "2028-11-22" in refused.value.detail
    with pytest.raises(InputError):
        w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2028, 11, 23)))
    latest = w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2028, 11, 22)))
    assert latest.signal.remove_on == dt.date(2028, 11, 22)


def test_never_after_the_23rd_birthday(w: World) -> None:
    _register(w, archive_until=dt.date(2027, 9, 1))
    with pytest.raises(InputError) as refused:
        w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2027, 9, 2)))
    assert refused.value.field == "remove_on"
    ok = w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2027, 9, 1)))
    assert ok.signal.remove_on == dt.date(2027, 9, 1)


def test_another_organisations_signal_is_not_found(w: World) -> None:
    _register(w)
    with pytest.raises(NotFound):
        w.signals.update(w.caller(1), "ref-1", SignalChange(remove_on=dt.date(2027, 1, 1)))
