"""Statistical disclosure control for the municipal monitor (pure functions, no I/O).

The monitor publishes two-dimensional tables of counts — rows are organisation
categories, columns are months — with row totals, column totals and a grand total.
:func:`suppress` decides which of those numbers may be shown; :func:`render_rows`
turns the result into rows for a CSV file or a PDF table; :func:`feasible_ranges`
is the attacker's audit of a published table.

The rule
--------
* **Primary suppression.** Every number below ``threshold`` (10) is shown as
  ``<10`` — inner cells and totals alike, *including 0*. A true 0 is disclosive
  too ("no school in this region reported anyone in March"), and showing 0 while
  hiding 1..9 would make ``<10`` mean "1..9" and shrink what an attacker has to
  guess; so 0 is treated exactly like 1..9.
* **Secondary (complementary) suppression.** Totals are sums, so hiding one cell
  of a row whose total is shown hides nothing. Further numbers are hidden until
  no combination of the published numbers pins down a primary-suppressed value.
  They are shown as ``x`` (the CBS sign for "geheim", withheld), not as ``<10``:
  they are 10 or more, and ``<10`` would be false. A dash is deliberately not used:
  in Dutch statistics it means "nil".

The guarantee
-------------
The attacker is assumed to know every published number, that every row, column
and the totals row add up, that counts are whole numbers and not negative, that a
``<10`` is one of 0..9 and that an ``x`` is 10 or more. For every number shown as
``<10``, the values the attacker cannot exclude form an interval of width at least
``protection`` (default ``threshold // 2``, i.e. 5): at least six possible values
out of 0..9. Such an interval always contains both 4 and 5, so the attacker
cannot even tell whether the hidden count is below or above half the threshold,
let alone whether it is 0 or 1.

How it is achieved
------------------
The table including its totals is a flow network (a transportation problem):
source → row *i* carries the row total, row *i* → month *j* the cell, month *j* →
sink the column total and sink → source the grand total; "every line adds up" is
flow conservation at each node. The values the attacker cannot exclude for one
cell are the flows that arc can carry in a circulation within the bounds above
(published: exactly its value; ``<10``: 0..9; ``x``: 10 or more). The constraint
matrix of such a network is totally unimodular, so the LP bounds are whole numbers
and every whole number in between is attained: the attacker's interval is computed
exactly by max-flow, with integer arithmetic only.

For each primary cell in turn, :func:`suppress` measures how far its value can be
moved up and down (a max-flow around cycles through the cell, starting at the true
table, which is feasible). While the interval is too narrow it hides the cheapest
cycle of published numbers that widens it: a shortest path in which already
hidden numbers cost nothing and a published number costs its value (the loss of
information, so small cells in the same lines are preferred to large ones and to
totals). Hiding more numbers only widens every interval, so a cell once protected
stays protected. Because cells are protected one after another, a number hidden for
an early cell can turn out to be redundant; a last pass publishes again, largest
first, every hidden number whose release leaves all small counts protected. Before
returning, the table is audited once more from the published numbers alone
(:func:`feasible_ranges`). Every hidden number then shares its row-line and its
column-line with at least one other hidden number (one alone in a line equals its
total minus the rest, so hiding it would protect nothing), but that structural
rule alone is not sufficient, which is why the audit decides.

Out of scope (documented in ``docs/privacy/monitor.md``): an attacker who also
knows the suppression algorithm ("the hidden complement is the smallest cell"),
and differencing between *different* published tables (overlapping periods, or a
sub-count published in another table). Each table is protected on its own; a
report must not publish the same counts in two differently suppressed tables.

Derived measures
----------------
The monitor will add ratios such as a follow-up rate (matches followed up /
matches). Suppression is decided on tables of *counts*; a ratio is then derived
only from published counts (:func:`ratio` gives ``None`` where either count is
hidden), never from the true ones. When the numerator is a subset of the
denominator, its complement (matches *not* followed up) is a count in its own
right and may be small ("11 matches, 91 % followed up" means exactly one was not):
such a measure must be suppressed as counts of every outcome, jointly — which is
for the issue that introduces it, not something :func:`ratio` can check.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

__all__ = [
    "Interval",
    "Position",
    "Reason",
    "Shown",
    "Suppressed",
    "SuppressedTable",
    "UnprotectableTable",
    "feasible_ranges",
    "legend",
    "ratio",
    "render_rows",
    "suppress",
]

DEFAULT_THRESHOLD: Final = 10
SECONDARY_MARKER: Final = "x"


class Reason(enum.StrEnum):
    """Why a number is not shown."""

    PRIMARY = "primary"  # below the threshold
    SECONDARY = "secondary"  # at or above the threshold, hidden to protect another number


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A number that is not shown. It deliberately does not hold the true value."""

    reason: Reason
    threshold: int

    @property
    def marker(self) -> str:
        """``<10`` for a primary suppression, ``x`` for a secondary one."""
        return f"<{self.threshold}" if self.reason is Reason.PRIMARY else SECONDARY_MARKER

    def __str__(self) -> str:
        return self.marker


