"""Shared rate-limit buckets, and refused requests counted per minute before they are audited.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

``rate_limits`` holds one token bucket per (kind, organisation), read and updated in
the write transaction of the action it limits, so the limits hold across app
instances. ``refusal_counts`` counts refused requests per minute and key; the
counts go to the audit log as one entry per key and minute instead of one per request.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("kind", sa.String(24), primary_key=True),
        sa.Column("oin", sa.String(20), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "refusal_counts",
        sa.Column("minute", sa.String(17), primary_key=True),
        sa.Column("reason", sa.String(64), primary_key=True),
        sa.Column("endpoint", sa.String(128), primary_key=True),
        sa.Column("organisation", sa.String(20), primary_key=True),
        sa.Column("certificate", sa.String(64), primary_key=True),
        sa.Column("network", sa.String(48), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("audited", sa.Integer, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refusal_counts")
    op.drop_table("rate_limits")
