"""The portal's professional pages (issue 18, part 2): who registered which signal.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02

``portal_signals``: the signals a person registered through the portal, by the person's
stable pseudonymous id (their "Mijn meldingen"); deleted with the signal.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_signals",
        sa.Column(
            "signal_id",
            sa.String(36),
            sa.ForeignKey("signals.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_portal_signals_person", "portal_signals", ["person"])


def downgrade() -> None:
    op.drop_index("ix_portal_signals_person", table_name="portal_signals")
    op.drop_table("portal_signals")
