"""Every stored signal removed at most two years after it was made.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-04

Before stop 42 a reporter's new removal date (``PATCH remove_on``, and the portal's
form) was held to two years from the day of the change, not from the day the signal
was made (Jeugdwet ch. 7 §1: at most two years after it was made), so a signal could
be kept longer by moving its date on. The rule now holds for every change
(vir.domain.intake.removal_date); this brings the signals stored before it within it:
a ``remove_on`` later than two years after ``created_at`` (29 February becomes 28
February, as ``vir.domain.signals.add_years``) is lowered to that day, or to
``archive_until`` when that comes first. Nothing is raised. A signal whose new date
has passed is removed by the next lifecycle run, as any due signal is.

Walked in id order, a batch at a time (flat memory). Not undone by a downgrade: the
dates it lowered were not allowed.
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

BATCH = 5000
SIGNALS = sa.table(
    "signals",
    sa.column("id", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("remove_on", sa.Date),
    sa.column("archive_until", sa.Date),
)


def _two_years_after(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 2)
    except ValueError:  # 29 February -> 28 February
        return day.replace(year=day.year + 2, day=28)


def upgrade() -> None:
    connection = op.get_bind()
    after = ""
    while True:
        rows = connection.execute(
            sa.select(
                SIGNALS.c.id, SIGNALS.c.created_at, SIGNALS.c.remove_on, SIGNALS.c.archive_until
            )
            .where(SIGNALS.c.id > after)
            .order_by(SIGNALS.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        lowered = []
        for row in rows:
            latest = _two_years_after(row.created_at.date())
            if row.archive_until is not None:
                latest = min(latest, row.archive_until)
            if row.remove_on > latest:
                lowered.append({"signal": row.id, "latest": latest})
        if lowered:
            connection.execute(
                sa.update(SIGNALS)
                .where(SIGNALS.c.id == sa.bindparam("signal"))
                .values(remove_on=sa.bindparam("latest")),
                lowered,
            )


def downgrade() -> None:
    pass