Shown = int | Suppressed
"""A published number: the count itself, or why it is hidden."""

Position = tuple[str | None, str | None]
"""(row, column) of a number; ``None`` stands for the total: ``(row, None)`` is a row
total, ``(None, column)`` a column total and ``(None, None)`` the grand total."""


@dataclass(frozen=True, slots=True)
class Interval:
    """The values an attacker cannot exclude: ``low..high``; ``high`` None is unbounded."""

    low: int
    high: int | None

    @property
    def width(self) -> int | None:
        return None if self.high is None else self.high - self.low


class UnprotectableTable(ValueError):
    """Even hiding every number of the table leaves a small count too narrowly bounded.

    Never seen with the default threshold; possible with a very low one (with
    threshold 2, a row ``1, 1`` whose total is hidden as "2 or more" forces both
    cells to 1). The caller must aggregate further (merge months or categories)."""


@dataclass(frozen=True, slots=True)
class SuppressedTable:
    """A table as it may be published: every number, or a :class:`Suppressed` marker.

    ``grid`` holds ``len(rows) + 1`` lines of ``len(columns) + 1`` numbers: the last
    number of each line is the row total, the last line holds the column totals and,
    last of all, the grand total.
    """

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    threshold: int
    protection: int
    grid: tuple[tuple[Shown, ...], ...]

    def value(self, row: str | None, column: str | None) -> Shown:
        """The published number at ``(row, column)``; ``None`` addresses a total."""
        i = len(self.rows) if row is None else self.rows.index(row)
        j = len(self.columns) if column is None else self.columns.index(column)
        return self.grid[i][j]

    def cell(self, row: str, column: str) -> Shown:
        return self.value(row, column)

    def row_total(self, row: str) -> Shown:
        return self.value(row, None)

    def column_total(self, column: str) -> Shown:
        return self.value(None, column)

    @property
    def grand_total(self) -> Shown:
        return self.grid[-1][-1]

    def positions(self) -> list[Position]:
        """Every position, row by row, each row ending with its total; the totals row last."""
        labels_r: list[str | None] = [*self.rows, None]
        labels_c: list[str | None] = [*self.columns, None]
        return [(r, c) for r in labels_r for c in labels_c]

    def suppressed(self, reason: Reason | None = None) -> list[Position]:
        """Positions of hidden numbers (of one ``reason``, or all)."""
        return [
            p
            for p in self.positions()
            if isinstance(v := self.value(*p), Suppressed) and reason in (None, v.reason)
        ]


