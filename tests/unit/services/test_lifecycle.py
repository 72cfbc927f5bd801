"""A signal's life with an injected clock: two years active, five years archived, gone;
withdrawal reasons; the 23rd birthday; crash and resume; the archive offered once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.instore import ORGS, T0
from support.world import person, world

from vir.domain.errors import InputError
from vir.domain.signals import WithdrawalReason, add_years
from vir.services.lifecycle import Lifecycle
from vir.store.tables import ArchivedSignalRow, AuditStagedRow, SignalRow

TODAY = T0.date()


def _count(w, table) -> int:  # type: ignore[no-untyped-def]
    with w.store.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)))


def test_a_signal_walks_through_two_years_and_five_years(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        mine = w.register(0, "kim")
        w.register(1, "kim")  # a partner, so the expiry shows in a match
        assert mine.remove_on == add_years(TODAY, 2)
        start = len(w.audit())

        w.clock.to(add_years(TODAY, 2) - dt.timedelta(days=1))
        assert w.lifecycle.run().total == 0
        assert w.actions(start) == ["lifecycle.run"]

        w.clock.to(add_years(TODAY, 2))  # removal date: both signals archived
        report = w.lifecycle.run()
        assert (report.archived, report.erased, report.destroyed) == (2, 0, 0)
        assert _count(w, SignalRow) == 0 and _count(w, ArchivedSignalRow) == 2
        entries = w.audit()[start + 1 :]
        assert [e.action for e in entries[:2]] == ["signal.expired", "signal.archived"]
        expired = next(
            e for e in entries if e.action == "signal.expired" and e.objects["signal"] == mine.id
        )
        assert expired.actor == "lifecycle" and expired.organisation == str(ORGS[0].oin)
        assert expired.objects == {
            "signal": mine.id,
            "remove_on": mine.remove_on.isoformat(),
        }
        assert (
            entries[entries.index(expired) + 1].objects["destroy_on"]
            == add_years(add_years(TODAY, 2), 5).isoformat()
        )
        assert "match.ended" in [e.action for e in entries]
        assert entries[-1].action == "lifecycle.run"
        assert entries[-1].objects == {
            "archived": 2,
            "erased": 0,
            "destroyed": 0,
            "swept": 0,
            "as_of": add_years(TODAY, 2).isoformat(),
        }
        # Both left in one batch: the match ended with nobody left in it to tell (one at
        # a time, the second would have been told, and that notice deleted as it left).
        assert "notification.created" not in [e.action for e in entries]
        assert w.notifications() == []

        again = len(w.audit())
        assert w.lifecycle.run().total == 0  # idempotent
        assert w.actions(again) == ["lifecycle.run"]

        w.clock.to(add_years(add_years(TODAY, 2), 5) - dt.timedelta(days=1))
        assert w.lifecycle.run().destroyed == 0
        w.clock.to(add_years(add_years(TODAY, 2), 5))  # five years in the archive
        before = len(w.audit())
        assert w.lifecycle.run().destroyed == 2
        assert _count(w, ArchivedSignalRow) == 0
        assert w.actions(before) == ["signal.destroyed", "signal.destroyed", "lifecycle.run"]
        assert {e.reason for e in w.audit()[before:-1]} == {"archive_term"}


@pytest.mark.parametrize("batch", [2, 1])
def test_partners_are_told_once_when_two_signals_leave_in_one_batch(
    tmp_path: Path, batch: int
) -> None:
    """The school and the GP reach their removal date together; youth care and police
    stay. Removed in one batch, their group is settled once: each partner that stays is
    told once, with the match as it now stands. One at a time (batch 1), each partner
    was told twice, and the first notice, showing the GP, went with the GP."""
    with world(tmp_path) as w:
        w.lifecycle = Lifecycle(w.store.db, w.clock, batch=batch)
        soon = TODAY + dt.timedelta(days=30)
        leaving = [w.register(i, "kim", remove_on=soon) for i in (0, 1)]
        staying = [w.register(i, "kim") for i in (2, 3)]
        start = len(w.audit())
        w.clock.to(soon)
        assert w.lifecycle.run().archived == 2

        entries = w.audit()[start:]
        for signal in leaving:  # each signal's own entries stay together, in order
            at = [(e.action, e.objects.get("signal")) for e in entries].index(
                ("signal.expired", signal.id)
            )
            assert entries[at + 1].action == "signal.archived"
            assert entries[at + 1].objects["signal"] == signal.id
        told = [
            (e.objects["signal"], e.objects["type"])
            for e in entries
            if e.action == "notification.created" and e.objects["type"] != "match.coordinator"
        ]
        # The GP coordinated; it left, so youth care does now, and both who stay are told
        # once (docs/matching.md, "Coordinator"); one at a time, the school is told too
        # when the GP goes first.
        moved = [
            e.objects["signal"]
            for e in entries
            if e.action == "notification.created" and e.objects["type"] == "match.coordinator"
        ]
        assert sorted(m for m in moved if m != leaving[0].id) == sorted(s.id for s in staying)
        if batch == 1:
            second = max(leaving, key=lambda s: s.id)  # batches go in (remove_on, id) order
            assert sorted(told) == sorted(
                [(s.id, "match.left") for s in [second, *staying, *staying]]
            )
        else:
            assert sorted(told) == sorted((s.id, "match.left") for s in staying)
        # What is held is the same either way: one notice each, the match without them.
        held = sorted(
            (n for n in w.notifications() if n["type"] != "match.coordinator"),
            key=lambda n: str(n["local_ref"]),
        )
        assert [(n["local_ref"], n["type"], n["active"]) for n in held] == [
            (s.local_ref, "match.left", True) for s in staying
        ]
        for notice, other in zip(held, reversed(staying), strict=True):
            shown = [p["organisation"]["oin"] for p in notice["participants"]]
            assert shown == [other.oin]


def test_turning_23_erases_without_archive(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        birthday = TODAY + dt.timedelta(days=200)  # the 23rd birthday
        w.register(0, "sam", archive_until=birthday)
        assert (
            w.signals.list_own(w.caller(0), archived=False, uninformed=False, after=None, limit=10)[
                0
            ].remove_on
            == birthday
        )  # capped at the 23rd birthday
        w.clock.to(birthday)
        report = w.lifecycle.run()
        assert (report.archived, report.erased) == (0, 1)
        assert _count(w, ArchivedSignalRow) == 0


def test_archive_ends_at_23_when_that_comes_first(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        birthday = add_years(TODAY, 4)
        w.register(0, "noa", archive_until=birthday)
        w.clock.to(add_years(TODAY, 2))
        assert w.lifecycle.run().archived == 1
        with w.store.db.read() as session:
            assert session.scalar(select(ArchivedSignalRow.destroy_on)) == birthday
        w.clock.to(birthday)
        assert w.lifecycle.run().destroyed == 1


@pytest.mark.parametrize(
    ("reason", "archived"),
    [
        (WithdrawalReason.RISK_ENDED, 1),
        (WithdrawalReason.UNJUSTIFIED, 0),
        (WithdrawalReason.OBJECTION, 0),
        (WithdrawalReason.CORRECTION, 0),
        (WithdrawalReason.DECEASED, 0),
    ],
)
def test_only_risk_ended_is_archived(
    tmp_path: Path, reason: WithdrawalReason, archived: int
) -> None:
    with world(tmp_path) as w:
        signal = w.register(0, "ali")
        start = len(w.audit())
        outcome = w.signals.withdraw(w.caller(0), signal.local_ref, reason)
        assert outcome == ("archived" if archived else "erased")
        assert _count(w, ArchivedSignalRow) == archived and _count(w, SignalRow) == 0
        withdrawn, disposed = w.audit()[start : start + 2]
        assert (withdrawn.action, withdrawn.reason) == ("signal.withdrawn", reason.value)
        assert disposed.action == ("signal.archived" if archived else "signal.erased")


@pytest.mark.parametrize(
    ("remove_on", "archive_until", "field"),
    [
        (TODAY, None, "remove_on"),  # not in the future
        (add_years(TODAY, 2) + dt.timedelta(days=1), None, "remove_on"),  # beyond two years
        (None, TODAY, "archive_until"),  # already 23
        (TODAY + dt.timedelta(days=90), TODAY + dt.timedelta(days=30), "remove_on"),  # after 23
    ],
)
def test_bad_dates_name_the_field_and_change_nothing(
    tmp_path: Path, remove_on: dt.date | None, archive_until: dt.date | None, field: str
) -> None:
    with world(tmp_path) as w:
        before = len(w.audit())
        with pytest.raises(InputError) as refused:
            w.register(0, "eva", remove_on=remove_on, archive_until=archive_until)
        assert refused.value.field == field
        assert _count(w, SignalRow) == 0 and len(w.audit()) == before


def test_an_interrupted_run_resumes_without_doing_anything_twice(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        for i in range(5):
            w.register(i % 4, f"child-{i}")
        w.clock.to(add_years(TODAY, 2))

        class Crash(Exception):
            pass

        def crash_after_first_batch(done: int, total: int) -> None:
            raise Crash

        with pytest.raises(Crash):
            w.lifecycle.run(crash_after_first_batch)
        assert _count(w, ArchivedSignalRow) == 2  # the first batch (of 2) committed
        assert w.store.db.integrate_after_commit  # writers integrate again
        assert w.lifecycle.run().archived == 3  # the rest, once
        assert _count(w, ArchivedSignalRow) == 5 and _count(w, SignalRow) == 0
        archived = [e.objects["signal"] for e in w.audit() if e.action == "signal.archived"]
        assert len(archived) == len(set(archived)) == 5


def test_a_run_integrates_its_audit_entries_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five batches, and the entries integrated at the end, not after every batch: they
    stay staged (committed) until the run has written its own entry; then one
    integration moves them all, and one more finds nothing left."""
    with world(tmp_path) as w:
        w.lifecycle = Lifecycle(w.store.db, w.clock, batch=1)
        for i in range(5):
            w.register(i % 4, f"child-{i}")
        start = len(w.audit())
        w.clock.to(add_years(TODAY, 2))
        integrations: list[int] = []
        integrate = w.store.db.integrate

        def counted(*, wait: bool = True) -> object:
            integrations.append(1)
            return integrate(wait=wait)

        monkeypatch.setattr(w.store.db, "integrate", counted)
        assert w.lifecycle.run().archived == 5
        assert len(integrations) == 2
        assert w.store.db.integrate_after_commit
        with w.store.db.read() as session:
            assert session.scalar(select(func.count()).select_from(AuditStagedRow)) == 0
        actions = w.actions(start)
        assert actions.count("signal.expired") == actions.count("signal.archived") == 5
        assert actions[-1] == "lifecycle.run"


