"""Notifications live no longer than the signals they carry: ``notification_signals``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Until now no notification was ever deleted, so a reporter's name, e-mail and phone
stayed in other organisations' notifications after the signal was withdrawn, erased
or archived. ``notification_signals`` links each notification to the signals it
carries: the recipient's own (``recipient``), the active signals whose reporters its
payload shows (``participant``), and for an archive offer the archived signals it
offered (``archived``). A notification is deleted when any of them ends
(vir.services.removal; docs/matching.md, Retention).

Existing notifications are linked as well as the stored rows allow:

* the recipient: the active signal with the notification's ``(oin, local_ref)``,
  registered no later than the notification (a ``local_ref`` registered again after
  a withdrawal is another signal);
* a participant: the active signal of the participant's organisation registered at
  its ``since`` (the signal's own registration time, to the microsecond); should
  several qualify, those whose professional matches the payload, else all of them
  (a link too many deletes a notification early; a link too few keeps contact
  details too long);
* an archive offer: the archived signals ``archive_offers`` records for it.

A notification that cannot be fully accounted for (its recipient's signal, or one it
shows, is no longer held) already outlived what it carries: it gets the links found
but no recipient link, and the next ``vir lifecycle run`` deletes it (its sweep
deletes every notification without one). Nothing is deleted here.

On SQLite the notifications table is rebuilt with AUTOINCREMENT: without it a new
row takes the ``seq`` of deleted newest rows, and ``seq`` must keep growing in commit
order (the legacy cursors, vir.store.db). PostgreSQL sequences never go back.

A downgrade drops the links (and AUTOINCREMENT); notifications deleted meanwhile do
not come back.
"""

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 1000
WHEN = sa.DateTime(timezone=True)
RECIPIENT, PARTICIPANT, ARCHIVED = "recipient", "participant", "archived"
HISTORICAL = "match.historical"

notifications = sa.table(
    "notifications",
    sa.column("seq", sa.Integer),
    sa.column("id", sa.String(36)),
    sa.column("oin", sa.String(20)),
    sa.column("local_ref", sa.String(64)),
    sa.column("type", sa.String(32)),
    sa.column("created_at", WHEN),
    sa.column("payload", sa.Text),
)
signals = sa.table(
    "signals",
    sa.column("id", sa.String(36)),
    sa.column("oin", sa.String(20)),
    sa.column("local_ref", sa.String(64)),
    sa.column("created_at", WHEN),
    sa.column("professional_name", sa.String(100)),
    sa.column("professional_email", sa.String(254)),
    sa.column("professional_phone", sa.String(32)),
)
offers = sa.table(
    "archive_offers",
    sa.column("archived_signal_id", sa.String(36)),
    sa.column("notification_id", sa.String(36)),
)
links = sa.table(
    "notification_signals",
    sa.column("notification_id", sa.String(36)),
    sa.column("signal_id", sa.String(36)),
    sa.column("role", sa.String(12)),
)


