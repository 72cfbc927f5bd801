"""A sign-in under way is kept in the browser, not in the database.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05

``portal_logins`` held every sign-in under way for ten minutes, one row for each
``GET /inloggen``: anyone could fill it. The state, nonce and PKCE verifier now travel
in the browser's sign-in cookie, sealed (vir.portal.sessions), and the index keeps only
``portal_used_logins``: a SHA-256 of the state of each sign-in finished in the last ten
minutes, so that a callback is taken once. Sign-ins under way at the upgrade are started
again by the person (their cookie held no sealed sign-in).
"""

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("portal_logins")
    op.create_table(
        "portal_used_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("used_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("portal_used_logins")
    op.create_table(
        "portal_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
