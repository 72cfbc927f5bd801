"""Worked examples of small-cell suppression for the municipal monitor."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from vir.reports.suppression import (
    Interval,
    Reason,
    Suppressed,
    SuppressedTable,
    UnprotectableTable,
    feasible_ranges,
    legend,
    ratio,
    render_rows,
    suppress,
)

MONTHS = ["2026-01", "2026-02", "2026-03"]
CATEGORIES = ["education", "gp", "police"]
PRIMARY = Suppressed(Reason.PRIMARY, 10)
SECONDARY = Suppressed(Reason.SECONDARY, 10)


def uniform(
    value: int, rows: list[str] = CATEGORIES, columns: list[str] = MONTHS
) -> dict[tuple[str, str], int]:
    return {(r, c): value for r in rows for c in columns}


def test_a_single_small_cell_forces_a_rectangle_of_suppressions() -> None:
    cells = uniform(50)
    cells[("gp", "2026-02")] = 3
    table = suppress(cells, CATEGORIES, MONTHS)

    assert table.cell("gp", "2026-02") == PRIMARY
    assert table.suppressed(Reason.PRIMARY) == [("gp", "2026-02")]
    secondary = table.suppressed(Reason.SECONDARY)
    # One more in its row (else 3 = row total - the rest), one more in its column, and
    # the fourth corner of the rectangle, which keeps the other two lines hidden too.
    assert len(secondary) == 3
    assert sum(1 for r, _ in secondary if r == "gp") == 1
    assert sum(1 for _, c in secondary if c == "2026-02") == 1
    (corner,) = [(r, c) for r, c in secondary if r != "gp" and c != "2026-02"]
    assert (corner[0], "2026-02") in secondary and ("gp", corner[1]) in secondary
    # Totals stay exact and published; only inner cells were needed.
    assert table.row_total("gp") == 50 + 50 + 3
    assert table.column_total("2026-02") == 50 + 50 + 3
    assert table.grand_total == 8 * 50 + 3
    assert feasible_ranges(table)[("gp", "2026-02")] == Interval(0, 9)


def test_hiding_only_the_small_cell_would_disclose_it() -> None:
    """What secondary suppression prevents: the audit recovers the value exactly."""
    naive = SuppressedTable(
        ("gp", "police"),
        ("2026-01", "2026-02"),
        10,
        5,
        ((50, PRIMARY, 53), (50, 50, 100), (100, 53, 153)),
    )
    assert feasible_ranges(naive) == {("gp", "2026-02"): Interval(3, 3)}


def test_a_zero_is_shown_as_under_the_threshold() -> None:
    cells = uniform(50)
    cells[("police", "2026-03")] = 0
    table = suppress(cells, CATEGORIES, MONTHS)
    assert table.cell("police", "2026-03") == PRIMARY
    assert feasible_ranges(table)[("police", "2026-03")].high == 9


def test_missing_cells_count_as_zero() -> None:
    """One category reported 40 in January, nothing else happened. Publishing the 40,
    its row total and the grand total would show that every other count is 0."""
    table = suppress({("gp", "2026-01"): 40}, CATEGORIES, MONTHS)
    assert render_rows(table) == [
        ["", *MONTHS, "totaal"],
        ["education", "<10", "<10", "<10", "<10"],
        ["gp", "x", "<10", "<10", "40"],
        ["police", "<10", "<10", "<10", "<10"],
        ["totaal", "40", "<10", "<10", "x"],
    ]
    ranges = feasible_ranges(table)
    assert ranges[("gp", "2026-02")] == Interval(0, 9)
    assert ranges[("gp", "2026-01")] == Interval(22, 40)


def test_a_whole_table_under_the_threshold_shows_nothing() -> None:
    table = suppress(uniform(1), CATEGORIES, MONTHS)  # grand total 9
    assert all(v == PRIMARY for line in table.grid for v in line)
    assert render_rows(table)[-1] == ["totaal", "<10", "<10", "<10", "<10"]
    assert all(i == Interval(0, 9) for i in feasible_ranges(table).values())


def test_small_cells_with_a_large_grand_total() -> None:
    """Every cell and every marginal is under 10, the grand total (12) is not. The small
    numbers hide each other, so the grand total can be shown."""
    rows, columns = ["gp", "police"], ["2026-01", "2026-02"]
    table = suppress(uniform(3, rows, columns), rows, columns)
    assert table.grand_total == 12
    assert table.suppressed(Reason.SECONDARY) == []
    ranges = feasible_ranges(table)
    assert ranges[("gp", "2026-01")] == Interval(0, 9)
    assert ranges[("gp", None)] == Interval(3, 9)  # with the other row total 12 - that


def test_an_all_large_table_publishes_everything() -> None:
    table = suppress(uniform(25), CATEGORIES, MONTHS)
    assert table.suppressed() == []
    assert render_rows(table) == [
        ["", *MONTHS, "totaal"],
        ["education", "25", "25", "25", "75"],
        ["gp", "25", "25", "25", "75"],
        ["police", "25", "25", "25", "75"],
        ["totaal", "75", "75", "75", "225"],
    ]


def test_a_one_row_table() -> None:
    """With one row each column total equals its cell, so both are hidden, and a
    second month (the smallest) is hidden with its column total."""
    cells = {("gp", "2026-01"): 3, ("gp", "2026-02"): 50, ("gp", "2026-03"): 40}
    table = suppress(cells, ["gp"], MONTHS)
    assert render_rows(table) == [
        ["", *MONTHS, "totaal"],
        ["gp", "<10", "50", "x", "93"],
        ["totaal", "<10", "50", "x", "93"],
    ]
    ranges = feasible_ranges(table)
    assert ranges[("gp", "2026-01")] == Interval(0, 9)
    assert ranges[("gp", "2026-03")] == Interval(34, 43)


def test_a_one_column_table() -> None:
    cells = {("education", "2026-01"): 12, ("gp", "2026-01"): 7, ("police", "2026-01"): 30}
    table = suppress(cells, CATEGORIES, ["2026-01"])
    assert table.cell("gp", "2026-01") == PRIMARY
    assert table.row_total("gp") == PRIMARY
    assert table.cell("education", "2026-01") == SECONDARY  # 12 is cheaper than 30
    assert table.row_total("education") == SECONDARY
    assert table.cell("police", "2026-01") == 30
    assert table.grand_total == 49
    assert feasible_ranges(table)[("gp", "2026-01")] == Interval(0, 9)


def test_the_secondary_marker_is_never_under_the_threshold() -> None:
    """ "x" means "10 or more": showing it as "<10" would be untrue."""
    cells = uniform(50)
    cells[("gp", "2026-02")] = 3
    table = suppress(cells, CATEGORIES, MONTHS)
    rendered = render_rows(table)
    assert sum(line.count("x") for line in rendered) == 3
    assert sum(line.count("<10") for line in rendered) == 1
    assert legend(table)[0].startswith("<10: minder dan 10 (0 tot en met 9)")
    assert legend(table)[1].startswith("x: geheim; het getal is 10 of meer")
    assert str(SECONDARY) == "x" and str(PRIMARY) == "<10"
    assert str(Suppressed(Reason.PRIMARY, 5)) == "<5"


def test_x_is_known_to_be_at_least_the_threshold() -> None:
    """Two small gp counts (3 and 4) need a complementary pair in January and February.
    The police counts (12, 12) are cheaper, but an attacker knows an "x" is 10 or more:
    police could only drop by 2, which would leave the gp counts within 1..5 — four
    values apart, under the protection of five. So the education counts are hidden."""
    cells = uniform(30)
    cells[("gp", "2026-01")] = 3
    cells[("gp", "2026-02")] = 4
    cells[("police", "2026-01")] = 12
    cells[("police", "2026-02")] = 12
    table = suppress(cells, CATEGORIES, MONTHS)
    assert render_rows(table)[1:4] == [
        ["education", "x", "x", "30", "90"],
        ["gp", "<10", "<10", "30", "37"],
        ["police", "12", "12", "30", "54"],
    ]
    assert feasible_ranges(table)[("gp", "2026-01")] == Interval(0, 7)

    police_instead = SuppressedTable(
        table.rows,
        table.columns,
        10,
        5,
        (
            (30, 30, 30, 90),
            (PRIMARY, PRIMARY, 30, 37),
            (SECONDARY, SECONDARY, 30, 54),
            (45, 46, 90, 181),
        ),
    )
    assert feasible_ranges(police_instead)[("gp", "2026-01")] == Interval(1, 5)


def test_a_wider_protection_hides_more() -> None:
    cells = uniform(30)
    cells[("gp", "2026-01")] = 3
    cells[("gp", "2026-02")] = 4
    wide = suppress(cells, CATEGORIES, MONTHS, protection=9)
    assert wide.protection == 9
    assert render_rows(wide)[1:4] == [
        ["education", "x", "x", "x", "90"],
        ["gp", "<10", "<10", "x", "37"],
        ["police", "30", "30", "30", "90"],
    ]
    for position in wide.suppressed(Reason.PRIMARY):
        assert feasible_ranges(wide)[position] == Interval(0, 9)


def test_the_result_does_not_depend_on_the_order_of_the_input() -> None:
    cells = uniform(50)
    cells[("gp", "2026-02")] = 3
    cells[("education", "2026-03")] = 8
    backwards = dict(reversed(list(cells.items())))
    assert suppress(cells, CATEGORIES, MONTHS) == suppress(backwards, CATEGORIES, MONTHS)


def test_a_monitor_sized_table() -> None:
    """16 categories by 24 months, a realistic mix; the result passes the audit."""
    rng = random.Random(2026)
    rows = [f"category-{i:02d}" for i in range(16)]
    columns = [f"{2025 + m // 12}-{m % 12 + 1:02d}" for m in range(24)]
    scale = {r: rng.choice([1, 3, 8, 20, 60, 200]) for r in rows}
    cells = {
        (r, c): max(0, round(rng.gauss(scale[r], scale[r] / 2))) for r in rows for c in columns
    }
    table = suppress(cells, rows, columns)
    ranges = feasible_ranges(table)
    assert table.suppressed(Reason.PRIMARY)
    for position in table.suppressed(Reason.PRIMARY):
        width = ranges[position].width
        assert width is not None and width >= 5
    for r in rows:
        for c in columns:
            shown = table.cell(r, c)
            assert isinstance(shown, Suppressed) or shown == cells[(r, c)] >= 10


def test_a_table_that_cannot_be_protected_is_refused() -> None:
    # Threshold 2: both cells are "<2", the total 2 is at least 2 even when hidden, so
    # each cell must be 1. No suppression helps; the caller must aggregate.
    with pytest.raises(UnprotectableTable):
        suppress({("gp", "2026-01"): 1, ("gp", "2026-02"): 1}, ["gp"], MONTHS[:2], 2)


@pytest.mark.parametrize(
    ("cells", "rows", "columns", "threshold", "protection"),
    [
        ({("gp", "2026-01"): -1}, ["gp"], ["2026-01"], 10, None),
        ({("gp", "2026-01"): True}, ["gp"], ["2026-01"], 10, None),
        ({("gp", "2026-01"): 1.5}, ["gp"], ["2026-01"], 10, None),
        ({("jgz", "2026-01"): 1}, ["gp"], ["2026-01"], 10, None),
        ({}, ["gp", "gp"], ["2026-01"], 10, None),
        ({}, [], ["2026-01"], 10, None),
        ({}, ["gp"], [], 10, None),
        ({}, ["gp"], ["2026-01"], 1, None),
        ({}, ["gp"], ["2026-01"], 10, 0),
        ({}, ["gp"], ["2026-01"], 10, 10),
    ],
)
def test_malformed_input_is_refused(
    cells: dict[tuple[str, str], int],
    rows: list[str],
    columns: list[str],
    threshold: int,
    protection: int | None,
) -> None:
    with pytest.raises(ValueError):
        suppress(cells, rows, columns, threshold, protection=protection)


def test_an_inconsistent_publication_is_detected() -> None:
    broken = SuppressedTable(("gp",), ("2026-01",), 10, 5, ((20, 20), (20, 21)))
    with pytest.raises(ValueError, match="inconsistent"):
        feasible_ranges(broken)


def test_an_unbounded_secondary() -> None:
    """With everything hidden but nothing bounding it, an x has no upper limit."""
    table = SuppressedTable(
        ("gp", "police"),
        ("2026-01",),
        10,
        5,
        ((SECONDARY, SECONDARY), (PRIMARY, PRIMARY), (SECONDARY, SECONDARY)),
    )
    ranges = feasible_ranges(table)
    assert ranges[("gp", "2026-01")] == Interval(10, None)
    assert ranges[("gp", "2026-01")].width is None
    assert ranges[("police", "2026-01")] == Interval(0, 9)


def test_value_addresses_totals_with_none() -> None:
    table = suppress(uniform(25), CATEGORIES, MONTHS)
    assert table.value("gp", None) == table.row_total("gp") == 75
    assert table.value(None, "2026-01") == table.column_total("2026-01") == 75
    assert table.value(None, None) == table.grand_total == 225
    assert table.positions()[3] == ("education", None)
    assert table.positions()[-1] == (None, None)


def test_render_rows_labels() -> None:
    table = suppress(uniform(25, ["gp"], ["2026-01"]), ["gp"], ["2026-01"])
    assert render_rows(table, corner="categorie", total_label="total") == [
        ["categorie", "2026-01", "total"],
        ["gp", "25", "25"],
        ["total", "25", "25"],
    ]


def test_a_ratio_is_derived_only_from_published_counts() -> None:
    assert ratio(12, 48) == Fraction(1, 4)
    assert ratio(PRIMARY, 48) is None
    assert ratio(12, SECONDARY) is None
    assert ratio(0, 0) is None
