"""Many rows in one INSERT on PostgreSQL, sent to psycopg itself.

psycopg's ``executemany`` sends one statement a row, and SQLAlchemy's statement and
type machinery costs several times more a row than the insert does. The audit log's
staging and the last signals of a registration batch insert here instead: one
statement for up to ``ROWS_PER_STATEMENT`` rows, with the server's own placeholders
(``$1``, ``$2``, ...; psycopg's ``%s`` would be parsed again on every call), each row a
plain tuple in the order of the columns. Table and column names are vir's own, never
input.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

ROWS_PER_STATEMENT = 1000
_NAME = re.compile(r"[a-z_]+")


def insert(
    connection: Connection, table: str, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` into ``table`` in the transaction on ``connection`` (PostgreSQL)."""
    from psycopg import RawCursor

    driver: Any = connection.connection.driver_connection  # in the same transaction
    with RawCursor(driver) as raw:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            some = rows[start : start + ROWS_PER_STATEMENT]
            raw.execute(_statement(table, columns, len(some)), [v for row in some for v in row])


@functools.lru_cache(maxsize=128)
def _statement(table: str, columns: tuple[str, ...], rows: int) -> str:
    """The insert of ``rows`` rows."""
    if not all(_NAME.fullmatch(name) for name in (table, *columns)):
        raise ValueError("a table or column name that is not one of vir's")
    width = len(columns)
    values = (
        "(" + ", ".join(f"${row * width + column}" for column in range(1, width + 1)) + ")"
        for row in range(rows)
    )
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608 (names checked)
    return head + ", ".join(values)