def suppress(
    cells: Mapping[tuple[str, str], int],
    rows: Sequence[str],
    columns: Sequence[str],
    threshold: int = DEFAULT_THRESHOLD,
    *,
    protection: int | None = None,
) -> SuppressedTable:
    """Decide what of a table of counts may be published (see the module docstring).

    ``cells`` maps ``(row, column)`` to a count; a missing cell is 0. ``protection``
    is the least width of the attacker's interval for every ``<threshold`` number,
    ``threshold // 2`` unless given, and at most ``threshold - 1`` (the width of
    0..threshold-1). Raises ``ValueError`` for a malformed table and
    :class:`UnprotectableTable` when no suppression can give the guarantee.
    """
    rows_t, columns_t = tuple(rows), tuple(columns)
    protect = _check_arguments(cells, rows_t, columns_t, threshold, protection)
    n_r, n_c = len(rows_t), len(columns_t)
    values = [[0] * (n_c + 1) for _ in range(n_r + 1)]
    for (r, c), count in cells.items():
        values[rows_t.index(r)][columns_t.index(c)] = count
    for i in range(n_r):
        values[i][n_c] = sum(values[i][:n_c])
    for j in range(n_c + 1):
        values[n_r][j] = sum(values[i][j] for i in range(n_r))

    net = _TableNetwork(n_r, n_c)
    for i in range(n_r + 1):
        for j in range(n_c + 1):
            v = values[i][j]
            net.add(i, j, low=v, high=v, flow=v)  # published until decided otherwise
    status: list[Reason | None] = [None] * len(net.tail)
    for a, v in enumerate(net.flow):
        if v < threshold:
            status[a] = Reason.PRIMARY
            net.low[a], net.high[a] = 0, threshold - 1
    primaries = [a for a, reason in enumerate(status) if reason is Reason.PRIMARY]
    for a in primaries:
        _protect(net, status, a, threshold, protect)
    _release(net, status, primaries, threshold, protect)

    grid = tuple(
        tuple(
            values[i][j] if (s := status[i * (n_c + 1) + j]) is None else Suppressed(s, threshold)
            for j in range(n_c + 1)
        )
        for i in range(n_r + 1)
    )
    table = SuppressedTable(rows_t, columns_t, threshold, protect, grid)
    # Defence in depth: audit what is published, from the published numbers alone.
    ranges = feasible_ranges(table)
    for position in table.suppressed(Reason.PRIMARY):
        width = ranges[position].width
        if width is None or width < protect:  # pragma: no cover - would be a bug above
            raise AssertionError("suppression left a primary cell under-protected")
    return table


def feasible_ranges(table: SuppressedTable) -> dict[Position, Interval]:
    """For every hidden number, the interval of values consistent with what is published.

    This is the attacker's view: it uses only the published numbers, the additive
    equations, non-negativity, ``<threshold`` = 0..threshold-1 and ``x`` = at least
    ``threshold``. Exact (integer max-flow). Raises ``ValueError`` when the
    published numbers contradict each other (no table fits them).
    """
    n_r, n_c, t = len(table.rows), len(table.columns), table.threshold
    net = _TableNetwork(n_r, n_c)
    for i, line in enumerate(table.grid):
        for j, shown in enumerate(line):
            if not isinstance(shown, Suppressed):
                net.add(i, j, low=shown, high=shown, flow=0)
            elif shown.reason is Reason.PRIMARY:
                net.add(i, j, low=0, high=t - 1, flow=0)
            else:
                net.add(i, j, low=t, high=None, flow=0)
    if not net.find_circulation():
        raise ValueError("the published numbers are inconsistent: no table fits them")
    labels_r: list[str | None] = [*table.rows, None]
    labels_c: list[str | None] = [*table.columns, None]
    ranges: dict[Position, Interval] = {}
    for a in range(len(net.tail)):
        if net.low[a] == net.high[a]:
            continue
        f = net.flow[a]
        high = net.high[a]
        up_cap = None if high is None else high - f
        up = net.max_flow(list(net.flow), net.head[a], net.tail[a], up_cap, skip=a)
        down = net.max_flow(list(net.flow), net.tail[a], net.head[a], f - net.low[a], skip=a)
        assert down is not None  # the limit is finite
        i, j = divmod(a, n_c + 1)
        ranges[(labels_r[i], labels_c[j])] = Interval(f - down, None if up is None else f + up)
    return ranges


