"""``uq_signals_oin_person`` becomes a unique index instead of a table constraint.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02

A rekey's switch (``vir.store.rekey.swap_all``) replaces every stored pseudonym in one
transaction that holds the write lock. On SQLite it drops the indexes on pseudonym
columns first and builds them again after, by sorting, several times faster than
updating their entries row by row. A table's UNIQUE constraint is an index SQLite made
itself (``sqlite_autoindex_signals_N``), which cannot be dropped; a unique index of the
same name, on the same columns, enforces exactly the same and can. PostgreSQL: the
constraint is dropped and the index created (its name is then free again).

SQLite cannot drop a table constraint: the table is rebuilt (alembic's batch mode: a
copy made without it, the old table dropped, the copy renamed), keeping every other
column, constraint, index and foreign key and every row. Dropping the old table
deletes its rows first, and with foreign keys on that cascades to the tables that
reference ``signals`` (``signal_parents``, ``match_members``, ``portal_signals``): their
rows are kept aside meanwhile (the tables emptied, so nothing cascades) and put back, as
0013 does for ``notification_signals``. Some 17 s for 300,000 signals on the 2-core
development machine; the write lock is held meanwhile, as in every migration.
Rows are copied in rowid order, so the rowids of the rebuilt tables may be renumbered
(no gaps) but keep their order; vir never reads a rowid (the rekey walks them within
one pass only).
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

NAME = "uq_signals_oin_person"
COLUMNS = ["oin", "person"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_signals(lambda batch: batch.drop_constraint(NAME, type_="unique"))
    else:
        op.drop_constraint(NAME, "signals", type_="unique")
    op.create_index(NAME, "signals", COLUMNS, unique=True)


def downgrade() -> None:
    op.drop_index(NAME, "signals")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_signals(lambda batch: batch.create_unique_constraint(NAME, COLUMNS))
    else:
        op.create_unique_constraint(NAME, "signals", COLUMNS)


def _rebuild_signals(change: Callable[[BatchOperations], None]) -> None:
    """Rebuild ``signals`` on SQLite with ``change`` made, keeping the rows of the tables
    that reference it aside (dropping the old table would cascade to them)."""
    bind = op.get_bind()
    children = _referencing(bind, "signals")
    for child in children:
        bind.exec_driver_sql(f'CREATE TEMP TABLE "kept_{child}" AS SELECT * FROM "{child}"')
        # Emptied first: the drop then has nothing to cascade to, row by row.
        bind.exec_driver_sql(f'DELETE FROM "{child}"')
    with op.batch_alter_table("signals", recreate="always") as batch:
        change(batch)
    for child in children:
        bind.exec_driver_sql(f'INSERT INTO "{child}" SELECT * FROM "kept_{child}"')
        bind.exec_driver_sql(f'DROP TABLE "kept_{child}"')


def _referencing(bind: sa.Connection, parent: str) -> list[str]:
    """The tables with a foreign key to ``parent`` (SQLite)."""
    tables = bind.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).scalars()
    return [
        table
        for table in tables
        if table != parent
        and any(
            row[2] == parent
            for row in bind.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').all()
        )
    ]
