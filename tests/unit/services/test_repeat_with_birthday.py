"""A repeat that now states the 23rd birthday (``archive_until``) the first registration
did not: the same registration when the day falls after the stored signal's terms
(removal date plus the five-year archive term), else other content.

Found by a review in stop 42: ``vir-client import``/``sync`` work the birthday out from
today (vir.client.lifecycle.removal_dates) and state it once it falls within today's
terms, so a nightly sync of a file with dates of birth turned rows the index already
held into conflicts from that day on (409, to be withdrawn and registered again)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.world import World, person, world

from vir.domain.errors import Conflict
from vir.domain.signals import Professional
from vir.services.signals import SignalRequest

TODAY = dt.date(2026, 11, 22)  # support.instore.T0


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        yield made


def _request(archive_until: dt.date | None) -> SignalRequest:
    return SignalRequest(
        "ref-1",
        1,
        person("noor"),
        (),
        None,
        None,
        Professional("Anna", "anna@a.example"),
        archive_until,
    )


def test_a_birthday_after_the_signals_terms_repeats_it(w: World) -> None:
    first = w.signals.register(w.caller(0), _request(None))
    assert first.created and first.signal.remove_on == dt.date(2028, 11, 22)
    # A month on, the client's terms reach a birthday beyond the stored signal's.
    w.clock.to(TODAY + dt.timedelta(days=30))
    late = dt.date(2033, 12, 1)  # after 2028-11-22 + 5 years
    again = w.signals.register(w.caller(0), _request(late))
    assert not again.created and again.signal.id == first.signal.id
    assert w.signals.own(w.caller(0), "ref-1").archive_until is None  # nothing changed
    exact = w.signals.register(w.caller(0), _request(dt.date(2033, 11, 22)))
    assert not exact.created


def test_a_birthday_within_the_signals_terms_is_other_content(w: World) -> None:
    w.signals.register(w.caller(0), _request(None))
    with pytest.raises(Conflict):
        w.signals.register(w.caller(0), _request(dt.date(2033, 11, 21)))
    with pytest.raises(Conflict):
        w.signals.register(w.caller(0), _request(dt.date(2027, 6, 1)))
    # And the other way round: stated first, left out later, is other content.
    other = dataclasses.replace(
        _request(dt.date(2030, 1, 1)), local_ref="ref-2", person=person("sem")
    )
    w.signals.register(w.caller(0), other)
    with pytest.raises(Conflict):
        w.signals.register(w.caller(0), dataclasses.replace(other, archive_until=None))