def render_rows(
    table: SuppressedTable, *, corner: str = "", total_label: str = "totaal"
) -> list[list[str]]:
    """Rows of text for CSV or PDF: a header, one row per category ending with its total,
    and the totals row. Hidden numbers are rendered by their marker (see :func:`legend`)."""
    header = [corner, *table.columns, total_label]
    body = [
        [label, *(str(v) for v in line)]
        for label, line in zip([*table.rows, total_label], table.grid, strict=True)
    ]
    return [header, *body]


def legend(table: SuppressedTable) -> list[str]:
    """The explanation of the markers, in Dutch, for under a published table."""
    t = table.threshold
    return [
        f"<{t}: minder dan {t} (0 tot en met {t - 1}); ook 0 wordt zo weergegeven.",
        f"{SECONDARY_MARKER}: geheim; het getal is {t} of meer en is weggelaten omdat "
        f"anders een getal kleiner dan {t} uit de totalen terug te rekenen zou zijn.",
    ]


def ratio(numerator: Shown, denominator: Shown) -> Fraction | None:
    """A derived measure (such as a follow-up rate) from two *published* counts.

    ``None`` — not shown — where either count is hidden or the denominator is 0.
    Computing from published counts only means the ratio reveals nothing the table
    does not; see "Derived measures" in the module docstring for what it cannot check.
    """
    if isinstance(numerator, Suppressed) or isinstance(denominator, Suppressed):
        return None
    if denominator == 0:
        return None
    return Fraction(numerator, denominator)


def _check_arguments(
    cells: Mapping[tuple[str, str], int],
    rows: tuple[str, ...],
    columns: tuple[str, ...],
    threshold: int,
    protection: int | None,
) -> int:
    if not rows or not columns:
        raise ValueError("a table needs at least one row and one column")
    if len(set(rows)) != len(rows) or len(set(columns)) != len(columns):
        raise ValueError("row and column labels must be unique")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 2:
        raise ValueError("the threshold must be an integer of at least 2")
    protect = threshold // 2 if protection is None else protection
    if not 1 <= protect <= threshold - 1:
        raise ValueError("the protection width must lie between 1 and threshold - 1")
    row_set, column_set = set(rows), set(columns)
    for (r, c), count in cells.items():
        if r not in row_set or c not in column_set:
            raise ValueError("a cell lies outside the given rows and columns")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("counts must be non-negative integers")
    return protect


def _protect(
    net: _TableNetwork, status: list[Reason | None], arc: int, threshold: int, protect: int
) -> None:
    """Hide further numbers until ``arc`` (primary) can move over at least ``protect``.

    Down: a cycle using ``arc`` backwards is a path tail → head in the residual
    network without ``arc``; up: head → tail. Both start from the true table.
    """
    u, v, f = net.tail[arc], net.head[arc], net.flow[arc]
    while True:
        down_flow = list(net.flow)
        down = net.max_flow(down_flow, u, v, min(f, protect), skip=arc)
        assert down is not None  # the limit is finite
        up_flow = list(net.flow)
        up = net.max_flow(up_flow, v, u, min(threshold - 1 - f, protect - down), skip=arc)
        assert up is not None
        if up + down >= protect:
            return
        options: list[tuple[int, list[int]]] = []
        if down < f:
            found = _cheapest_path(net, status, down_flow, u, v, arc, threshold)
            if found is not None:
                options.append(found)
        if up < threshold - 1 - f:
            found = _cheapest_path(net, status, up_flow, v, u, arc, threshold)
            if found is not None:
                options.append(found)
        if not options:
            raise UnprotectableTable(
                "no suppression protects every small count of this table; aggregate further"
            )
        _, hide = min(options)
        for a in hide:
            status[a] = Reason.SECONDARY
            net.low[a], net.high[a] = threshold, None


def _protected(net: _TableNetwork, arc: int, threshold: int, protect: int) -> bool:
    """Whether primary ``arc`` can move over at least ``protect`` values (see ``_protect``)."""
    u, v, f = net.tail[arc], net.head[arc], net.flow[arc]
    down = net.max_flow(list(net.flow), u, v, min(f, protect), skip=arc)
    assert down is not None  # the limit is finite
    if down >= protect:
        return True
    up = net.max_flow(list(net.flow), v, u, min(threshold - 1 - f, protect - down), skip=arc)
    assert up is not None
    return up + down >= protect


