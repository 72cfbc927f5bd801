"""The monitor's level: periods and category groups, chosen so that most numbers show."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vir.domain.organisations import Category
from vir.reports.aggregation import CATEGORY_GROUPS, aggregate, choose, period_of
from vir.reports.labels import CATEGORY_GROUPS as GROUP_LABELS
from vir.reports.labels import category_label, period_label
from vir.reports.suppression import suppress

MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04"]
CATEGORIES = ["education", "leerplicht_rmc", "gp", "police"]


def test_periods() -> None:
    assert [period_of(m, "quarter") for m in MONTHS] == ["2026-Q1"] * 3 + ["2026-Q2"]
    assert period_of("2026-12", "year") == "2026" and period_of("2026-12", "month") == "2026-12"
    assert period_label("2026-Q2") == "2e kwartaal 2026"
    assert period_label("2026-Q2", "en") == "Q2 2026"
    assert period_label("2026-03") == "maart 2026" and period_label("2026") == "2026"


def test_every_reporting_category_has_a_labelled_group() -> None:
    assert set(CATEGORY_GROUPS) == {c for c in Category if c.reports}
    assert set(CATEGORY_GROUPS.values()) == set(GROUP_LABELS)
    assert category_label("youth_and_safety") == "Jeugdhulp en veiligheid"


def test_aggregate_adds_up_counts_per_row_and_period() -> None:
    cells = {("education", "2026-01"): 4, ("leerplicht_rmc", "2026-02"): 5, ("gp", "2026-04"): 1}
    summed, rows, columns = aggregate(cells, CATEGORIES[::-1], MONTHS, "quarter", "groups")
    assert rows == ["schooling", "care", "youth_and_safety"]  # in the groups' order
    assert columns == ["2026-Q1", "2026-Q2"]
    assert summed == {("schooling", "2026-Q1"): 9, ("care", "2026-Q2"): 1}


def _spread(per_month: int) -> dict[tuple[str, str], int]:
    return {(c, m): per_month for c in CATEGORIES for m in MONTHS}


def test_auto_takes_the_finest_level_at_which_most_numbers_show() -> None:
    fine = choose({"signals": _spread(20)}, CATEGORIES, MONTHS)
    assert (fine.granularity, fine.grouping) == ("month", "categories")
    assert fine.hidden == 0 and fine.numbers == 5 * 5
    # 4 a month per category: too few by month, even per group (8 or 4); per quarter
    # the one-month second quarter is hidden; per year every number shows (16).
    coarse = choose({"signals": _spread(4)}, CATEGORIES, MONTHS)
    assert (coarse.granularity, coarse.grouping) == ("year", "categories")
    assert coarse.shown == 1
    for granularity, grouping in [("quarter", "categories"), ("month", "groups")]:
        finer = choose({"signals": _spread(4)}, CATEGORIES, MONTHS, granularity, grouping)
        assert finer.shown < Fraction(7, 10)


def test_a_fixed_choice_is_kept_and_suppression_is_unchanged() -> None:
    cells = _spread(3)
    level = choose({"signals": cells}, CATEGORIES, MONTHS, "year", "auto")
    assert level.granularity == "year"
    summed, rows, columns = aggregate(cells, CATEGORIES, MONTHS, "year", level.grouping)
    assert level.tables["signals"] == suppress(dict(summed), rows, columns)


def test_when_no_level_reaches_the_target_the_one_that_shows_most() -> None:
    level = choose({"signals": {("gp", "2026-01"): 1}}, CATEGORIES, MONTHS)
    assert level.hidden == level.numbers  # nothing can be shown, at any level
    assert (level.granularity, level.grouping) == ("month", "categories")
    with pytest.raises(ValueError, match="granularity"):
        choose({}, CATEGORIES, MONTHS, "week")  # type: ignore[arg-type]
