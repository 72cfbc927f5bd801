"""An index from object ids (signals, matches, ...) to the audit entries naming them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Derived data: filled here from the entries already in the log, then kept by
vir.store.audit_log with every append. The entries themselves do not change.
"""

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The same rule as vir.audit.chain.AuditEvent.refs; repeated so that this migration does
# not change when the application code does.
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_BATCH = 5000


def upgrade() -> None:
    refs = op.create_table(
        "audit_refs",
        sa.Column("ref", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    )
    connection = op.get_bind()
    query = sa.text("SELECT seq, body FROM audit_entries ORDER BY seq")
    rows = connection.execute(query.execution_options(yield_per=_BATCH))
    pending: list[dict[str, object]] = []
    for seq, body in rows:
        raw = body if isinstance(body, bytes) else str(body).encode("utf-8")
        try:
            objects = json.loads(raw).get("objects") or {}
        except (ValueError, AttributeError):
            continue  # a damaged entry: vir audit verify names it; nothing to index
        for value in sorted({v for v in objects.values() if isinstance(v, str)}):
            if _ID.match(value):
                pending.append({"ref": value, "seq": seq})
        if len(pending) >= _BATCH:
            connection.execute(refs.insert(), pending)
            pending = []
    if pending:
        connection.execute(refs.insert(), pending)


def downgrade() -> None:
    op.drop_table("audit_refs")
