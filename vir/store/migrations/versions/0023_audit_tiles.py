"""Merkle tiles of the audit log: proofs read O(log n) hashes, not the whole log.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02

``audit_tiles``: the tree's node hashes, 256 to a tile (vir.store.tiles). Empty after
the upgrade: the next checkpoint (or the first proof asked for) fills it from the
entries, in batches.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_tiles",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_tiles")
