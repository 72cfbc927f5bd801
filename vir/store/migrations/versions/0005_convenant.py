"""The reference of a reporting organisation's written agreement (convenant).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.add_column(sa.Column("convenant", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("convenant")
