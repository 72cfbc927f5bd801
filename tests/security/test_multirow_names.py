"""vir.store.multirow builds its INSERT from table and column names: vir's own, and
checked to be bare lower-case names, so that no other text becomes SQL."""

from __future__ import annotations

import pytest

from vir.store import multirow


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("signals; DROP TABLE signals", ("id",)),
        ("signals", ("id", "oin) VALUES (1); --")),
        ("Signals", ("id",)),
        ("signals", ("id ",)),
        ("", ("id",)),
    ],
)
def test_a_name_that_is_not_a_bare_name_is_refused(table: str, columns: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="not one of vir's"):
        multirow._statement(table, columns, 1)


def test_the_statement_has_a_placeholder_for_every_value() -> None:
    assert multirow._statement("audit_refs", ("ref", "seq"), 2) == (
        "INSERT INTO audit_refs (ref, seq) VALUES ($1, $2), ($3, $4)"
    )
