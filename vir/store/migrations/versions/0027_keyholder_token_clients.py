"""The key holder takes people's access tokens of named OAuth clients only.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04

``keyholder_oidc.client_ids``: the clients (RFC 9068 ``client_id``) whose access tokens
may ask for evaluations on an organisation's account, a JSON list; NULL takes any
client the provider issues tokens of the audience to, as before (vir.keyholder.trust).
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("keyholder_oidc", sa.Column("client_ids", sa.String(2000), nullable=True))


def downgrade() -> None:
    op.drop_column("keyholder_oidc", "client_ids")
