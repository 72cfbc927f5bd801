"""A registration repeated after its contact details changed is still a repeat (200),
whether or not it named a removal date: ``vir-client sync`` repeats every row of its
file each night and changes contact details in between."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.world import World, person, world

from vir.domain.errors import Conflict
from vir.domain.signals import Professional
from vir.services.signals import SignalChange, SignalRequest


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


@pytest.mark.parametrize("remove_on", [None, dt.date(2027, 6, 1)])
def test_a_repeat_after_a_contact_change_is_recognised(w: World, remove_on: dt.date | None) -> None:
    first = SignalRequest(
        "ref-1", 1, person("noor"), (), None, remove_on, Professional("Anna", "anna@a.example")
    )
    stored = w.signals.register(w.caller(0), first).signal
    moved = Professional("Bram", "bram@a.example")
    w.signals.update(w.caller(0), "ref-1", SignalChange(professional=moved))
    again = w.signals.register(w.caller(0), dataclasses.replace(first, professional=moved))
    assert not again.created and again.signal.id == stored.id
    with pytest.raises(Conflict):  # the old contact details are other content now
        w.signals.register(w.caller(0), first)
