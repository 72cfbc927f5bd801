"""The notification cursor tells an organisation nothing about other organisations.

Attack (issue 11, point 7): ``next`` was the global ``notifications.seq``, so the gap
between two of an organisation's cursors was the number of notifications everyone
else received in between. Here an observer organisation reads its cursors once in a
quiet world and once in a world where two other organisations receive many
notifications between its own: the cursors must be the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.world import World, world

from vir.domain.cursor import decode_cursor, encode_cursor
from vir.domain.errors import InputError
from vir.services.signals import NotificationService
from vir.store.tables import NotificationRow

OBSERVER = 0


def _cursors(w: World, busy_others: bool) -> list[str]:
    """Register three matches for the observer (orgs 0 and 1 share children); with
    ``busy_others``, orgs 2 and 3 make matches of their own in between."""
    reader = NotificationService(w.store.db, w.clock)
    cursors = []
    after = None
    for child in ("Ada", "Bo", "Cas"):
        if busy_others:
            for i in range(5):
                w.register(2, f"{child}-other-{i}")
                w.register(3, f"{child}-other-{i}")
        w.register(OBSERVER, child)
        w.register(1, child)
        page = reader.read(w.caller(OBSERVER), after, 100)
        assert [item.type for item in page.items] == ["match.created"]
        after = page.next
        cursors.append(after)
    return cursors


def _observer_rows(w: World, column: Any) -> list[Any]:
    oin = str(w.caller(OBSERVER).organisation.oin)
    query = select(column).where(NotificationRow.oin == oin).order_by(NotificationRow.seq)
    with w.store.db.read() as session:
        return list(session.scalars(query))


def _ids_in_commit_order(w: World) -> list[str]:
    return _observer_rows(w, NotificationRow.id)


def test_cursors_do_not_depend_on_other_organisations(tmp_path: Path) -> None:
    (tmp_path / "quiet").mkdir()
    (tmp_path / "busy").mkdir()
    with world(tmp_path / "quiet") as quiet:
        alone = _cursors(quiet, busy_others=False)
    with world(tmp_path / "busy") as busy:
        crowded = _cursors(busy, busy_others=True)
        others = busy.notifications(str(busy.caller(2).organisation.oin))
        assert len(others) == 15  # the others really were notified in between
    assert alone == crowded
    assert [decode_cursor(c) for c in alone] == [1, 2, 3]
    assert not any(c.isdigit() for c in alone)  # not a number a client would do sums with


def test_following_next_never_repeats_or_skips(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        for i in range(7):
            w.register(2, f"noise-{i}")
            w.register(3, f"noise-{i}")
            w.register(OBSERVER, f"child-{i}")
            w.register(1, f"child-{i}")
        reader = NotificationService(w.store.db, w.clock)
        seen, after = [], None
        while True:
            page = reader.read(w.caller(OBSERVER), after, 2)
            if not page.items:
                assert page.next == after  # the end: the same cursor comes back
                break
            seen += [item.id for item in page.items]
            after = page.next
        assert seen == _ids_in_commit_order(w) and len(seen) == 7


def test_a_cursor_from_before_the_upgrade_carries_on(tmp_path: Path) -> None:
    """A client that still holds a global ``seq`` (digits) continues where it was."""
    with world(tmp_path) as w:
        for i in range(3):
            w.register(2, f"noise-{i}")
            w.register(3, f"noise-{i}")
            w.register(OBSERVER, f"child-{i}")
            w.register(1, f"child-{i}")
        seqs = _observer_rows(w, NotificationRow.seq)
        reader = NotificationService(w.store.db, w.clock)
        page = reader.read(w.caller(OBSERVER), str(seqs[0]), 100)
        assert len(page.items) == 2
        assert page.next == encode_cursor(3)
        assert reader.read(w.caller(OBSERVER), "0", 100).next == encode_cursor(3)


@pytest.mark.parametrize(
    "forged",
    [
        "abc",  # not a cursor
        encode_cursor(1)[:-1],  # truncated
        encode_cursor(1) + "A",  # trailing data
        "AgAAAAAAAAAB",  # another version byte
        "AQAAAAAAAAAB=",  # padded
        "AQAAAAAAAAAC".lower(),  # decodes, but to other bytes of the wrong version
        "AYAAAAAAAAAA",  # position beyond any integer column
        "-1",
        "01",  # a number with a leading zero: not a cursor this service issued
        "１",  # a non-ASCII digit
    ],
)
def test_forged_cursors_are_refused(tmp_path: Path, forged: str) -> None:
    with world(tmp_path) as w:
        reader = NotificationService(w.store.db, w.clock)
        with pytest.raises(InputError) as refused:
            reader.read(w.caller(OBSERVER), forged, 10)
        assert refused.value.field == "after"
        assert forged not in str(refused.value)
