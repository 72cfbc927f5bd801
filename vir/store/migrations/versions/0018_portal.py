"""The portal (issue 18): per-organisation OpenID Connect sign-in, sign-ins under way,
and server-side sessions.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02

``organisation_oidc``: how an organisation's people sign in (``vir org oidc``).
``portal_logins``: the state, nonce and PKCE verifier of a sign-in under way, keyed by a
SHA-256 of the state. ``portal_sessions``: signed-in people, keyed by a SHA-256 of the
session cookie (vir.portal, docs/portal.md).
"""

import sqlalchemy as sa
from alembic import op

WHEN = sa.DateTime(timezone=True)

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organisation_oidc",
        sa.Column(
            "oin",
            sa.String(20),
            sa.ForeignKey("organisations.oin", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("issuer", sa.String(300), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("client_secret", sa.String(400), nullable=False),
        sa.Column("person_claim", sa.String(64), nullable=False),
        sa.Column("role_claim", sa.String(64), nullable=False),
        sa.Column("roles", sa.String(1000), nullable=False),
        sa.Column("acr", sa.String(200), nullable=True),
        sa.Column("organisation_claim", sa.String(64), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "portal_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("verifier", sa.String(128), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("oin", sa.String(20), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("last_seen_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("portal_sessions")
    op.drop_table("portal_logins")
    op.drop_table("organisation_oidc")
