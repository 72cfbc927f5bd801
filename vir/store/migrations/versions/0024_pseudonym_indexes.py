"""Fewer index entries on pseudonyms, and none that a rekey's switch must update in place.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03

A rekey's switch (``vir.store.rekey.swap_all``) replaces every stored pseudonym in one
transaction that holds the write lock; on SQLite it drops the indexes on pseudonym
columns first and builds them again after, by sorting. Two things made it slower than
it need be, and every registration paid for the first as well:

- ``signals`` had two indexes on ``person``: ``ix_signals_person`` for the lookups by
  person and the unique ``uq_signals_oin_person`` (oin, person). One unique index on
  (person, oin), ``uq_signals_person_oin``, enforces the same and serves both.
- ``ix_signals_remove_on_id_person`` (the lifecycle's order) held ``person`` so that a
  batch's persons could be read from the index alone; it is the largest index on a
  pseudonym, built again at every switch, for a lookup per expiring row that the
  lifecycle can make in the table. ``ix_signals_remove_on_id`` (remove_on, id) holds no
  pseudonym, and an update of the pseudonyms leaves it as it is.
- ``signal_parents``' primary key (signal_id, parent) held a pseudonym, and SQLite
  cannot drop a primary key: the switch updated it in place, row by row in random
  order. The table has no primary key now but the same rule as a unique index,
  ``uq_signal_parents_parent_signal`` (parent, signal_id), which also serves the
  lookups by parent (so ``ix_signal_parents_parent`` goes), and ``ix_signal_parents_
  signal_id`` for the lookups (and the cascade) by signal, which holds no pseudonym.
  PostgreSQL keeps the NOT NULL of the former key's columns and uses the unique index
  as the table's replica identity.

SQLite cannot drop a primary key: ``signal_parents`` is rebuilt (a copy without it, in
rowid order; the old table dropped, the copy renamed). No table references it, so
nothing cascades. Downgrade restores the former indexes and key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

PARENTS_UNIQUE = "uq_signal_parents_parent_signal"
PARENTS_BY_SIGNAL = "ix_signal_parents_signal_id"
PARENTS_BY_PARENT = "ix_signal_parents_parent"
PERSON_UNIQUE = "uq_signals_person_oin"
PERSON_UNIQUE_BEFORE = "uq_signals_oin_person"
PERSON_INDEX_BEFORE = "ix_signals_person"
REMOVAL = "ix_signals_remove_on_id"
REMOVAL_BEFORE = "ix_signals_remove_on_id_person"


def upgrade() -> None:
    op.drop_index(PERSON_INDEX_BEFORE, "signals")
    op.drop_index(PERSON_UNIQUE_BEFORE, "signals")
    op.create_index(PERSON_UNIQUE, "signals", ["person", "oin"], unique=True)
    op.create_index(REMOVAL, "signals", ["remove_on", "id"])
    op.drop_index(REMOVAL_BEFORE, "signals")

    op.drop_index(PARENTS_BY_PARENT, "signal_parents")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_parents(primary_key=False)
    else:
        op.drop_constraint("signal_parents_pkey", "signal_parents", type_="primary")
    op.create_index(PARENTS_UNIQUE, "signal_parents", ["parent", "signal_id"], unique=True)
    op.create_index(PARENTS_BY_SIGNAL, "signal_parents", ["signal_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE signal_parents REPLICA IDENTITY USING INDEX {PARENTS_UNIQUE}")


def downgrade() -> None:
    op.drop_index(PARENTS_BY_SIGNAL, "signal_parents")
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(PARENTS_UNIQUE, "signal_parents")
        _rebuild_parents(primary_key=True)
    else:
        op.execute("ALTER TABLE signal_parents REPLICA IDENTITY DEFAULT")
        op.drop_index(PARENTS_UNIQUE, "signal_parents")
        op.create_primary_key("signal_parents_pkey", "signal_parents", ["signal_id", "parent"])
    op.create_index(PARENTS_BY_PARENT, "signal_parents", ["parent"])

    op.drop_index(PERSON_UNIQUE, "signals")
    op.create_index(PERSON_UNIQUE_BEFORE, "signals", ["oin", "person"], unique=True)
    op.create_index(PERSON_INDEX_BEFORE, "signals", ["person"])
    op.create_index(REMOVAL_BEFORE, "signals", ["remove_on", "id", "person"])
    op.drop_index(REMOVAL, "signals")


def _rebuild_parents(*, primary_key: bool) -> None:
    """``signal_parents`` on SQLite made again with or without its primary key (no index:
    the caller creates them), every row copied in rowid order."""
    op.create_table(
        "signal_parents_0024",
        sa.Column(
            "signal_id",
            sa.String(36),
            sa.ForeignKey("signals.id", ondelete="CASCADE"),
            nullable=False,
            primary_key=primary_key,
        ),
        sa.Column("parent", sa.LargeBinary(32), nullable=False, primary_key=primary_key),
        sa.Column("parent_next", sa.LargeBinary(32), nullable=True),
    )
    op.execute(
        "INSERT INTO signal_parents_0024 (signal_id, parent, parent_next) "
        "SELECT signal_id, parent, parent_next FROM signal_parents ORDER BY rowid"
    )
    op.drop_table("signal_parents")
    op.rename_table("signal_parents_0024", "signal_parents")
