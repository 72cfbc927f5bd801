"""The index's own record of key epochs: ``key_epochs``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

Until now the index read its current epoch from the OPRF key it loaded itself. The
key now lives only at the key holder (docs/trust-model.md), so the index keeps its
own list: which epoch new pseudonyms are stored under (``current``), an epoch being
introduced by a rekey (``incoming``), the one it replaced while its grace period
runs (``previous``), and epochs no longer accepted (``retired``). ``delta`` is the
rekey factor δ from the epoch before (k' = δ·k): it reveals neither key, converts
pseudonyms of one epoch to the other, and is erased when the older epoch retires.
No key material is stored here. Every existing database starts at epoch 1.
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    table = op.create_table(
        "key_epochs",
        sa.Column("epoch", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("delta", sa.LargeBinary(32), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("activated_at", WHEN, nullable=True),
        sa.Column("retire_after", WHEN, nullable=True),
    )
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        table, [{"epoch": 1, "state": "current", "created_at": now, "activated_at": now}]
    )


def downgrade() -> None:
    op.drop_table("key_epochs")
