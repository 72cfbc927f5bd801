"""Notification cursors per organisation: a position of its own instead of the global seq.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

The cursor of ``GET /v1/notifications`` was the global ``notifications.seq``, so the
gaps between an organisation's cursors told it how many notifications the others
received. Each notification now also has a ``position`` within its organisation,
drawn from ``notification_counters`` (never reused, also after notifications are
deleted), and the cursor is built from that. Existing rows are numbered in ``seq``
order, per organisation.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_counters",
        sa.Column("oin", sa.String(20), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("position", sa.Integer, nullable=True))
    # Window functions exist on SQLite >= 3.25 and every supported PostgreSQL.
    op.execute(
        """
        UPDATE notifications SET position = (
            SELECT numbered.n FROM (
                SELECT seq, ROW_NUMBER() OVER (PARTITION BY oin ORDER BY seq) AS n
                FROM notifications
            ) AS numbered
            WHERE numbered.seq = notifications.seq
        )
        """
    )
    op.execute(
        "INSERT INTO notification_counters (oin, last) "
        "SELECT oin, MAX(position) FROM notifications GROUP BY oin"
    )
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("position", existing_type=sa.Integer, nullable=False)
        batch.drop_index("ix_notifications_oin_seq")
        batch.create_index("uq_notifications_oin_position", ["oin", "position"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("uq_notifications_oin_position")
        batch.create_index("ix_notifications_oin_seq", ["oin", "seq"])
        batch.drop_column("position")
    op.drop_table("notification_counters")
