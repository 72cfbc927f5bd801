"""Notifications live no longer than the signals they carry (docs/matching.md, Retention).

The lifecycle removes them with an expired signal or a destroyed archived one and
sweeps, in batches, any that some other path left behind; a reader following the
notification cursor neither repeats nor skips among the rows that remain; ``seq``
keeps growing after the newest rows are deleted; and migration 0010 links the
notifications stored before it exactly as the code now links new ones.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, func, insert, select
from support.instore import ORGS, T0
from support.world import World, world

from vir.domain.signals import Professional, WithdrawalReason
from vir.services.signals import NotificationService, SignalChange
from vir.store import signals as repo
from vir.store.migrate import upgrade
from vir.store.tables import (
    MatchMemberRow,
    NotificationRow,
    NotificationSignalRow,
    SignalParentRow,
    SignalRow,
)

TODAY = T0.date()
OBSERVER = 0


def _oin(index: int) -> str:
    return str(ORGS[index].oin)


def _links(w: World) -> set[tuple[str, str, str]]:
    with w.store.db.read() as session:
        rows = session.execute(select(NotificationSignalRow)).scalars()
        return {(r.notification_id, r.signal_id, r.role) for r in rows}


def _count(w: World, table: Any) -> int:
    with w.store.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _shows(notifications: list[dict[str, Any]], oin: str) -> list[dict[str, Any]]:
    return [
        n for n in notifications if oin in {p["organisation"]["oin"] for p in n["participants"]}
    ]


def test_an_expired_signal_takes_its_notifications_along(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.register(0, "kim")
        w.register(1, "kim", remove_on=TODAY + dt.timedelta(days=100))
        w.register(2, "kim")
        assert _shows(w.notifications(), _oin(1))  # the others were shown the GP
        assert w.notifications(_oin(1))  # and the GP was told of them

        w.clock.to(TODAY + dt.timedelta(days=100))
        report = w.lifecycle.run()
        assert (report.archived, report.swept) == (1, 0)

        assert w.notifications(_oin(1)) == []  # addressed to the expired signal
        assert _shows(w.notifications(), _oin(1)) == []  # showing its reporter
        # The school and youth care keep what shows only each other, and the news.
        left = [n for n in w.notifications(_oin(0)) if n["type"] == "match.left"]
        assert [p["organisation"]["oin"] for p in left[0]["participants"]] == [_oin(2)]
        assert {s for _n, s, _r in _links(w)} <= _signal_ids(w)


def _signal_ids(w: World) -> set[str]:
    with w.store.db.read() as session:
        return set(session.scalars(select(SignalRow.id)))


def test_an_offer_goes_when_its_archived_signal_is_destroyed(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        until = TODAY + dt.timedelta(days=300)  # the 23rd birthday ends the archive early
        old = w.register(0, "lou", archive_until=until)
        w.signals.withdraw(w.caller(0), old.local_ref, WithdrawalReason.RISK_ENDED)
        w.register(1, "lou")
        assert [n["type"] for n in w.notifications(_oin(1))] == ["match.historical"]

        w.clock.to(until - dt.timedelta(days=1))
        w.lifecycle.run()
        assert len(w.notifications(_oin(1))) == 1  # the archived signal is still held
        w.clock.to(until)
        report = w.lifecycle.run()
        assert (report.destroyed, report.swept) == (1, 0)  # gone with it, not swept later
        assert w.notifications(_oin(1)) == []
        assert _links(w) == set()


def test_a_recipient_keeps_the_newest_part_of_each_match_story(tmp_path: Path) -> None:
    """When a notice goes, the recipient's older notices on that match go with it: what
    is held never starts with a stale state (a match.created overtaken by the deleted)."""
    with world(tmp_path) as w:
        w.register(0, "kim")
        w.register(1, "kim")  # the school: match.created showing the GP
        w.register(2, "kim")  # the school: match.joined showing the GP and youth care
        w.signals.withdraw(w.caller(2), "kim-2", WithdrawalReason.UNJUSTIFIED)
        for org, partner in ((0, 1), (1, 0)):
            held = [
                (n["type"], [p["organisation"]["oin"] for p in n["participants"]], n["active"])
                for n in w.notifications(_oin(org))
            ]
            # Not the match.created that showed only the partner: it came before the
            # match.joined that showed youth care, which went.
            assert held == [("match.left", [_oin(partner)], True)]


def _strand(w: World, signal_id: str) -> None:
    """Delete a signal behind the services' back, as a path that forgot the rule would."""
    with w.store.db.write() as session:
        session.execute(delete(MatchMemberRow).where(MatchMemberRow.signal_id == signal_id))
        session.execute(delete(SignalParentRow).where(SignalParentRow.signal_id == signal_id))
        session.execute(delete(SignalRow).where(SignalRow.id == signal_id))


