"""Random small tables: no published combination pins down a small count.

The oracle is an attacker written from the rule in docs/privacy/monitor.md, not from
the implementation: it enumerates every whole-number table that is consistent with
what was published — published numbers exact, ``<t`` one of 0..t-1, ``x`` at least
t, rows, columns and the totals row adding up — and collects the values each hidden
number takes. It is a plain exhaustive search (row by row, remembering only the
column sums so far), independent of the max-flow audit in vir.reports.suppression.

Hidden inner cells marked ``x`` are searched up to ``max(true inner cells) + t - 1``
so that the search is finite. That only removes candidate tables, which makes the
attacker stronger, never weaker: a small count that still takes enough values here
is at least as well protected against the real attacker. (It loses nothing either:
a table that moves one small count by up to t - 1 needs to move every other number
by at most t - 1, so the extreme values are all found within this bound.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vir.reports.suppression import (
    Interval,
    Reason,
    Suppressed,
    SuppressedTable,
    UnprotectableTable,
    feasible_ranges,
    render_rows,
    suppress,
)

Grid = list[list[int]]
Shown = int | Suppressed


def truth(values: Grid) -> Grid:
    """The table with its row totals, column totals and grand total appended."""
    full = [[*line, sum(line)] for line in values]
    full.append([sum(line[j] for line in full) for j in range(len(full[0]))])
    return full


def is_primary(shown: Shown) -> bool:
    return isinstance(shown, Suppressed) and shown.reason is Reason.PRIMARY


def fits(shown: Shown, value: int, t: int) -> bool:
    """Whether ``value`` is consistent with what is published at that place."""
    if not isinstance(shown, Suppressed):
        return value == shown
    if shown.reason is Reason.PRIMARY:
        return 0 <= value <= t - 1
    return value >= t


def attacker(grid: list[list[Shown]], t: int, cap: int) -> dict[tuple[int, int], set[int]]:
    """Every value each hidden number takes over all tables consistent with ``grid``.

    Cells are filled in one at a time, row by row; a partial table is remembered only
    by its column sums, its current row sum and its grand sum so far. A sum that must
    end as ``x`` is remembered as min(sum, t) ("t or more" is all that is checked);
    the others exactly. Reported: every hidden inner cell and row total, and the
    column totals and grand total where they are ``<t``.
    """
    n_r, n_c = len(grid) - 1, len(grid[0]) - 1
    col_shown = grid[n_r]

    def domain(shown: Shown) -> range:
        if not isinstance(shown, Suppressed):
            return range(shown, shown + 1)
        if shown.reason is Reason.PRIMARY:
            return range(t)
        return range(t, cap + 1)

    def keep(shown: Shown, partial: int) -> int | None:
        """A sum so far as remembered, or None when it can no longer fit ``shown``."""
        if not isinstance(shown, Suppressed):
            return partial if partial <= shown else None
        if shown.reason is Reason.PRIMARY:
            return partial if partial <= t - 1 else None
        return min(partial, t)

    # State: (column sums..., grand sum, current row sum).
    State = tuple[int, ...]

    def put(state: State, i: int, j: int, v: int) -> State | None:
        column = keep(col_shown[j], state[j] + v)
        grand = keep(col_shown[n_c], state[n_c] + v)
        row = keep(grid[i][n_c], state[n_c + 1] + v)
        if column is None or grand is None or row is None:
            return None
        return (*state[:j], column, *state[j + 1 : n_c], grand, row)

    def close(state: State, i: int) -> State | None:
        return (*state[: n_c + 1], 0) if fits(grid[i][n_c], state[n_c + 1], t) else None

    # One step per cell, and one closing each row (where the row total is checked).
    steps: list[tuple[int, int]] = []
    for i in range(n_r):
        steps += [(i, j) for j in range(n_c)] + [(i, n_c)]

    def moves(state: State, i: int, j: int) -> Iterator[tuple[int, State]]:
        if j == n_c:
            closed = close(state, i)
            if closed is not None:
                yield state[n_c + 1], closed
            return
        for v in domain(grid[i][j]):
            new = put(state, i, j, v)
            if new is not None:
                yield v, new

    forward: list[set[State]] = [{(0,) * (n_c + 2)}]
    for i, j in steps:
        forward.append({new for s in forward[-1] for _, new in moves(s, i, j)})

    seen: dict[tuple[int, int], set[int]] = {}
    good = {s for s in forward[-1] if all(fits(col_shown[j], s[j], t) for j in range(n_c + 1))}
    for s in good:
        for j in range(n_c + 1):
            if is_primary(col_shown[j]):
                seen.setdefault((n_r, j), set()).add(s[j])
    for k in reversed(range(len(steps))):
        i, j = steps[k]
        hidden = isinstance(grid[i][j], Suppressed)
        before = set()
        for s in forward[k]:
            for v, new in moves(s, i, j):
                if new in good:
                    before.add(s)
                    if hidden:
                        seen.setdefault((i, j), set()).add(v)
        good = before
    return seen


def labels(n_r: int, n_c: int) -> tuple[list[str], list[str]]:
    return [f"cat{i}" for i in range(n_r)], [f"2026-{j + 1:02d}" for j in range(n_c)]


@st.composite
def tables(draw: st.DrawFn, max_rows: int = 3, max_columns: int = 3) -> Grid:
    n_r = draw(st.integers(1, max_rows))
    n_c = draw(st.integers(1, max_columns))
    # Mostly a mix of small and large counts, so that tables with a few small cells,
    # with many, and with none all occur.
    count = st.one_of(st.integers(0, 12), st.integers(0, 30), st.integers(10, 30))
    return [[draw(count) for _ in range(n_c)] for _ in range(n_r)]


def run(values: Grid, t: int) -> tuple[SuppressedTable, Grid]:
    n_r, n_c = len(values), len(values[0])
    rows, columns = labels(n_r, n_c)
    cells = {(rows[i], columns[j]): values[i][j] for i in range(n_r) for j in range(n_c)}
    return suppress(cells, rows, columns, t), truth(values)


def positions(table: SuppressedTable) -> Iterator[tuple[int, int, Shown]]:
    for i, line in enumerate(table.grid):
        for j, shown in enumerate(line):
            yield i, j, shown


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
@example([[50, 50, 50], [50, 3, 50], [50, 50, 50]])  # one small cell: a rectangle
@example([[40, 0, 0], [0, 0, 0]])  # one count, all else zero
@example([[3, 50, 40]])  # one row: each column total is its cell
def test_attacker_cannot_narrow_a_small_count(values: Grid) -> None:
    t = 10
    table, full = run(values, t)
    assert table.protection == t // 2

    for i, j, shown in positions(table):
        if isinstance(shown, Suppressed):
            if shown.reason is Reason.PRIMARY:
                assert full[i][j] < t
            else:
                assert full[i][j] >= t  # so "x" = "10 or more" is true
        else:
            assert shown == full[i][j]  # published numbers are exact: totals add up
            assert shown >= t  # nothing under the threshold is shown, not even 0

    cap = max(max(line) for line in values) + t - 1
    seen = attacker([list(line) for line in table.grid], t, cap)
    ranges = feasible_ranges(table)
    rows, columns = labels(len(values), len(values[0]))
    names_r: list[str | None] = [*rows, None]
    names_c: list[str | None] = [*columns, None]
    for i, j, shown in positions(table):
        if not isinstance(shown, Suppressed) or shown.reason is not Reason.PRIMARY:
            continue
        found = seen[(i, j)]
        assert full[i][j] in found
        low, high = min(found), max(found)
        # The guarantee: at least protection + 1 values, so both 4 and 5 are possible.
        assert high - low >= table.protection, (i, j, sorted(found))
        assert low <= t // 2 - 1 and high >= t // 2
        # Every whole number in between occurs, and the audit computed exactly this.
        assert found == set(range(low, high + 1))
        assert ranges[(names_r[i], names_c[j])] == Interval(low, high)


@settings(deadline=None)
@given(tables(max_rows=4, max_columns=4))
def test_every_hidden_number_shares_its_lines(values: Grid) -> None:
    """A hidden number alone in its row-line or column-line would be its total minus
    the published rest. Necessary (not sufficient): the attacker test is the real check."""
    table, _ = run(values, 10)
    hidden = {(i, j) for i, j, shown in positions(table) if isinstance(shown, Suppressed)}
    for i, j in hidden:
        assert any((i, k) in hidden for k in range(len(table.grid[0])) if k != j)
        assert any((k, j) in hidden for k in range(len(table.grid)) if k != i)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(max_rows=3, max_columns=3), st.integers(2, 6))
@example([[1, 1]], 2)  # refused: both cells must be 1
@example([[5, 1, 3], [4, 1, 5]], 2)  # refused: the middle column is 1 + 1
@example([[3, 3], [3, 3]], 4)
def test_refused_only_when_hiding_everything_would_not_help(values: Grid, t: int) -> None:
    """With a low threshold the knowledge "x is t or more" can pin a count down even
    when everything is hidden (threshold 2: a row 1, 1 with total "2 or more"). Then,
    and only then, the table is refused; otherwise the guarantee holds."""
    values = [[v % (2 * t + 2) for v in line] for line in values]  # keep the search small
    rows, columns = labels(len(values), len(values[0]))
    cells = {(rows[i], columns[j]): v for i, line in enumerate(values) for j, v in enumerate(line)}
    protection = t // 2
    try:
        table = suppress(cells, rows, columns, t)
    except UnprotectableTable:
        # Rebuild what the most cautious publication would look like and attack it.
        full = truth(values)
        most: list[list[Shown]] = [
            [Suppressed(Reason.PRIMARY if v < t else Reason.SECONDARY, t) for v in line]
            for line in full
        ]
        seen = attacker(most, t, max(max(line) for line in values) + t - 1)
        assert any(
            max(found) - min(found) < protection for (i, j), found in seen.items() if full[i][j] < t
        )
        return
    cap = max(max(line) for line in values) + t - 1
    seen = attacker([list(line) for line in table.grid], t, cap)
    for i, j, shown in positions(table):
        if isinstance(shown, Suppressed) and shown.reason is Reason.PRIMARY:
            assert max(seen[(i, j)]) - min(seen[(i, j)]) >= protection


@given(tables(max_rows=4, max_columns=4))
def test_render_rows_round_trips_what_is_published(values: Grid) -> None:
    table, _ = run(values, 10)
    rendered = render_rows(table)
    assert rendered[0] == ["", *table.columns, "totaal"]
    assert [line[0] for line in rendered[1:]] == [*table.rows, "totaal"]
    markers = {"<10": Reason.PRIMARY, "x": Reason.SECONDARY}
    parsed = [
        [Suppressed(markers[text], 10) if text in markers else int(text) for text in line[1:]]
        for line in rendered[1:]
    ]
    assert parsed == [list(line) for line in table.grid]


def test_the_oracle_sees_an_unprotected_cell() -> None:
    """The attacker must be able to fail: hiding one cell and nothing else is caught."""
    t = 10
    values = [[50, 50], [50, 3]]
    full = truth(values)
    grid: list[list[Shown]] = [list(line) for line in full]
    grid[1][1] = Suppressed(Reason.PRIMARY, t)
    grid[1][2] = 53  # row total shown: 3 = 53 - 50
    seen = attacker(grid, t, 60)
    assert seen[(1, 1)] == {3}


@pytest.mark.parametrize("value", [0, 1, 9])
def test_the_oracle_sees_a_rectangle_protect(value: int) -> None:
    t = 10
    full = truth([[50, 50], [50, value]])
    grid: list[list[Shown]] = [list(line) for line in full]
    for i, j in [(0, 0), (0, 1), (1, 0)]:
        grid[i][j] = Suppressed(Reason.SECONDARY, t)
    grid[1][1] = Suppressed(Reason.PRIMARY, t)
    assert attacker(grid, t, 60)[(1, 1)] == set(range(10))
