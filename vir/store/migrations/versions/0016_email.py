"""Content-free e-mail to the professional (issue 16): per-organisation settings and the
digest window per address.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

``organisation_email`` holds whether an organisation's professionals get e-mail (opt-in:
no row, no e-mail) and its language (``vir org email``). ``email_digests`` holds, per
professional address, when the last e-mail went out, keyed by a SHA-256 of the address
(no address in clear); rows whose window is over are deleted as the channel goes
(vir.delivery.email, docs/delivery.md "E-mail").
"""

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisation_email",
        sa.Column(
            "oin",
            sa.String(20),
            sa.ForeignKey("organisations.oin", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "email_digests",
        sa.Column("address_hash", sa.String(64), primary_key=True),
        sa.Column("last_sent_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("email_digests")
    op.drop_table("organisation_email")