def test_the_sweep_deletes_what_removal_left_behind_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world(tmp_path) as w:  # the world's lifecycle works in batches of 2
        stranded = []
        for i in range(3):
            w.register(0, f"child-{i}")
            stranded.append(w.register(1, f"child-{i}").id)
            w.register(2, f"other-{i}")
            w.register(3, f"other-{i}")
        with w.store.db.write() as session:  # a row without a recipient link (0010)
            (row,) = session.execute(
                select(NotificationRow.id).where(NotificationRow.oin == _oin(2)).limit(1)
            ).one()
            session.execute(
                delete(NotificationSignalRow).where(NotificationSignalRow.notification_id == row)
            )
        for signal_id in stranded:
            _strand(w, signal_id)
        before = _count(w, NotificationRow)
        assert before == 12

        batches: list[int] = []
        find = repo.orphaned_notifications

        def counted(session: Any, after: int, limit: int) -> list[tuple[int, str]]:
            found = find(session, after, limit)
            assert limit == 2
            batches.append(len(found))
            return found

        monkeypatch.setattr(repo, "orphaned_notifications", counted)
        report = w.lifecycle.run()
        # 3 to the GP, 3 showing the GP, and the unlinked one: 7, two at a time.
        assert report.swept == 7 and batches == [2, 2, 2, 1]
        assert _count(w, NotificationRow) == before - 7
        remaining = w.notifications()
        assert {n["oin"] for n in remaining} == {_oin(2), _oin(3)}
        assert _shows(remaining, _oin(1)) == []
        entry = w.audit()[-1]
        assert (entry.action, entry.objects["swept"]) == ("lifecycle.run", 7)

        batches.clear()
        assert w.lifecycle.run().swept == 0 and batches == [0]


