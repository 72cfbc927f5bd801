"""The key holder accepts the access tokens of people signed in to the portal (issue 18).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-02

``keyholder_oidc`` (in the key holder's database; empty in the index's): per
organisation, the OpenID provider whose RFC 9068 access tokens may ask for evaluations
on its account, the audience such a token must name, the acr it must carry and the
claim that must equal the OIN (``vir keyholder oidc``, vir.keyholder.trust).
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyholder_oidc",
        sa.Column(
            "oin",
            sa.String(20),
            sa.ForeignKey("organisations.oin", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("audience", sa.String(200), nullable=False),
        sa.Column("acr", sa.String(200), nullable=True),
        sa.Column("organisation_claim", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_keyholder_oidc_issuer", "keyholder_oidc", ["issuer"])


def downgrade() -> None:
    op.drop_index("ix_keyholder_oidc_issuer", table_name="keyholder_oidc")
    op.drop_table("keyholder_oidc")