def _release(
    net: _TableNetwork,
    status: list[Reason | None],
    primaries: list[int],
    threshold: int,
    protect: int,
) -> None:
    """Publish again every secondary suppression that turned out not to be needed.

    Cells are protected one after another, so a number hidden for an early cell may
    be redundant once later cells are protected. Largest first (the most information
    regained); a number stays published only if every primary cell is still protected.
    """
    changed = True
    while changed:  # releasing one number can make another redundant
        changed = False
        secondaries = sorted(
            (a for a, reason in enumerate(status) if reason is Reason.SECONDARY),
            key=lambda a: (-net.flow[a], a),
        )
        for a in secondaries:
            net.low[a] = net.high[a] = net.flow[a]
            if all(_protected(net, p, threshold, protect) for p in primaries):
                status[a] = None
                changed = True
            else:
                net.low[a], net.high[a] = threshold, None


def _cheapest_path(
    net: _TableNetwork,
    status: list[Reason | None],
    flow: list[int],
    src: int,
    dst: int,
    skip: int,
    threshold: int,
) -> tuple[int, list[int]] | None:
    """The cheapest residual path ``src`` → ``dst`` if published numbers could be hidden.

    A hidden number costs nothing and is usable where its residual capacity (given
    ``flow``) is positive. A published number costs its value: once hidden as ``x``
    it may rise without bound and fall to ``threshold``. Returns (cost, published arcs
    on the path), or None when there is no path at all.
    """
    best = [-1] * net.n_nodes
    best[src] = 0
    back: list[tuple[int, int] | None] = [None] * net.n_nodes  # (arc, previous node)
    heap = [(0, src)]
    done = [False] * net.n_nodes
    while heap:
        cost, x = heapq.heappop(heap)
        if done[x]:
            continue
        done[x] = True
        if x == dst:
            break
        for a, forward in net.moves[x]:
            if a == skip:
                continue
            y = net.head[a] if forward else net.tail[a]
            if status[a] is None:  # published: a candidate for hiding
                if not forward and flow[a] <= threshold:
                    continue
                step = flow[a]
            else:
                cap = net.residual(flow, a, forward)
                if cap is not None and cap <= 0:
                    continue
                step = 0
            if not done[y] and (best[y] < 0 or cost + step < best[y]):
                best[y] = cost + step
                back[y] = (a, x)
                heapq.heappush(heap, (cost + step, y))
    if not done[dst]:
        return None
    hide: list[int] = []
    x = dst
    while x != src:
        entry = back[x]
        assert entry is not None
        a, x = entry
        if status[a] is None:
            hide.append(a)
    return best[dst], sorted(hide)


