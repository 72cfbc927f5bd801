"""The municipal follow-up officer (issue 17, part 3).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02

``region_follow_up`` holds, per region, after how many days without confirmed contact
a match is overdue (``vir region follow-up``); a region without a row uses 14 days.
``match_reminders`` holds when a region's follow-up officer last reminded a match's
participants (``match.reminder``), so that a reminder is sent at most once a day per
match and region. ``ix_matches_active_created`` lets the officer's list walk the
active matches oldest first without reading the ended ones.
"""

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "region_follow_up",
        sa.Column("region", sa.String(100), primary_key=True),
        sa.Column("overdue_days", sa.Integer, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "match_reminders",
        sa.Column("match_id", sa.String(36), sa.ForeignKey("matches.id"), primary_key=True),
        sa.Column("region", sa.String(100), primary_key=True),
        sa.Column("sent_at", WHEN, nullable=False),
    )
    op.create_index(
        "ix_matches_active_created",
        "matches",
        ["created_at", "id"],
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_matches_active_created", table_name="matches")
    op.drop_table("match_reminders")
    op.drop_table("region_follow_up")