def test_progress_reports_reach_the_total(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        for i in range(3):
            w.register(i, f"p{i}")
        w.clock.to(add_years(TODAY, 2))
        seen: list[tuple[int, int]] = []
        w.lifecycle.run(lambda done, total: seen.append((done, total)))
        assert seen[-1] == (3, 3)


def test_archive_is_offered_once_to_the_new_reporter_only(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        school, gp, youth = (str(o.oin) for o in ORGS[:3])
        old = w.register(0, "mila", name="Els Visser")
        w.clock.to(TODAY + dt.timedelta(days=30))
        w.signals.withdraw(w.caller(0), old.local_ref, WithdrawalReason.RISK_ENDED)

        w.clock.to(TODAY + dt.timedelta(days=60))
        w.register(1, "mila", "gp-1")  # the GP newly registers the same child
        historical = [n for n in w.notifications() if n["type"] == "match.historical"]
        assert len(historical) == 1
        offer = historical[0]
        assert offer["oin"] == gp and offer["local_ref"] == "gp-1"
        assert offer["historical"] is True and offer["active"] is False
        (partner,) = offer["participants"]
        assert partner["organisation"]["oin"] == school
        assert partner["professional"]["name"] == "Els Visser"
        assert partner["since"].startswith(TODAY.isoformat())
        assert partner["archived_on"] == (TODAY + dt.timedelta(days=30)).isoformat()

        # Withdrawn and registered again: not offered a second time.
        w.signals.withdraw(w.caller(1), "gp-1", WithdrawalReason.UNJUSTIFIED)
        w.register(1, "mila", "gp-2")
        # The school itself, registering again, is not offered its own archived signal;
        # youth care, new to the child, is offered it once.
        w.register(0, "mila", "school-2")
        w.register(2, "mila", "youth-1")
        w.register(3, "someone-else", "police-1")
        offers = [
            (n["oin"], n["local_ref"]) for n in w.notifications() if n["type"] == "match.historical"
        ]
        # gp-1's offer went with gp-1 (docs/matching.md, Retention); gp-2 got none.
        assert offers == [(youth, "youth-1")]
        offered = [e.organisation for e in w.audit() if e.action == "archive.offered"]
        assert offered == [gp, youth]
        assert school not in {oin for oin, _ in offers}
        assert person("mila") not in repr(w.notifications()).encode()