def utc(moment: dt.datetime) -> dt.datetime:
    """Aware UTC, whichever way the database returned it (SQLite: naive UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def parse_since(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return utc(dt.datetime.fromisoformat(text))
    except ValueError:
        return None


def participants(payload: str) -> list[dict[str, Any]] | None:
    """The participants a stored payload shows, or None when it cannot be read."""
    try:
        view: Any = json.loads(payload)
    except ValueError:
        return None
    found = view.get("participants") if isinstance(view, dict) else None
    if not isinstance(found, list) or not all(isinstance(p, dict) for p in found):
        return None
    return found


def wanted(participant: dict[str, Any]) -> tuple[str, dt.datetime] | None:
    """(organisation OIN, registration time) of one participant, if readable."""
    organisation = participant.get("organisation")
    oin = organisation.get("oin") if isinstance(organisation, dict) else None
    since = parse_since(participant.get("since"))
    return (oin, since) if isinstance(oin, str) and since is not None else None


def same_professional(row: Any, participant: dict[str, Any]) -> bool:
    shown = participant.get("professional")
    if not isinstance(shown, dict):
        return False
    return (row.professional_name, row.professional_email, row.professional_phone) == (
        shown.get("name"),
        shown.get("email"),
        shown.get("phone"),
    )


def registered_at(bind: sa.Connection, keys: Iterable[tuple[str, dt.datetime]]) -> dict[Any, Any]:
    """Active signals by (oin, registration time), for the keys asked."""
    found: dict[tuple[str, dt.datetime], list[Any]] = {}
    keys = sorted(set(keys))
    for start in range(0, len(keys), 200):
        chunk = keys[start : start + 200]
        rows = bind.execute(
            sa.select(signals).where(sa.tuple_(signals.c.oin, signals.c.created_at).in_(chunk))
        )
        for row in rows:
            found.setdefault((row.oin, utc(row.created_at)), []).append(row)
    return found


def link_batch(bind: sa.Connection, batch: list[Any]) -> None:
    """Link one batch of notifications (see the module docstring)."""
    shown = {n.id: participants(n.payload) for n in batch if n.type != HISTORICAL}
    asked = [key for ps in shown.values() for p in ps or [] if (key := wanted(p)) is not None]
    candidates = registered_at(bind, asked)
    refs = sorted({(n.oin, n.local_ref) for n in batch})
    recipients: dict[tuple[str, str], Any] = {}
    for start in range(0, len(refs), 200):
        chunk = refs[start : start + 200]
        for row in bind.execute(
            sa.select(signals).where(sa.tuple_(signals.c.oin, signals.c.local_ref).in_(chunk))
        ):
            recipients[row.oin, row.local_ref] = row
    offered: dict[str, list[str]] = {}
    historical = [n.id for n in batch if n.type == HISTORICAL]
    for start in range(0, len(historical), 200):
        chunk = historical[start : start + 200]
        for notification_id, archived_id in bind.execute(
            sa.select(offers.c.notification_id, offers.c.archived_signal_id).where(
                offers.c.notification_id.in_(chunk)
            )
        ):
            offered.setdefault(notification_id, []).append(archived_id)

    made: list[dict[str, str]] = []
    for n in batch:
        found: dict[str, str] = {}
        complete = True
        recipient = recipients.get((n.oin, n.local_ref))
        if recipient is None or utc(recipient.created_at) > utc(n.created_at):
            complete, recipient = False, None
        if n.type == HISTORICAL:
            archived = offered.get(n.id, [])
            shows = participants(n.payload)
            found |= {a: ARCHIVED for a in archived}
            complete = complete and shows is not None and len(shows) == len(set(archived))
        else:
            shows = shown[n.id]
            if shows is None:
                complete = False
            for p in shows or []:
                key = wanted(p)
                rows = candidates.get(key, []) if key is not None else []
                exact = [r for r in rows if same_professional(r, p)] or rows
                if not exact:
                    complete = False
                found |= {r.id: PARTICIPANT for r in exact}
        if recipient is not None:
            found.pop(recipient.id, None)
            if complete:
                found[recipient.id] = RECIPIENT
        made += [
            {"notification_id": n.id, "signal_id": s, "role": role}
            for s, role in sorted(found.items())
        ]
    if made:
        bind.execute(links.insert(), made)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Before the link table exists: the rebuild drops the old table, and with
        # foreign keys on that would cascade to rows referencing it.
        with op.batch_alter_table(
            "notifications", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    op.create_table(
        "notification_signals",
        sa.Column(
            "notification_id",
            sa.String(36),
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("signal_id", sa.String(36), primary_key=True),
        sa.Column("role", sa.String(12), nullable=False),
    )
    op.create_index("ix_notification_signals_signal_id", "notification_signals", ["signal_id"])
    # Found by (oin, created_at) below; dropped again at the end.
    op.create_index("tmp_signals_oin_created_at", "signals", ["oin", "created_at"])
    last = 0
    while True:
        batch = bind.execute(
            sa.select(notifications)
            .where(notifications.c.seq > last)
            .order_by(notifications.c.seq)
            .limit(BATCH)
        ).all()
        if not batch:
            break
        link_batch(bind, list(batch))
        last = batch[-1].seq
    op.drop_index("tmp_signals_oin_created_at", "signals")


def downgrade() -> None:
    op.drop_index("ix_notification_signals_signal_id", "notification_signals")
    op.drop_table("notification_signals")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "notifications", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
