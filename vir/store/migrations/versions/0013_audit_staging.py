"""Staged audit events and notifications numbered by the integrator.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Writers no longer take one database-wide lock (docs/concurrency.md). A write
transaction stages its audit events in ``audit_staged`` (committed with the change),
and one integrator moves them into the hash chain in batches, assigning ``seq``. It
also gives each new notification its ``position`` among its organisation's own: a
notification is stored with none (NULL) and readers see it once it has one, so a
cursor never passes a notification that commits late.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_staged",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("occurred_at", sa.String(32), nullable=False),
        sa.Column("organisation", sa.String(20), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("refs", sa.Text, nullable=False),
        sa.Column("staged_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    _rebuild_notifications(nullable=True)
    op.create_index(
        "ix_notifications_unnumbered",
        "notifications",
        ["seq"],
        sqlite_where=sa.text("position IS NULL"),
        postgresql_where=sa.text("position IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_unnumbered", "notifications")
    _rebuild_notifications(nullable=False)
    op.drop_table("audit_staged")


def _rebuild_notifications(*, nullable: bool) -> None:
    """``notifications.position`` NULL or not. SQLite rebuilds the table for it, and
    dropping the old table would cascade to ``notification_signals`` (foreign keys are
    on): the links are kept aside meanwhile and put back."""
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        bind.exec_driver_sql("CREATE TEMP TABLE kept_links AS SELECT * FROM notification_signals")
    with op.batch_alter_table(
        "notifications", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.alter_column("position", existing_type=sa.Integer, nullable=nullable)
    if sqlite:
        bind.exec_driver_sql("DELETE FROM notification_signals")
        bind.exec_driver_sql("INSERT INTO notification_signals SELECT * FROM kept_links")
        bind.exec_driver_sql("DROP TABLE kept_links")
