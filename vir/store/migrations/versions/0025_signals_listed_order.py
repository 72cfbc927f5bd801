"""The portal's lists of an organisation's signals: newest first, a page at a time.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04

The portal's *Mijn meldingen* and *Mijn matches* (vir.portal.pages) list an
organisation's active signals newest first, by (created_at, id), and page through them
by that key (keyset paging). ``ix_signals_oin_created_at_id`` (oin, created_at, id)
gives that order within an organisation without sorting its signals, and the count of
those before a page's first signal as a range of the index. It holds no pseudonym: a
rekey's switch (vir.store.rekey) leaves it as it is.
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

INDEX = "ix_signals_oin_created_at_id"


def upgrade() -> None:
    op.create_index(INDEX, "signals", ["oin", "created_at", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, "signals")
