"""Signals, their parents, matches, members, notifications and excluded addresses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("oin", sa.String(20), sa.ForeignKey("organisations.oin"), nullable=False),
        sa.Column("local_ref", sa.String(64), nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("person", sa.LargeBinary(32), nullable=False),
        sa.Column("address", sa.LargeBinary(32), nullable=True),
        sa.Column("remove_on", sa.Date, nullable=False),
        sa.Column("professional_name", sa.String(100), nullable=False),
        sa.Column("professional_email", sa.String(254), nullable=True),
        sa.Column("professional_phone", sa.String(32), nullable=True),
        sa.Column("professional_function", sa.String(100), nullable=True),
        sa.Column("content_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("oin", "local_ref", name="uq_signals_oin_local_ref"),
        sa.UniqueConstraint("oin", "person", name="uq_signals_oin_person"),
    )
    op.create_index("ix_signals_person", "signals", ["person"])
    op.create_index("ix_signals_address", "signals", ["address"])
    op.create_table(
        "signal_parents",
        sa.Column("signal_id", sa.String(36), sa.ForeignKey("signals.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("parent", sa.LargeBinary(32), primary_key=True),
    )
    op.create_index("ix_signal_parents_parent", "signal_parents", ["parent"])
    op.create_table(
        "matches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("key", sa.LargeBinary(32), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
    )
    op.create_index("uq_matches_active_key", "matches", ["via", "key"], unique=True,
                    sqlite_where=sa.text("ended_at IS NULL"),
                    postgresql_where=sa.text("ended_at IS NULL"))
    op.create_table(
        "match_members",
        sa.Column("match_id", sa.String(36), sa.ForeignKey("matches.id"), primary_key=True),
        sa.Column("signal_id", sa.String(36), sa.ForeignKey("signals.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("joined_at", WHEN, nullable=False),
    )
    op.create_index("ix_match_members_signal_id", "match_members", ["signal_id"])
    op.create_table(
        "notifications",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.Column("local_ref", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("match_id", sa.String(36), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_notifications_oin_seq", "notifications", ["oin", "seq"])
    op.create_table(
        "excluded_addresses",
        sa.Column("address", sa.LargeBinary(32), primary_key=True),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    for table in ("excluded_addresses", "notifications", "match_members", "matches",
                  "signal_parents", "signals"):
        op.drop_table(table)
