"""The lifecycle's order as indexes: signals by ``(remove_on, id)`` (and ``person``),
the archive by ``(destroy_on, id)``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

``vir lifecycle run`` takes the signals whose removal date has come, and the archived
signals whose term has ended, in batches in that order (vir/store/signals.py
``due_for_removal``, ``due_for_destruction``). With an index on the date alone, every
batch sorted all rows due on its first date ("USE TEMP B-TREE FOR RIGHT PART OF ORDER
BY" on SQLite); with the id in the index a batch is a range read. The young person is
in it too: the lifecycle locks a batch's persons before it reads the signals, and finds
them in the index alone. The single-column indexes had no other use (a count of what
is due reads the new ones), so they go.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_signals_remove_on_id_person", "signals", ["remove_on", "id", "person"])
    op.drop_index("ix_signals_remove_on", "signals")
    op.create_index("ix_archived_signals_destroy_on_id", "archived_signals", ["destroy_on", "id"])
    op.drop_index("ix_archived_signals_destroy_on", "archived_signals")


def downgrade() -> None:
    op.create_index("ix_archived_signals_destroy_on", "archived_signals", ["destroy_on"])
    op.drop_index("ix_archived_signals_destroy_on_id", "archived_signals")
    op.create_index("ix_signals_remove_on", "signals", ["remove_on"])
    op.drop_index("ix_signals_remove_on_id_person", "signals")
