"""The portal's notifications page reads the newest notifications, a person's own when
they are not the coordinator (``NotificationService.newest``), with one audit entry
saying how many were shown.

Found by a browser walk in stop 42: the page read the organisation's notifications
oldest first, at most ten pages of 500, then kept the person's; past 5,000 held (they
live as long as the signals, up to two years) the newest never showed, and each view
wrote ten ``notifications.read`` entries of 500 whatever the person saw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.world import World, world

from vir.services.signals import NotificationService
from vir.store.tables import PortalSignalRow


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as made:
        yield made


def test_the_newest_first_and_one_entry_with_the_number_shown(w: World) -> None:
    ids = {}
    for n in range(6):  # six matches: six notifications to the school
        ids[n] = w.register(0, f"kid{n}", ref=f"s-{n}").id
        w.register(1, f"kid{n}", ref=f"g-{n}")
    with w.store.db.write() as session:  # the school's teacher registered three of them
        for n in (0, 2, 4):
            session.add(
                PortalSignalRow(signal_id=ids[n], person="person:teacher", created_at=w.clock())
            )
    notifications = NotificationService(w.store.db, w.clock)
    before = len(w.audit())
    newest = notifications.newest(w.caller(0), None, 4)
    assert [n.local_ref for n in newest] == ["s-5", "s-4", "s-3", "s-2"]
    assert [n.position for n in newest] == sorted((n.position for n in newest), reverse=True)
    mine = notifications.newest(w.caller(0), "person:teacher", 10)
    assert [n.local_ref for n in mine] == ["s-4", "s-2", "s-0"]
    reads = [e for e in w.audit()[before:] if e.action == "notifications.read"]
    assert [e.objects["count"] for e in reads] == [4, 3]
