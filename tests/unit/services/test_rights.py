"""Consultation by Veilig Thuis, data-subject access and erasure, death notices, contact
changes, the information duty, and who may do each of these."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from support.instore import ORGS, T0
from support.world import person, world

from vir.domain.errors import InputError, NotFound, NotPermitted, RateLimited
from vir.domain.lifecycle import ErasureKind, InformedWho
from vir.domain.organisations import Role
from vir.domain.signals import Professional, WithdrawalReason
from vir.services import onboarding
from vir.services.consultations import Purpose
from vir.services.signals import SignalChange

TODAY = T0.date()


def test_access_report_lists_three_organisations_and_nothing_about_anyone_else(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        mine = [w.register(i, "lotte", parents=("mother",)) for i in range(3)]
        sibling = w.register(3, "daan", parents=("mother",))  # a household match
        other = w.register(1, "stranger")
        w.signals.withdraw(w.caller(2), mine[2].local_ref, WithdrawalReason.RISK_ENDED)
        w.consultations.consult(w.veilig_thuis, person("lotte"), Purpose.SAFETY_ASSESSMENT)

        report = w.privacy.access(w.officer, person("lotte"))

        ids = {s["signal_id"] for s in report["signals"]}
        assert ids == {s.id for s in mine}
        assert {s["organisation"]["oin"] for s in report["signals"]} == {
            str(o.oin) for o in ORGS[:3]
        }
        statuses = {s["signal_id"]: s["status"] for s in report["signals"]}
        assert statuses[mine[2].id] == "archived"
        text = json.dumps(report)
        for foreign in (sibling.id, other.id):
            assert foreign not in text
        assert str(ORGS[3].oin) not in text  # the sibling's reporter is not named
        person_match = next(
            m
            for s in report["signals"]
            if s["status"] == "active"
            for m in s["matches"]
            if m["kind"] == "person"
        )
        assert len(person_match["participants"]) == 1
        household = [m for s in report["signals"] for m in s["matches"] if m["kind"] == "household"]
        assert household and all(m["participants"] == [] for m in household)
        assert [c["purpose"] for c in report["consultations"]] == ["safety_assessment"] * 3
        audited = {e["action"] for e in report["audit"]}
        assert {"signal.registered", "signal.withdrawn", "signal.archived"} <= audited
        assert all(ids & {str(v) for v in e["objects"].values()} for e in report["audit"])
        # The parent's own report lists the signals naming them as parent, separately.
        as_parent = w.privacy.access(w.officer, person("mother"))
        assert as_parent["signals"] == []
        assert {s["signal_id"] for s in as_parent["as_parent"]} == {
            mine[0].id,
            mine[1].id,
            sibling.id,
        }


def test_access_needs_a_privacy_officer_and_an_unknown_person_is_not_found(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        w.register(0, "lotte")
        with pytest.raises(NotPermitted):
            w.privacy.access(w.caller(0), person("lotte"))
        with pytest.raises(NotPermitted):
            w.privacy.access(w.caller(0, Role.COORDINATOR), person("lotte"))
        before = len(w.audit())
        with pytest.raises(NotFound):
            w.privacy.access(w.officer, person("nobody"))
        (entry,) = w.audit()[before:]  # the request is on the record all the same
        assert (entry.action, entry.outcome, entry.role) == (
            "access.requested",
            "refused",
            "privacy_officer",
        )


def test_erasure_and_objection_erase_without_archive(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        a = w.register(0, "ruben")
        w.register(1, "ruben")
        # The national officer is told the signal is not held on the person; a regional
        # officer only that it is not one of their region's (tests/security/test_officer_scope.py).
        with pytest.raises(InputError) as refused:
            w.privacy.erase(w.national_officer, person("ruben"), ErasureKind.OBJECTION, ["0" * 36])
        assert refused.value.field == "signals"
        erased = w.privacy.erase(w.officer, person("ruben"), ErasureKind.OBJECTION, [a.id])
        assert erased == [a.id]
        gp = w.notifications(str(ORGS[1].oin))
        # The match.created that showed the objecting reporter went with its signal.
        assert [n["type"] for n in gp] == ["match.left"]
        assert gp[0]["participants"] == []
        w.privacy.erase(w.officer, person("ruben"), ErasureKind.ERASURE)
        with pytest.raises(NotFound):
            w.privacy.access(w.officer, person("ruben"))
        assert "erasure.executed" in w.actions()


def test_a_death_notice_erases_active_and_archived(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        old = w.register(0, "jan")
        w.signals.withdraw(w.caller(0), old.local_ref, WithdrawalReason.RISK_ENDED)
        w.register(1, "jan")
        w.register(2, "jan")
        with pytest.raises(NotPermitted):
            w.privacy.deceased(w.caller(1), person("jan"))
        assert len(w.privacy.deceased(w.officer, person("jan"))) == 3
        with pytest.raises(NotFound):
            w.privacy.access(w.officer, person("jan"))
        with pytest.raises(NotFound):
            w.privacy.deceased(None, person("jan"))  # nothing left


def test_veilig_thuis_consults_others_may_not(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.register(0, "ivy", name="Els Visser")
        old = w.register(1, "ivy")
        w.signals.withdraw(w.caller(1), old.local_ref, WithdrawalReason.RISK_ENDED)
        answer = w.consultations.consult(w.veilig_thuis, person("ivy"), Purpose.TRIAGE)
        involvement = {(i.participant.organisation.oin, i.status) for i in answer.involvement}
        assert involvement == {(str(ORGS[0].oin), "active"), (str(ORGS[1].oin), "archived")}
        entry = next(e for e in w.audit() if e.action == "consultation.made")
        assert (entry.purpose, entry.objects["results"]) == ("triage", 2)
        for caller in (w.caller(0), w.officer):
            with pytest.raises(NotPermitted):
                w.consultations.consult(caller, person("ivy"), Purpose.TRIAGE)
        w.consultations.consult(w.veilig_thuis, person("ivy"), Purpose.ADVICE)
        w.consultations.consult(w.veilig_thuis, person("ivy"), Purpose.ADVICE)
        with pytest.raises(RateLimited):  # a burst of 3, no refill on this clock
            w.consultations.consult(w.veilig_thuis, person("ivy"), Purpose.ADVICE)


def test_contact_change_tells_the_partners_once(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.register(0, "max", parents=("mum",))
        w.register(1, "max", parents=("mum",))
        w.register(2, "max")
        new = Professional("Bram Jansen", "b.jansen@org0.example", "010-1234567")
        view = w.signals.update(w.caller(0), "max-0", SignalChange(professional=new))
        assert view.signal.professional.name == "Bram Jansen"
        changed = [n for n in w.notifications() if n["type"] == "match.contact_changed"]
        # The person match (three organisations): the two partners; the parent group has
        # the same young person only, so it is no match.
        assert sorted(n["oin"] for n in changed) == [str(ORGS[1].oin), str(ORGS[2].oin)]
        shown = changed[0]["participants"]
        assert "Bram Jansen" in [p["professional"]["name"] for p in shown]
        assert "contact_changed" in " ".join(w.actions())
        # The same details again: nothing new.
        w.signals.update(w.caller(0), "max-0", SignalChange(professional=new))
        assert len([n for n in w.notifications() if n["type"] == "match.contact_changed"]) == 2


def test_the_information_duty_is_confirmed_and_the_unconfirmed_are_listed(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        w.register(0, "a")
        w.register(0, "b")
        w.register(1, "c")
        with pytest.raises(InputError) as refused:
            w.signals.update(
                w.caller(0),
                "a-0",
                SignalChange(informed=(TODAY + dt.timedelta(days=1), InformedWho.BOTH)),
            )
        assert refused.value.field == "informed.on"
        w.signals.update(w.caller(0), "a-0", SignalChange(informed=(TODAY, InformedWho.BOTH)))
        w.clock.to(TODAY + dt.timedelta(days=29))
        assert w.privacy.uninformed(w.officer) == []
        w.clock.to(TODAY + dt.timedelta(days=31))
        listed = w.privacy.uninformed(w.officer)
        assert [(x.organisation.oin, x.days) for x in listed] == [
            (str(ORGS[0].oin), 30),
            (str(ORGS[1].oin), 30),
        ]
        own = w.signals.list_own(w.caller(0), archived=False, uninformed=True, after=None, limit=9)
        assert [s.local_ref for s in own] == ["b-0"]
        with pytest.raises(NotPermitted):
            w.privacy.uninformed(w.caller(0))


def test_a_coordinator_is_shown_to_partners(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.register(0, "zoe")
        w.register(1, "zoe")
        sent = onboarding.set_coordinator(
            w.store.db,
            str(ORGS[0].oin),
            Professional("Carla Coördinator", "c@org0.example"),
            T0,
            w.caller(0, Role.COORDINATOR),
        )
        assert sent == 1
        gp_view = w.signals.matches(w.caller(1), "zoe-1")[0]
        coordinator = gp_view.participants[0].organisation.coordinator
        assert coordinator is not None and coordinator.name == "Carla Coördinator"


def test_a_municipality_or_an_officer_never_registers(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        from vir.services.signals import SignalRequest

        request = SignalRequest(
            "x", 1, person("p"), (), None, None, Professional("A B", "a@b.example")
        )
        for caller in (w.officer, w.caller(0, Role.PRIVACY_OFFICER)):
            with pytest.raises(NotPermitted):
                w.signals.register(caller, request)
