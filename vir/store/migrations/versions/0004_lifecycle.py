"""Signal lifecycle and data-subject rights: certificate roles, organisation
coordinators, the information duty, the historical archive and its one-time offers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(
            sa.Column("role", sa.String(24), nullable=False, server_default="system")
        )
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("coordinator_name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("coordinator_email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("coordinator_phone", sa.String(32), nullable=True))
    with op.batch_alter_table("signals") as batch:
        batch.add_column(sa.Column("archive_until", sa.Date, nullable=True))
        batch.add_column(sa.Column("informed_on", sa.Date, nullable=True))
        batch.add_column(sa.Column("informed_who", sa.String(16), nullable=True))
    op.create_index("ix_signals_remove_on", "signals", ["remove_on"])
    op.create_table(
        "archived_signals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("oin", sa.String(20), sa.ForeignKey("organisations.oin"), nullable=False),
        sa.Column("local_ref", sa.String(64), nullable=False),
        sa.Column("person", sa.LargeBinary(32), nullable=False),
        sa.Column("professional_name", sa.String(100), nullable=False),
        sa.Column("professional_email", sa.String(254), nullable=True),
        sa.Column("professional_phone", sa.String(32), nullable=True),
        sa.Column("professional_function", sa.String(100), nullable=True),
        sa.Column("registered_at", WHEN, nullable=False),
        sa.Column("remove_on", sa.Date, nullable=False),
        sa.Column("informed_on", sa.Date, nullable=True),
        sa.Column("informed_who", sa.String(16), nullable=True),
        sa.Column("archived_on", sa.Date, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("destroy_on", sa.Date, nullable=False),
    )
    op.create_index("ix_archived_signals_person", "archived_signals", ["person"])
    op.create_index("ix_archived_signals_destroy_on", "archived_signals", ["destroy_on"])
    op.create_index("ix_archived_signals_oin", "archived_signals", ["oin"])
    op.create_table(
        "archive_offers",
        sa.Column(
            "archived_signal_id",
            sa.String(36),
            sa.ForeignKey("archived_signals.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("oin", sa.String(20), primary_key=True),
        sa.Column("notification_id", sa.String(36), nullable=False),
        sa.Column("offered_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_offers")
    op.drop_table("archived_signals")
    op.drop_index("ix_signals_remove_on", "signals")
    with op.batch_alter_table("signals") as batch:
        batch.drop_column("informed_who")
        batch.drop_column("informed_on")
        batch.drop_column("archive_until")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("coordinator_phone")
        batch.drop_column("coordinator_email")
        batch.drop_column("coordinator_name")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("role")
