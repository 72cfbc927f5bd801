"""docs/privacy/README.md's data inventory lists every table and column vir declares,
with what it holds, its retention and its legal basis: a new column without an
inventory row fails here, and so does a row for a column that no longer exists."""

from __future__ import annotations

import re
from pathlib import Path

from vir.store.tables import Base

INVENTORY = Path(__file__).resolve().parents[2] / "docs" / "privacy" / "README.md"
HEADING = "## Data inventory"
# | `table` | `column` | personal data | retention | legal basis |
ROW = re.compile(r"^\| `([a-z_]+)` \| `([a-z_]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|$")


def inventory() -> dict[tuple[str, str], tuple[str, str, str]]:
    text = INVENTORY.read_text(encoding="utf-8")
    section = text[text.index(HEADING) :].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            table, column, personal, retention, basis = (g.strip() for g in match.groups())
            assert (table, column) not in rows, f"{table}.{column} is listed twice"
            rows[(table, column)] = (personal, retention, basis)
    return rows


def test_every_declared_column_is_in_the_inventory_and_nothing_else() -> None:
    declared = {(t.name, c.name) for t in Base.metadata.tables.values() for c in t.columns}
    listed = set(inventory())
    assert sorted(declared - listed) == [], "columns missing from the data inventory"
    assert sorted(listed - declared) == [], "the inventory lists columns that do not exist"


def test_every_row_says_what_it_holds_how_long_and_why() -> None:
    for (table, column), (personal, retention, basis) in inventory().items():
        assert personal and retention and basis, f"{table}.{column} has an empty cell"
