"""The participation monitor's figures (issue 17, part 6), against hand-computed values.

October 2026, a contact term of 14 days, the report made on 10 November 03:00. Contact
is mutual (``vir.domain.followup.in_contact``, as on the follow-up officer's list): a
``contact_made`` recorded by one participant with another is contact for both.

* Kim: School A (2 Oct) and Jeugdzorg C (3 Oct) match on 3 Oct 03:00. C records contact
  with A on 20 Oct (17.0 days for both: later).
* Sam: Huisarts B and Jeugdzorg C match on 10 Oct 03:00. C records contact with B on
  11 Oct (1.0 day for both: within).
* Eva: Huisarts B and Politie D match on 12 Oct 03:00; nobody records contact (29 days
  by the report: no contact, term passed, for both).
* Lia: School A (30 Oct) and Politie D (31 Oct) match on 31 Oct 03:00. D records contact
  with A on 2 Nov, after the period (2.0 days for both: within).
* Bo: Huisarts B (30 Oct) and Jeugdzorg C (31 Oct) match on 31 Oct 03:00; no contact
  (10 days: pending, for both).
* Old: School A and Huisarts B matched in September; B's contact in October and the
  September signals are not the period's.

So A: 2 signals, 2 matches (1 within, 1 later), median (2 + 17) / 2 = 9.5; B: 3 signals,
3 matches (1 within, 1 none, 1 pending), median 1.0; C: 3 signals, 3 matches (1 within,
1 later, 1 pending), median (1 + 17) / 2 = 9.0; D: 2 signals, 2 matches (1 within,
1 none), 2.0.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from support.instore import ORGS
from support.world import MUNICIPALITY, World, world

from vir.domain.coordination import FollowUp
from vir.domain.errors import InputError, NotPermitted, OutsideRegion
from vir.domain.organisations import Category, Oin, Organisation, Role
from vir.reports.participation import flag_sentence, participation_csv, participation_pdf
from vir.reports.suppression import render_rows, suppress
from vir.services.followup import FollowUpCheck, set_period
from vir.services.identity import Caller
from vir.services.matchregie import Matchregie
from vir.services.onboarding import register_organisation
from vir.services.participation import OUTCOMES, participation_report
from vir.store.tables import MatchMemberRow

SCHOOL, GP, YOUTH_CARE, POLICE = ORGS
OCTOBER = (dt.date(2026, 10, 1), dt.date(2026, 11, 1))
NOW = dt.datetime(2026, 11, 10, 3, 0, tzinfo=dt.UTC)


def _at(w: World, day: dt.date, hours: int = 0) -> None:
    w.clock.to(day)
    w.clock.now += dt.timedelta(hours=hours)


def _match_of(w: World, signal_id: str) -> str:
    with w.store.db.read() as session:
        found = session.scalars(
            select(MatchMemberRow.match_id).where(MatchMemberRow.signal_id == signal_id)
        ).all()
    (match_id,) = found
    return match_id


def _contact(w: World, regie: Matchregie, org: int, match_id: str, other: int) -> None:
    regie.follow_up(w.caller(org), match_id, FollowUp.CONTACT_MADE, [str(ORGS[other].oin)])


@pytest.fixture
def october(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        regie = Matchregie(w.store.db, w.clock)
        _at(w, dt.date(2026, 9, 20))
        w.register(0, "old")
        _at(w, dt.date(2026, 9, 21))
        old = _match_of(w, w.register(1, "old").id)
        _at(w, dt.date(2026, 10, 2))
        w.register(0, "kim")
        _at(w, dt.date(2026, 10, 3))
        kim = _match_of(w, w.register(2, "kim").id)
        _at(w, dt.date(2026, 10, 5))
        _contact(w, regie, 1, old, 0)  # a match of September: not counted
        _at(w, dt.date(2026, 10, 10))
        w.register(1, "sam")
        sam = _match_of(w, w.register(2, "sam").id)
        _at(w, dt.date(2026, 10, 11))
        _contact(w, regie, 2, sam, 1)
        _at(w, dt.date(2026, 10, 12))
        w.register(1, "eva")
        w.register(3, "eva")
        _at(w, dt.date(2026, 10, 20))
        _contact(w, regie, 2, kim, 0)
        _at(w, dt.date(2026, 10, 30))
        w.register(0, "lia")
        w.register(1, "bo")
        _at(w, dt.date(2026, 10, 31))
        lia = _match_of(w, w.register(3, "lia").id)
        w.register(2, "bo")
        _at(w, dt.date(2026, 11, 2))
        _contact(w, regie, 3, lia, 0)
        w.clock.now = NOW
        yield w


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in report["organisations"]}


def test_the_figures_per_organisation(october: World) -> None:
    w = october
    report = participation_report(w.store.db, w.clock, w.officer, *OCTOBER)
    assert report["region"] == "Rotterdam" and report["days"] == 14
    orgs = _by_name(report)
    assert set(orgs) == {o.name for o in ORGS} | {"Veilig Thuis T"}  # Rotterdam's reporters
    figures = {
        name: (
            item["signals"],
            item["matches"],
            *(item[f"contact_{key}"] for key in OUTCOMES),
            item["median_days"],
        )
        for name, item in orgs.items()
    }
    assert figures == {
        "School A": (2, 2, 1, 1, 0, 0, 9.5),
        "Huisarts B": (3, 3, 1, 0, 1, 1, 1.0),
        "Jeugdzorg C": (3, 3, 1, 1, 0, 1, 9.0),
        "Politie D": (2, 2, 1, 0, 1, 0, 2.0),
        "Veilig Thuis T": (0, 0, 0, 0, 0, 0, None),
    }
    # One organisation per category in Rotterdam: no peers, nothing to compare, no flag.
    assert all(item["peers"]["organisations"] == 0 for item in orgs.values())
    assert all(item["peers"]["signals"] is None for item in orgs.values())
    assert report["flags"] == []


def test_the_term_for_contact_is_a_parameter(october: World) -> None:
    w = october
    orgs = _by_name(participation_report(w.store.db, w.clock, w.officer, *OCTOBER, days=20))
    # Kim's contact after 17 days is now within, for A and C; Eva (29 days) still has
    # none; Bo (10 days) is still pending.
    assert orgs["Jeugdzorg C"]["contact_within"] == orgs["School A"]["contact_within"] == 2
    assert (orgs["Huisarts B"]["contact_none"], orgs["Huisarts B"]["contact_pending"]) == (1, 1)
    one = _by_name(participation_report(w.store.db, w.clock, w.officer, *OCTOBER, days=1))
    # One day: Sam's contact after exactly 1.0 day is within (at most), Lia's after 2 later.
    assert (one["Jeugdzorg C"]["contact_within"], one["Jeugdzorg C"]["contact_later"]) == (1, 1)
    # ... and Bo's 10 days without contact are past the term.
    assert (one["Huisarts B"]["contact_within"], one["Huisarts B"]["contact_none"]) == (1, 2)
    assert (one["School A"]["contact_later"], one["Politie D"]["contact_later"]) == (2, 1)


def test_the_default_term_is_the_regions_follow_up_period(october: World) -> None:
    w = october
    assert participation_report(w.store.db, w.clock, w.officer, *OCTOBER)["days"] == 14
    set_period(w.store.db, "Rotterdam", 20, NOW)
    report = participation_report(w.store.db, w.clock, w.officer, *OCTOBER)
    assert report["days"] == 20
    assert _by_name(report)["Jeugdzorg C"]["contact_within"] == 2, "as with days=20"
    # A report of every region keeps 14: regions' periods differ.
    every = participation_report(w.store.db, w.clock, w.national_officer, *OCTOBER)
    assert every["days"] == 14


@pytest.mark.parametrize("days", [0, -1, 366])
def test_a_term_outside_1_to_365_days_is_refused(october: World, days: int) -> None:
    w = october
    with pytest.raises(InputError) as refused:
        participation_report(w.store.db, w.clock, w.officer, *OCTOBER, days=days)
    assert refused.value.field == "days"


def _add(w: World, number: int, name: str, category: Category) -> Organisation:
    org = Organisation(
        Oin(f"000000090000000003{number:02d}"), name, category, "Rotterdam", "test-convenant"
    )
    register_organisation(w.store.db, org, w.clock())
    return org


def _signals(w: World, org: Organisation, count: int) -> None:
    for n in range(count):
        w.register(org, f"{org.name}-{n}")


@pytest.mark.parametrize(("own", "flagged"), [(1, True), (2, False)])
def test_the_flag_rule(tmp_path: Path, own: int, flagged: bool) -> None:
    """School A against three other schools with 4, 8 and 12 signals: their median is 8,
    a quarter of it 2. One signal is fewer (flagged); two is not. Three GPs: Huisarts B
    with none has only two peers, too few to compare."""
    with world(tmp_path) as w:
        _at(w, dt.date(2026, 10, 2))
        for n in range(own):
            w.register(0, f"own-{n}")
        for number, count in ((1, 4), (2, 8), (3, 12)):
            _signals(w, _add(w, number, f"School {number}", Category.EDUCATION), count)
        for number in (4, 5):
            _signals(w, _add(w, number, f"Huisarts {number}", Category.GP), 10)
        w.clock.now = NOW
        report = participation_report(w.store.db, w.clock, w.officer, *OCTOBER)
    orgs = _by_name(report)
    school = orgs["School A"]
    assert school["peers"] == {"organisations": 3, "signals": 8, "matches": 0, "median_days": None}
    assert school["reports_far_less"] is flagged
    assert orgs["School 3"]["peers"]["signals"] == 4  # the median of own, 4 and 8
    gp = orgs["Huisarts B"]
    assert (gp["signals"], gp["peers"]["organisations"], gp["reports_far_less"]) == (0, 2, False)
    expected = [str(SCHOOL.oin)] if flagged else []
    assert [f["oin"] for f in report["flags"]] == expected
    if flagged:
        assert flag_sentence(report["flags"][0]) == (
            "School A registreerde 1 melding: minder dan een kwart van de mediaan (8) van de "
            "3 andere organisaties van de categorie Onderwijs in de regio."
        )


def test_the_regional_comparison_is_suppressed_as_the_monitor_is(tmp_path: Path) -> None:
    """Rotterdam: 30 school signals (schooling) and 12 GP signals (care); Utrecht's two
    organisations none. The published table is exactly what ``suppress`` makes of those
    counts: the small ones hidden, nothing else recomputed here."""
    with world(tmp_path) as w:
        _at(w, dt.date(2026, 10, 2))
        _signals(w, _add(w, 1, "School 1", Category.EDUCATION), 30)
        _signals(w, _add(w, 2, "Huisarts 2", Category.GP), 12)
        w.clock.now = NOW
        report = participation_report(w.store.db, w.clock, w.national_officer, *OCTOBER)
    groups = ["schooling", "care", "youth_and_safety", "support"]
    cells = {("Rotterdam", "schooling"): 30, ("Rotterdam", "care"): 12}
    expected = render_rows(suppress(cells, ["Rotterdam", "Utrecht"], groups), corner="regio")
    regions = report["regions"]
    assert regions["signals"]["rows"] == expected
    # By hand: Utrecht's row is all small, so its total is hidden, and with it enough of
    # Rotterdam's and the totals row that no small count can be recomputed.
    assert expected[1:] == [
        ["Rotterdam", "x", "12", "<10", "<10", "x"],
        ["Utrecht", "<10", "<10", "<10", "<10", "<10"],
        ["totaal", "x", "x", "<10", "<10", "42"],
    ]
    assert regions["signals"]["legend"][0].startswith("<10: minder dan 10")
    # No matches anywhere: every outcome is a small count, so no share or median either.
    assert all(cell == "<10" for row in regions["matches"]["rows"][1:] for cell in row[1:])
    assert all(d["share_within"] is None and d["median_days"] is None for d in regions["derived"])
    assert report["region"] is None  # the national officer: every region's organisations
    assert {item["region"] for item in report["organisations"]} == {"Rotterdam", "Utrecht"}


def test_the_regions_matches_are_counted_once_each(tmp_path: Path) -> None:
    """The regional table counts the region's matches, each once, not each organisation's
    matches added up: 12 matches of School A and Jeugdzorg C made on 2 October, the
    school recording contact with youth care the next day (within the term, for both),
    and 12 made on 31 October without contact (pending). Rotterdam has 12 and 12
    matches, not 24 and 24."""
    with world(tmp_path) as w:
        regie = Matchregie(w.store.db, w.clock)
        _at(w, dt.date(2026, 10, 2))
        early = []
        for n in range(12):
            w.register(0, f"early-{n}")
            early.append(_match_of(w, w.register(2, f"early-{n}").id))
        _at(w, dt.date(2026, 10, 3))
        for match_id in early:
            _contact(w, regie, 0, match_id, 2)
        _at(w, dt.date(2026, 10, 31))
        for n in range(12):
            w.register(0, f"late-{n}")
            w.register(2, f"late-{n}")
        w.clock.now = NOW
        report = participation_report(w.store.db, w.clock, w.national_officer, *OCTOBER)
    orgs = _by_name(report)
    for name in ("School A", "Jeugdzorg C"):
        assert (orgs[name]["contact_within"], orgs[name]["contact_pending"]) == (12, 12)
    regions = ["Rotterdam", "Utrecht"]
    cells = {("Rotterdam", "within"): 12, ("Rotterdam", "pending"): 12}
    expected = render_rows(suppress(cells, regions, OUTCOMES), corner="regio")
    added_up = {key: 2 * count for key, count in cells.items()}
    assert render_rows(suppress(added_up, regions, OUTCOMES), corner="regio") != expected
    assert report["regions"]["matches"]["rows"] == expected
    assert expected[1] == ["Rotterdam", "12", "<10", "<10", "12", "x"]


def test_who_may_run_it(october: World) -> None:
    w = october
    follow_up = Caller(w.officer.organisation, "a" * 64, Role.FOLLOW_UP_OFFICER)
    mine = participation_report(w.store.db, w.clock, follow_up, *OCTOBER)
    assert mine["region"] == "Rotterdam"
    with pytest.raises(OutsideRegion):
        participation_report(w.store.db, w.clock, follow_up, *OCTOBER, region="Utrecht")
    with pytest.raises(OutsideRegion):
        participation_report(w.store.db, w.clock, w.officer, *OCTOBER, region="Utrecht")
    utrecht = participation_report(w.store.db, w.clock, w.national_officer, *OCTOBER, "Utrecht")
    assert {item["region"] for item in utrecht["organisations"]} == {"Utrecht"}
    for caller in (w.caller(0), w.caller(0, Role.COORDINATOR), w.veilig_thuis):
        with pytest.raises(NotPermitted):
            participation_report(w.store.db, w.clock, caller, *OCTOBER)
    generated = [e for e in w.audit() if e.action == "report.generated"]
    assert [e.objects["report"] for e in generated] == ["participation"] * 2
    assert [e.role for e in generated] == ["follow_up_officer", "national_privacy_officer"]


def test_csv_and_pdf(october: World) -> None:
    w = october
    report = participation_report(w.store.db, w.clock, w.officer, *OCTOBER)
    data = list(csv.reader(io.StringIO(participation_csv(report, "data"))))
    assert data[0] == ["section", "oin", "organisation", "key", "subkey", "value"]
    assert ["organisations", str(YOUTH_CARE.oin), "Jeugdzorg C", "median_days", "", "9.0"] in data
    dutch = participation_csv(report, "nl")
    assert dutch.startswith("\ufeffOnderdeel;OIN;Organisatie;")
    rows = list(csv.reader(io.StringIO(dutch.lstrip("\ufeff")), delimiter=";"))
    days = [r for r in rows if r[1] == str(YOUTH_CARE.oin) and r[3].startswith("Dagen")]
    assert days == [
        [
            "Deelname",
            str(YOUTH_CARE.oin),
            "Jeugdzorg C",
            "Dagen tot contact (mediaan)",
            "Jeugdhulp; mediaan van 0 vergelijkbare: -",
            "9",
        ]
    ]
    pdf = participation_pdf(report, NOW)
    assert participation_pdf(report, NOW) == pdf  # the same bytes every time
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Monitor deelname Verwijsindex" in text
    assert "Vergelijking tussen regio's" in text and "Herkomst van de cijfers" in text
    assert "binnen 14 dagen" in text


def test_progress_is_told_from_none_to_every_entry_read(october: World) -> None:
    """The report reads signal.registered, match.member_added and follow-up entries from
    the period's first day on: here 10 registrations (2 in September are before it), 10
    members added, and 4 follow-ups, among them the September match's."""
    w = october
    told: list[tuple[int, int]] = []
    participation_report(
        w.store.db, w.clock, w.officer, *OCTOBER, progress=lambda d, t: told.append((d, t))
    )
    assert told == [(0, 24), (24, 24)]


