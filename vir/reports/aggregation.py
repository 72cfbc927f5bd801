"""How coarse the municipal monitor's tables are: periods and category groups (pure).

Split by sixteen categories and by month, nearly every count of a municipality is
below the threshold and the monitor says nothing. So the counts are aggregated first —
months into quarters or years (the columns), categories into four groups (the rows) —
and each aggregated table is then suppressed by
:func:`vir.reports.suppression.suppress`, whose rules are untouched: aggregation only
adds up counts before the suppression sees them.

:func:`choose` picks one level for the whole report (every measure alike). Asked for
``auto``, it tries the levels of :data:`LEVELS` finest first and takes the first at
which at least :data:`PUBLISHABLE_TARGET` of the published numbers (cells and totals of
every measure together) are shown; when none reaches it, the level that shows the most.
A fixed granularity or grouping restricts the levels tried.

Periods are calendar quarters (``2026-Q1``) and years (``2026``); a report's period need
not start or end on their bounds, so the first and last column may cover part of one.

Privacy. Each report publishes one table per measure, at one level: no counts appear
twice in differently suppressed tables. Which level ``auto`` took says only that a finer
one had too many small counts. Publishing the *same* period at several levels (asking
for months and then for years) is differencing between tables, which the suppression
does not cover (``vir.reports.suppression``, "Out of scope").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final, Literal

from vir.domain.organisations import Category
from vir.reports.suppression import SuppressedTable, suppress

__all__ = [
    "CATEGORY_GROUPS",
    "GRANULARITIES",
    "GROUPINGS",
    "LEVELS",
    "PUBLISHABLE_TARGET",
    "Granularity",
    "Grouping",
    "Level",
    "aggregate",
    "choose",
    "period_of",
]

Granularity = Literal["month", "quarter", "year"]
Grouping = Literal["categories", "groups"]
GRANULARITIES: Final[tuple[Granularity, ...]] = ("month", "quarter", "year")
GROUPINGS: Final[tuple[Grouping, ...]] = ("categories", "groups")

# At least this share of the published numbers shown, for auto to stop refining.
PUBLISHABLE_TARGET: Final = Fraction(7, 10)

# Groups of reporting categories, in the order the monitor lists them.
CATEGORY_GROUPS: Final[Mapping[Category, str]] = {
    Category.EDUCATION: "schooling",
    Category.LEERPLICHT_RMC: "schooling",
    Category.GP: "care",
    Category.JGZ: "care",
    Category.GGZ: "care",
    Category.ADDICTION_CARE: "care",
    Category.DISABILITY_CARE: "care",
    Category.HOSPITAL_EMERGENCY: "care",
    Category.YOUTH_CARE: "youth_and_safety",
    Category.VEILIG_THUIS: "youth_and_safety",
    Category.RAAD_KINDERBESCHERMING: "youth_and_safety",
    Category.HALT: "youth_and_safety",
    Category.POLICE: "youth_and_safety",
    Category.WMO_PROVIDER: "support",
    Category.CREDIT_BANK: "support",
    Category.CHILDCARE: "schooling",
    Category.MIDWIFERY: "care",
    Category.PROBATION: "youth_and_safety",
    Category.SOCIAL_WORK: "support",
    Category.YOUTH_WELFARE: "support",
    Category.NEIGHBOURHOOD_TEAM: "support",
}

# The levels auto tries, finest first: categories are kept before months are.
LEVELS: Final[tuple[tuple[Granularity, Grouping], ...]] = (
    ("month", "categories"),
    ("quarter", "categories"),
    ("month", "groups"),
    ("quarter", "groups"),
    ("year", "categories"),
    ("year", "groups"),
)


def period_of(month: str, granularity: Granularity) -> str:
    """The period ``YYYY-MM`` falls in: itself, ``YYYY-Qn`` or ``YYYY``."""
    year, number = month.split("-")
    if granularity == "month":
        return month
    if granularity == "quarter":
        return f"{year}-Q{(int(number) - 1) // 3 + 1}"
    return year


def _row_of(category: str, grouping: Grouping) -> str:
    return category if grouping == "categories" else CATEGORY_GROUPS[Category(category)]


def _ordered(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def aggregate(
    cells: Mapping[tuple[str, str], int],
    categories: Sequence[str],
    months: Sequence[str],
    granularity: Granularity,
    grouping: Grouping,
) -> tuple[Counter[tuple[str, str]], list[str], list[str]]:
    """Counts per (category, month) summed per (row, period): the cells, rows and columns."""
    rows = _ordered([_row_of(c, grouping) for c in categories])
    if grouping == "groups":
        rows.sort(key=list(dict.fromkeys(CATEGORY_GROUPS.values())).index)
    columns = _ordered([period_of(m, granularity) for m in months])
    out: Counter[tuple[str, str]] = Counter()
    for (category, month), count in cells.items():
        out[(_row_of(category, grouping), period_of(month, granularity))] += count
    return out, rows, columns


@dataclass(frozen=True, slots=True)
class Level:
    """The monitor's tables at one level, suppressed, and how much of them is hidden."""

    granularity: Granularity
    grouping: Grouping
    tables: Mapping[str, SuppressedTable]

    @property
    def hidden(self) -> int:
        """Published numbers (cells and totals, every measure) shown as ``<10`` or ``x``."""
        return sum(len(t.suppressed()) for t in self.tables.values())

    @property
    def numbers(self) -> int:
        """Published numbers, cells and totals, of every measure."""
        return sum(len(t.positions()) for t in self.tables.values())

    @property
    def shown(self) -> Fraction:
        return Fraction(self.numbers - self.hidden, self.numbers) if self.numbers else Fraction(0)


def choose(
    cells: Mapping[str, Mapping[tuple[str, str], int]],
    categories: Sequence[str],
    months: Sequence[str],
    granularity: Granularity | Literal["auto"] = "auto",
    grouping: Grouping | Literal["auto"] = "auto",
    *,
    target: Fraction = PUBLISHABLE_TARGET,
) -> Level:
    """The level for a report with counts ``cells`` per measure (see the module docstring)."""
    if granularity != "auto" and granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES} or auto")
    if grouping != "auto" and grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS} or auto")
    best: Level | None = None
    for period, rows in LEVELS:
        if granularity not in ("auto", period) or grouping not in ("auto", rows):
            continue
        tables = {}
        for measure, counts in cells.items():
            summed, row_labels, columns = aggregate(counts, categories, months, period, rows)
            tables[measure] = suppress(dict(summed), row_labels, columns)
        level = Level(period, rows, tables)
        if level.shown >= target:
            return level
        if best is None or level.shown > best.shown:
            best = level
    assert best is not None  # every fixed choice is one of LEVELS
    return best
