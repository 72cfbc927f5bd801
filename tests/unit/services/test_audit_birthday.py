"""No 23rd birthday in the audit log: a removal or destruction date that is the young
person's 23rd birthday (``archive_until``) is logged as ``at_23``.

Found by a review in stop 42: the portal and the import now state the 23rd birthday
whenever it falls within a signal's terms, and the registration, the date change, the
expiry and the archiving entries logged the removal date, which then is that birthday:
a date of birth in an append-only, exported log, kept after the signal is gone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.world import World, person, world

from vir.domain.signals import Professional, WithdrawalReason
from vir.services.signals import SignalChange, SignalRequest

TODAY = dt.date(2026, 11, 22)  # support.instore.T0
BIRTHDAY = dt.date(2027, 8, 1)  # the 23rd: within the two years


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        yield made


def test_the_birthday_is_never_logged(w: World) -> None:
    request = SignalRequest(
        "ref-1",
        1,
        person("noor"),
        (),
        None,
        None,
        Professional("Anna", "anna@a.example"),
        BIRTHDAY,
    )
    signal = w.signals.register(w.caller(0), request).signal
    assert signal.remove_on == BIRTHDAY
    w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=dt.date(2027, 7, 1)))
    w.signals.update(w.caller(0), "ref-1", SignalChange(remove_on=BIRTHDAY))
    w.clock.to(BIRTHDAY)
    w.lifecycle.run()
    entries = [e for e in w.audit() if e.objects.get("signal") == signal.id]
    dated = {e.action: e.objects for e in entries if "remove_on" in e.objects}
    changed = [e.objects["remove_on"] for e in entries if e.action == "signal.removal_changed"]
    assert dated["signal.registered"]["remove_on"] == "at_23"
    assert changed == ["2027-07-01", "at_23"]
    assert dated["signal.expired"]["remove_on"] == "at_23"
    assert BIRTHDAY.isoformat() not in str([e.objects for e in entries])


def test_an_archived_copy_destroyed_at_23_is_logged_so(w: World) -> None:
    birthday = dt.date(2029, 6, 1)  # after the two years, within the archive term
    request = SignalRequest(
        "ref-2",
        1,
        person("sem"),
        (),
        None,
        None,
        Professional("Anna", "anna@a.example"),
        birthday,
    )
    signal = w.signals.register(w.caller(0), request).signal
    w.signals.withdraw(w.caller(0), "ref-2", WithdrawalReason.RISK_ENDED)
    (archived,) = [
        e for e in w.audit() if e.action == "signal.archived" and e.objects["signal"] == signal.id
    ]
    assert archived.objects["destroy_on"] == "at_23"