def test_a_later_participant_is_timed_from_its_own_joining(tmp_path: Path) -> None:
    """The school and youth care match on 3 Oct; the police join the match on 10 Oct and
    record contact on 12 Oct: 2.0 days for the police, not 9 from the match's start."""
    with world(tmp_path) as w:
        regie = Matchregie(w.store.db, w.clock)
        _at(w, dt.date(2026, 10, 2))
        w.register(0, "kim")
        _at(w, dt.date(2026, 10, 3))
        match_id = _match_of(w, w.register(2, "kim").id)
        _at(w, dt.date(2026, 10, 10))
        w.register(3, "kim")
        _at(w, dt.date(2026, 10, 12))
        _contact(w, regie, 3, match_id, 2)
        w.clock.now = NOW
        orgs = _by_name(participation_report(w.store.db, w.clock, w.officer, *OCTOBER))
    police = orgs["Politie D"]
    assert (police["matches"], police["contact_within"], police["median_days"]) == (1, 1, 2.0)
    assert orgs["Jeugdzorg C"]["matches"] == orgs["School A"]["matches"] == 1


def test_contact_recorded_with_another_is_contact_for_both_as_on_the_overdue_list(
    tmp_path: Path,
) -> None:
    """The school records ``contact_made`` with the GP: one definition of contact
    (``vir.domain.followup.in_contact``) for the follow-up officer's list and the
    monitor. The match leaves the overdue list (both confirmed), and in the monitor the
    GP has had contact too, within the term, not "no contact, term still running"."""
    with world(tmp_path) as w:
        regie = Matchregie(w.store.db, w.clock)
        _at(w, dt.date(2026, 10, 2))
        w.register(0, "kim")
        match_id = _match_of(w, w.register(1, "kim").id)
        _at(w, dt.date(2026, 10, 5))
        _contact(w, regie, 0, match_id, 1)
        _at(w, dt.date(2026, 10, 20))
        officer = w.caller(MUNICIPALITY, Role.FOLLOW_UP_OFFICER)
        assert FollowUpCheck(w.store.db, w.clock).overdue(officer, None, None, 100).items == ()
        orgs = _by_name(participation_report(w.store.db, w.clock, w.officer, *OCTOBER))
    figures = {
        name: (
            orgs[name]["contact_within"],
            orgs[name]["contact_pending"],
            orgs[name]["median_days"],
        )
        for name in ("School A", "Huisarts B")
    }
    assert figures == {"School A": (1, 0, 3.0), "Huisarts B": (1, 0, 3.0)}
