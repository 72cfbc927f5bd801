"""Offboarding: when an organisation left the index (``vir org remove``).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04

An organisation that leaves has its certificates revoked, its signals withdrawn and
its delivery settings deleted at once; its row stays, a tombstone with ``left_at``
set, while an archived signal of it is kept (the archive names its organisation) or a
certificate of it has not expired (the CRL lists it while it could still be
presented). The lifecycle deletes the tombstone when neither holds any more
(vir.services.offboarding).
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


# Plain ALTER TABLE ... ADD/DROP COLUMN (SQLite 3.35+), as 0012: a batch rebuild of
# ``organisations`` would drop the table that signals and certificates reference.


def upgrade() -> None:
    op.add_column("organisations", sa.Column("left_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("organisations", "left_at")
