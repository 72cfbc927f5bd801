"""A check of every stored pseudonym: how many are not valid elements, per table and column.

Written for the upgrade that made vir refuse non-canonical ristretto255 encodings
(bit 255 set, ``s >= p``): rows stored before it may hold one. The scan streams each
column in batches, so its memory stays flat whatever the table's size, and it only
ever counts: no value leaves this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from vir.domain.errors import InputError
from vir.store.db import Database
from vir.store.tables import (
    ArchivedSignalRow,
    ExcludedAddressRow,
    MatchRow,
    SignalParentRow,
    SignalRow,
)

# Every column that holds a pseudonym (a person, parent or address element).
Column = InstrumentedAttribute[bytes] | InstrumentedAttribute[bytes | None]
PSEUDONYM_COLUMNS: tuple[Column, ...] = (
    SignalRow.person,
    SignalRow.address,
    SignalParentRow.parent,
    ArchivedSignalRow.person,
    ExcludedAddressRow.address,
    MatchRow.key,
)
BATCH = 10_000

# Called as (table.column, rows checked so far, rows in the column) after each batch.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class ColumnCheck:
    """The outcome for one column: rows holding a value, and how many of them are invalid."""

    table: str
    column: str
    checked: int
    invalid: int

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def check_pseudonyms(
    db: Database,
    is_valid: Callable[[bytes], bool],
    batch: int = BATCH,
    progress: Progress | None = None,
) -> list[ColumnCheck]:
    """Count, per pseudonym column, the stored values ``is_valid`` refuses (NULLs skipped)."""
    if batch < 1:
        raise InputError("batch", "must be at least 1")
    results = []
    for column in PSEUDONYM_COLUMNS:
        table, name = column.class_.__tablename__, column.key
        label = f"{table}.{name}"
        present = column.is_not(None)
        checked = invalid = 0
        with db.read() as session:
            counting = select(func.count()).select_from(column.class_).where(present)
            total = session.scalar(counting) or 0
            if progress is not None:
                progress(label, 0, total)
            # yield_per streams (a server-side cursor on PostgreSQL) in slices of ``batch``.
            rows = session.scalars(select(column).where(present).execution_options(yield_per=batch))
            for part in rows.partitions():
                checked += len(part)
                invalid += sum(1 for v in part if v is not None and not is_valid(bytes(v)))
                if progress is not None:
                    progress(label, checked, total)
        results.append(ColumnCheck(table, name, checked, invalid))
    return results