class _TableNetwork:
    """A (rows + 1) x (columns + 1) table as a flow network; arc ``i * (C + 1) + j``
    is the number at line ``i``, position ``j`` (the last line and position: totals).

    Nodes: 0 the source, 1..R the rows, R+1..R+C the columns, R+C+1 the sink;
    extra nodes may follow for finding a first feasible circulation.
    """

    def __init__(self, n_rows: int, n_columns: int) -> None:
        self.n_rows, self.n_columns = n_rows, n_columns
        self.n_nodes = n_rows + n_columns + 2
        self.tail: list[int] = []
        self.head: list[int] = []
        self.low: list[int] = []
        self.high: list[int | None] = []  # None: no upper bound
        self.flow: list[int] = []
        self.moves: list[list[tuple[int, bool]]] = [[] for _ in range(self.n_nodes)]

    def _endpoints(self, i: int, j: int) -> tuple[int, int]:
        source, sink = 0, self.n_nodes - 1
        row = source if i == self.n_rows else 1 + i
        column = sink if j == self.n_columns else 1 + self.n_rows + j
        if i == self.n_rows and j == self.n_columns:
            return sink, source  # the grand total closes the circulation
        if j == self.n_columns:
            return source, row  # a row total feeds its row
        if i == self.n_rows:
            return column, sink  # a column total drains its column
        return row, column

    def add(self, i: int, j: int, *, low: int, high: int | None, flow: int) -> None:
        tail, head = self._endpoints(i, j)
        self._add_arc(tail, head, low, high, flow)

    def _add_arc(self, tail: int, head: int, low: int, high: int | None, flow: int) -> int:
        a = len(self.tail)
        self.tail.append(tail)
        self.head.append(head)
        self.low.append(low)
        self.high.append(high)
        self.flow.append(flow)
        self.moves[tail].append((a, True))
        self.moves[head].append((a, False))
        return a

    def residual(self, flow: list[int], a: int, forward: bool) -> int | None:
        """How much more (forward) or less (backward) arc ``a`` can carry; None: unbounded."""
        if not forward:
            return flow[a] - self.low[a]
        high = self.high[a]
        return None if high is None else high - flow[a]

    def max_flow(
        self, flow: list[int], src: int, dst: int, limit: int | None, skip: int
    ) -> int | None:
        """Push up to ``limit`` units ``src`` → ``dst`` through ``flow`` (changed in place),
        never over arc ``skip``; the amount pushed, or None when it is unbounded.

        Edmonds-Karp: shortest augmenting paths, so the number of rounds does not
        depend on the capacities.
        """
        total = 0
        while limit is None or total < limit:
            back: list[tuple[int, bool] | None] = [None] * self.n_nodes
            seen = [False] * self.n_nodes
            seen[src] = True
            queue = deque([src])
            while queue and not seen[dst]:
                x = queue.popleft()
                for a, forward in self.moves[x]:
                    if a == skip:
                        continue
                    y = self.head[a] if forward else self.tail[a]
                    if seen[y]:
                        continue
                    cap = self.residual(flow, a, forward)
                    if cap is not None and cap <= 0:
                        continue
                    seen[y] = True
                    back[y] = (a, forward)
                    queue.append(y)
            if not seen[dst]:
                break
            path: list[tuple[int, bool]] = []
            bottleneck = None if limit is None else limit - total
            y = dst
            while y != src:
                step = back[y]
                assert step is not None
                a, forward = step
                path.append(step)
                cap = self.residual(flow, a, forward)
                if cap is not None and (bottleneck is None or cap < bottleneck):
                    bottleneck = cap
                y = self.tail[a] if forward else self.head[a]
            if bottleneck is None:
                return None
            for a, forward in path:
                flow[a] += bottleneck if forward else -bottleneck
            total += bottleneck
        return total

    def find_circulation(self) -> bool:
        """Set ``flow`` to a circulation within the bounds; False when none exists.

        The usual reduction: every arc first carries its lower bound; the imbalance
        this leaves at the nodes is fed from an extra source and drained to an extra
        sink through a max-flow on the remaining capacities.
        """
        n_arcs = len(self.tail)
        excess = [0] * self.n_nodes
        for a in range(n_arcs):
            excess[self.head[a]] += self.low[a]
            excess[self.tail[a]] -= self.low[a]
        extra_source, extra_sink = self.n_nodes, self.n_nodes + 1
        self.n_nodes += 2
        self.moves += [[], []]
        self.flow = list(self.low)
        needed = 0
        for x, e in enumerate(excess):
            if e > 0:
                self._add_arc(extra_source, x, e, e, 0)
                needed += e
            elif e < 0:
                self._add_arc(x, extra_sink, -e, -e, 0)
        # The extra arcs carry 0..e: give them lower bound 0 while searching.
        for a in range(n_arcs, len(self.tail)):
            self.low[a] = 0
        pushed = self.max_flow(self.flow, extra_source, extra_sink, needed, skip=-1)
        ok = pushed == needed
        # Drop the extra arcs and nodes again: the table network is what callers query.
        del self.tail[n_arcs:], self.head[n_arcs:], self.low[n_arcs:], self.high[n_arcs:]
        del self.flow[n_arcs:]
        self.n_nodes -= 2
        del self.moves[self.n_nodes :]
        self.moves = [[(a, fw) for a, fw in m if a < n_arcs] for m in self.moves]
        return ok