def test_following_next_neither_repeats_nor_skips_after_deletions(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        for i in range(6):
            w.register(OBSERVER, f"c{i}")
            w.register(1, f"c{i}")
        reader = NotificationService(w.store.db, w.clock)
        page = reader.read(w.caller(OBSERVER), None, 2)
        read_first = [item.id for item in page.items]
        with w.store.db.read() as session:
            legacy = str(
                session.scalar(
                    select(NotificationRow.seq).where(NotificationRow.id == read_first[-1])
                )
            )
        # The partner leaves c1 (behind the cursor, the row just read) and c3 (ahead):
        # those notifications go, and match.left notices come after.
        for child in ("c1", "c3"):
            w.signals.withdraw(w.caller(1), f"{child}-1", WithdrawalReason.UNJUSTIFIED)
        remaining = [n["id"] for n in _rows(w, OBSERVER)]
        assert read_first[-1] not in remaining and len(remaining) == 6

        for cursor in (page.next, legacy):  # also a cursor from before migration 0007
            seen, after = [], cursor
            while True:
                more = reader.read(w.caller(OBSERVER), after, 1)
                if not more.items:
                    assert more.next == after
                    break
                seen += [item.id for item in more.items]
                after = more.next
            expected = [i for i in remaining if i not in read_first]
            assert seen == expected and len(expected) == 5


def _rows(w: World, org: int) -> list[dict[str, Any]]:
    with w.store.db.read() as session:
        rows = session.execute(
            select(NotificationRow.id, NotificationRow.position, NotificationRow.seq)
            .where(NotificationRow.oin == _oin(org))
            .order_by(NotificationRow.position)
        ).all()
    return [{"id": r.id, "position": r.position, "seq": r.seq} for r in rows]


def test_seq_keeps_growing_after_the_newest_rows_are_deleted(tmp_path: Path) -> None:
    """On SQLite a rowid table reuses the seq of deleted newest rows; migration 0010
    made notifications AUTOINCREMENT. seq must grow in commit order (legacy cursors)."""
    with world(tmp_path) as w:
        w.register(0, "ada")
        w.register(1, "ada")
        w.signals.withdraw(w.caller(1), "ada-1", WithdrawalReason.UNJUSTIFIED)
        highest = max(r["seq"] for r in _rows(w, 0))  # the school's match.left, the newest
        w.signals.withdraw(w.caller(0), "ada-0", WithdrawalReason.UNJUSTIFIED)
        assert _count(w, NotificationRow) == 0
        w.register(2, "bo")
        w.register(3, "bo")
        assert min(r["seq"] for r in _rows(w, 2) + _rows(w, 3)) > highest
        # Positions, too, carry on after the deleted ones.
        assert [r["position"] for r in _rows(w, 0)] == []
        w.register(0, "bo")
        assert [r["position"] for r in _rows(w, 0)] == [3]


def _alembic(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "vir.store:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def test_migration_0010_links_stored_notifications_as_the_code_does(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        # A person match of three and a household (mother Mum) that police leave, a
        # contact change, an offer of an archived signal, and a match of two.
        w.register(0, "kim", parents=("mum",))
        w.register(1, "kim")
        w.register(2, "sem", parents=("mum",))
        w.register(3, "kim")
        w.signals.withdraw(w.caller(3), "kim-3", WithdrawalReason.RISK_ENDED)
        w.clock.to(TODAY + dt.timedelta(days=1))
        w.signals.update(
            w.caller(1), "kim-1", _change("Dirk Brouwer", "d.brouwer@huisarts.example")
        )
        old = w.register(0, "lou")
        w.signals.withdraw(w.caller(0), old.local_ref, WithdrawalReason.RISK_ENDED)
        w.register(1, "lou")
        w.register(2, "ada")
        w.register(3, "ada")
        live = _links(w)
        notifications = w.notifications()
        assert {n["type"] for n in notifications} == {
            "match.created",
            "match.left",
            "match.contact_changed",
            "match.historical",
        }
        _assert_links_match_payloads(w, live)

        url = w.store.db.engine.url.render_as_string(hide_password=False)
        command.downgrade(_alembic(url), "0009")
        # Rows the old code left behind: one to a signal withdrawn since (its local_ref
        # registered again later), one showing a reporter whose signal is gone.
        stale = _legacy_rows(w)
        upgrade(url)

        backfilled = _links(w)
        assert {link for link in backfilled if link[0] not in stale} == live
        # Each shows a reporter still active (linked), but neither can be accounted for in
        # full (no recipient link): the sweep deletes both.
        assert {(n, r) for n, _s, r in backfilled if n in stale} == {
            (stale[0], "participant"),
            (stale[1], "participant"),
        }
        assert w.lifecycle.run().swept == 2
        assert _links(w) == live and len(w.notifications()) == len(notifications)


def _change(name: str, email: str) -> SignalChange:
    return SignalChange(professional=Professional(name, email))


def _assert_links_match_payloads(w: World, links: set[tuple[str, str, str]]) -> None:
    """Every notification links its recipient and exactly as many shown signals as its
    payload shows participants."""
    with w.store.db.read() as session:
        rows = session.execute(select(NotificationRow)).scalars().all()
    for row in rows:
        mine = [(s, r) for n, s, r in links if n == row.id]
        assert [r for _s, r in mine].count("recipient") == 1
        shown = [s for s, r in mine if r != "recipient"]
        assert len(shown) == len(json.loads(row.payload)["participants"]), row.type


def _legacy_rows(w: World) -> list[str]:
    """Two notifications as the code before 0010 left them; their ids. The schema is
    0009's here: the columns read are named (the model has columns added since)."""
    columns = (
        SignalRow.created_at,
        SignalRow.professional_name,
        SignalRow.professional_email,
    )
    with w.store.db.read() as session:
        kim = session.execute(select(*columns).where(SignalRow.local_ref == "kim-0")).one()
        lou = session.execute(select(*columns).where(SignalRow.local_ref == "lou-1")).one()
        last = session.scalar(
            select(func.max(NotificationRow.position)).where(NotificationRow.oin == _oin(0))
        )
    shown = {
        "organisation": {"oin": _oin(1), "name": "Huisarts B"},
        "professional": {"name": lou.professional_name, "email": lou.professional_email},
        "since": lou.created_at.isoformat().replace("+00:00", "Z"),
    }
    gone = shown | {
        "organisation": {"oin": _oin(3), "name": "Politie D"},
        "since": "2026-11-22T09:00:00.000001Z",
    }
    rows = [
        # To kim-0 as registered before the current kim-0 was.
        ("legacy-1", "kim-0", kim.created_at - dt.timedelta(days=1), [shown]),
        # To kim-0 now, showing the GP (active) and a police signal that is gone.
        ("legacy-2", "kim-0", kim.created_at, [shown, gone]),
    ]
    with w.store.db.write() as session:
        for position, (notification_id, ref, when, participants) in enumerate(rows, last + 1):
            session.execute(
                insert(NotificationRow),
                [
                    {
                        "id": notification_id,
                        "oin": _oin(0),
                        "position": position,
                        "local_ref": ref,
                        "type": "match.created",
                        "match_id": "m-legacy",
                        "created_at": when,
                        "payload": json.dumps({"participants": participants}),
                    }
                ],
            )
    return [r[0] for r in rows]
