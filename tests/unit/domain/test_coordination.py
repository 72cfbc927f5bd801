"""The coordinator's choice by regional rules (vir.domain.coordination): examples and
properties, written from the rules in docs/matching.md ("Coordinator")."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vir.domain.coordination import (
    DEFAULT_RULES,
    Candidate,
    choose,
    parse_rules,
    rules_region,
)
from vir.domain.errors import InputError
from vir.domain.organisations import Category

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
DEFAULT = tuple(c.value for c in DEFAULT_RULES)


def member(signal_id: str, category: str, minutes: int, region: str = "Rotterdam") -> Candidate:
    return Candidate(signal_id, category, region, T0 + dt.timedelta(minutes=minutes))


def test_the_first_ranked_category_coordinates() -> None:
    school = member("a", "education", 0)
    gp = member("b", "gp", 1)
    youth_care = member("c", "youth_care", 2)
    assert choose([school, gp, youth_care], DEFAULT) == "c"
    assert choose([school, gp], DEFAULT) == "b"
    assert choose([school, gp, youth_care], ("gp", "youth_care")) == "b"


def test_a_tie_goes_to_the_earliest_signal_then_the_id() -> None:
    later = member("a", "youth_care", 5)
    earlier = member("b", "youth_care", 1)
    assert choose([later, earlier], DEFAULT) == "b"
    same_time = [member("z", "gp", 0), member("y", "gp", 0)]
    assert choose(same_time, DEFAULT) == "y"


def test_without_an_eligible_member_the_earliest_signal_coordinates() -> None:
    police = member("p", "police", 3)
    school = member("s", "education", 2)
    assert choose([police, school], DEFAULT) == "s"
    assert choose([police, school], ("halt",)) == "s"


def test_the_default_rules_let_reporting_only_categories_report() -> None:
    assert DEFAULT[:3] == ("youth_care", "neighbourhood_team", "veilig_thuis")
    for only_reports in ("education", "police", "halt", "leerplicht_rmc", "probation"):
        assert only_reports not in DEFAULT
    assert "hospital_emergency" not in DEFAULT


def test_a_match_across_regions_follows_its_earliest_signal() -> None:
    utrecht = member("u", "gp", 0, "Utrecht")
    rotterdam = member("r", "youth_care", 1, "Rotterdam")
    assert rules_region([rotterdam, utrecht]) == "Utrecht"


def test_no_members_no_coordinator() -> None:
    with pytest.raises(ValueError):
        choose([], DEFAULT)


def test_rules_are_parsed_and_checked() -> None:
    assert parse_rules("youth_care, neighbourhood_team,gp") == (
        Category.YOUTH_CARE,
        Category.NEIGHBOURHOOD_TEAM,
        Category.GP,
    )
    for wrong in ("", "gp,,jgz", "gp,gp", "wizards", "municipality", "index_operator"):
        with pytest.raises(InputError) as refused:
            parse_rules(wrong)
        assert refused.value.field == "categories"
        assert wrong not in refused.value.detail or not wrong


CATEGORY_VALUES = [c.value for c in Category if c.reports]
members = st.lists(
    st.builds(
        member,
        st.uuids().map(str),
        st.sampled_from(CATEGORY_VALUES),
        st.integers(0, 20),
    ),
    min_size=1,
    max_size=8,
    unique_by=lambda m: m.signal_id,
)
rules = st.lists(st.sampled_from(CATEGORY_VALUES), unique=True, max_size=6)


@given(members, rules)
def test_exactly_one_member_the_best_ranked_and_earliest(
    group: list[Candidate], order: list[str]
) -> None:
    chosen = choose(group, order)
    (winner,) = [m for m in group if m.signal_id == chosen]
    eligible = [m for m in group if m.category in order]
    if not eligible:
        assert all(winner.order <= m.order for m in group)
        return
    assert winner.category in order
    for other in eligible:
        rank, other_rank = order.index(winner.category), order.index(other.category)
        assert rank < other_rank or (rank == other_rank and winner.order <= other.order)


@given(members, rules)
def test_the_choice_does_not_depend_on_the_members_order(
    group: list[Candidate], order: list[str]
) -> None:
    assert choose(group, order) == choose(list(reversed(group)), order)
