"""The delivery outbox and organisations' webhooks (issue 16).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

``deliveries`` holds one row per notification and channel (webhook, e-mail), made in
the notification's own transaction and deleted with it (ON DELETE CASCADE, so
retention takes the outbox along). A worker claims due rows with a lease
(``claim``, ``claimed_until``), sends outside any transaction and records the result
(docs/delivery.md). ``webhooks`` holds an organisation's webhook URL and signing
secret (``vir org webhook``).

A later migration that rebuilds ``notifications`` on SQLite (``batch_alter_table``)
must keep ``deliveries`` aside as 0013 keeps ``notification_signals``: dropping the
old table would cascade to them (foreign keys are on).
"""

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column(
            "oin",
            sa.String(20),
            sa.ForeignKey("organisations.oin", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "notification_id",
            sa.String(36),
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("retry_from", WHEN, nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("claimed_until", WHEN, nullable=True),
        sa.Column("first_attempt_at", WHEN, nullable=True),
        sa.Column("last_attempt_at", WHEN, nullable=True),
        sa.Column("last_error", sa.String(16), nullable=True),
        sa.UniqueConstraint(
            "notification_id", "channel", name="uq_deliveries_notification_channel"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deliveries_due", "deliveries", ["channel", "state", "next_attempt_at"])
    op.create_index("ix_deliveries_oin", "deliveries", ["oin", "channel", "state"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_oin", "deliveries")
    op.drop_index("ix_deliveries_due", "deliveries")
    op.drop_table("deliveries")
    op.drop_table("webhooks")
