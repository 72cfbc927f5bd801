"""The delivery outbox (``deliveries``) and organisations' webhooks (``webhooks``).

``enqueue`` runs inside the writer's transaction that inserts notifications
(``vir.store.signals.insert_notifications``): a delivery commits with its notification
or not at all, and is deleted with it (ON DELETE CASCADE). Which channels a
notification gets is decided here, by SQL on the writer's own session (``RULES``):
every process that writes notifications (``vir serve``, the CLI) enqueues alike,
whatever it has configured, and a change (``vir org webhook``) holds for the next
notification of every instance.

A worker (``vir.delivery.worker``) claims due deliveries in a short transaction of its
own (``claim``: on PostgreSQL ``FOR UPDATE SKIP LOCKED``, on SQLite under the one write
lock) and sets a lease on them (``claim``, ``claimed_until``); the claim commits before
anything is sent, so two workers never hold one delivery. It sends outside any
transaction and records the outcome (``finish``) only while its lease holds: a worker
that died, or overran its lease, leaves deliveries that are claimed again (at least
once; receivers deduplicate by the notification id).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Select, Table, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from vir.store import email_outbox
from vir.store.enqueued import Enqueued, Rule
from vir.store.records import StoredNotification
from vir.store.tables import DeliveryRow, NotificationRow, NotificationSignalRow, WebhookRow

DELIVERIES = cast(Table, DeliveryRow.__table__)
WEBHOOKS = cast(Table, WebhookRow.__table__)
_NOTIFICATIONS = cast(Table, NotificationRow.__table__)
_CARRIED = cast(Table, NotificationSignalRow.__table__)

# The states (vir.delivery.channels.State; the store keeps the strings).
PENDING, RETRYING, DELIVERED, DEAD = "pending", "retrying", "delivered", "dead"
STATES = (PENDING, RETRYING, DELIVERED, DEAD)
# The states that do not accumulate: what /metrics counts in the table (``counts``).
NOT_DELIVERED = (PENDING, RETRYING, DEAD)
# Every channel a worker may deliver on (vir.delivery.webhook.NAME, vir.delivery.email.NAME).
CHANNELS = ("webhook", "email")
_OPEN = (PENDING, RETRYING)


def _webhook_rule(session: Session, notifications: Sequence[Enqueued]) -> Collection[str]:
    """Notifications of organisations with a webhook."""
    oins = sorted({n.oin for n in notifications})
    hooked = set(session.scalars(select(WEBHOOKS.c.oin).where(WEBHOOKS.c.oin.in_(oins))))
    return [n.id for n in notifications if n.oin in hooked]


# Channel name -> its rule (vir.delivery.channels).
RULES: dict[str, Rule] = {"webhook": _webhook_rule, "email": email_outbox.wants}


def enqueue(session: Session, notifications: Sequence[Enqueued]) -> int:
    """One pending delivery per notification and channel whose rule picks it, in the
    caller's transaction; returns how many."""
    if not notifications:
        return 0
    by_id = {n.id: n for n in notifications}
    rows = []
    for channel, rule in RULES.items():
        for notification_id in sorted(rule(session, notifications)):
            n = by_id[notification_id]
            rows.append(
                {
                    "notification_id": n.id,
                    "channel": channel,
                    "oin": n.oin,
                    "state": PENDING,
                    "attempts": 0,
                    "created_at": n.created_at,
                    "next_attempt_at": n.created_at,
                    "retry_from": n.created_at,
                }
            )
    if rows:
        session.execute(insert(DELIVERIES), rows)
    return len(rows)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker holds the lease of, with its notification."""

    id: int
    channel: str
    attempts: int
    first_attempt_at: dt.datetime | None
    retry_from: dt.datetime
    claim: str
    notification: StoredNotification
    signal_id: str | None  # the recipient's own signal


_EARLIER = DELIVERIES.alias("earlier")
_EARLIER_N = _NOTIFICATIONS.alias("earlier_notification")
_RECIPIENT = (
    select(_CARRIED.c.signal_id)
    .where(_CARRIED.c.notification_id == _NOTIFICATIONS.c.id, _CARRIED.c.role == "recipient")
    .limit(1)
    .scalar_subquery()
)


def has_due(session: Session, channel: str, now: dt.datetime) -> bool:
    """Whether any delivery of ``channel`` may be due now (a read: an idle worker looks
    without taking SQLite's write lock; ``claim`` decides)."""
    found = session.execute(
        select(DELIVERIES.c.id)
        .where(
            DELIVERIES.c.channel == channel,
            DELIVERIES.c.state.in_(_OPEN),
            DELIVERIES.c.next_attempt_at <= now,
            or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= now),
        )
        .limit(1)
    ).first()
    return found is not None


def claim(
    session: Session,
    channel: str,
    now: dt.datetime,
    lease: dt.timedelta,
    limit: int,
    *,
    ordered: bool = False,
) -> list[Claimed]:
    """Take the lease on up to ``limit`` due deliveries of ``channel``, oldest
    notification first (by ``seq``: per organisation that is position order). Only
    numbered notifications are due: what readers of ``GET /v1/notifications`` can see.
    ``ordered``: an organisation's delivery waits while an earlier one of the same
    channel is still open and not due, or claimed: its events go out in position order
    (one organisation's failing receiver holds back only its own). The caller commits
    before it sends."""
    conditions = [
        DELIVERIES.c.channel == channel,
        DELIVERIES.c.state.in_(_OPEN),
        DELIVERIES.c.next_attempt_at <= now,
        or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until <= now),
        _NOTIFICATIONS.c.position.is_not(None),
    ]
    if ordered:
        conditions.append(
            ~exists().where(
                _EARLIER.c.oin == DELIVERIES.c.oin,
                _EARLIER.c.channel == DELIVERIES.c.channel,
                _EARLIER.c.state.in_(_OPEN),
                _EARLIER.c.id != DELIVERIES.c.id,
                or_(_EARLIER.c.next_attempt_at > now, _EARLIER.c.claimed_until > now),
                _EARLIER_N.c.id == _EARLIER.c.notification_id,
                _EARLIER_N.c.seq < _NOTIFICATIONS.c.seq,
            )
        )
    due = (
        select(DELIVERIES.c.id)
        .join(_NOTIFICATIONS, _NOTIFICATIONS.c.id == DELIVERIES.c.notification_id)
        .where(*conditions)
        .order_by(_NOTIFICATIONS.c.seq, DELIVERIES.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Rows another worker is claiming right now are skipped, not waited for; once
        # its claim commits, their lease keeps them out of this query.
        due = due.with_for_update(of=DELIVERIES, skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        return []
    token = secrets.token_hex(16)
    session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id.in_(ids))
        .values(claim=token, claimed_until=now + lease)
    )
    rows = session.execute(
        select(
            DELIVERIES.c.id.label("delivery_id"),
            DELIVERIES.c.channel,
            DELIVERIES.c.attempts,
            DELIVERIES.c.first_attempt_at,
            DELIVERIES.c.retry_from,
            _NOTIFICATIONS,
            _RECIPIENT.label("signal_id"),
        )
        .join(_NOTIFICATIONS, _NOTIFICATIONS.c.id == DELIVERIES.c.notification_id)
        .where(DELIVERIES.c.id.in_(ids))
        .order_by(_NOTIFICATIONS.c.seq, DELIVERIES.c.id)
    )
    return [
        Claimed(
            id=int(r.delivery_id),
            channel=r.channel,
            attempts=int(r.attempts),
            first_attempt_at=r.first_attempt_at,
            retry_from=r.retry_from,
            claim=token,
            notification=StoredNotification(
                r.id, r.oin, r.position, r.local_ref, r.type, r.match_id, r.created_at, r.payload
            ),
            signal_id=r.signal_id,
        )
        for r in rows
    ]


def finish(
    session: Session,
    delivery_id: int,
    claim_token: str,
    *,
    state: str,
    attempted: bool,
    now: dt.datetime,
    next_attempt_at: dt.datetime | None = None,
    error: str | None = None,
) -> bool:
    """Record what came of a claimed delivery and release its lease; False (nothing
    recorded) when the lease is no longer this worker's (it expired and another worker
    claimed the delivery) or the delivery went (its notification was deleted)."""
    values: dict[str, object] = {"state": state, "claim": None, "claimed_until": None}
    if attempted:
        values.update(
            attempts=DELIVERIES.c.attempts + 1,
            first_attempt_at=func.coalesce(DELIVERIES.c.first_attempt_at, now),
            last_attempt_at=now,
            last_error=error[:16] if error else None,
        )
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.claim == claim_token)
        .values(**values)
    )
    return bool(getattr(result, "rowcount", 0))


def states_of(session: Session, notification_ids: Collection[str]) -> dict[str, dict[str, str]]:
    """Notification id -> {channel: state} for the notifications that have deliveries."""
    found: dict[str, dict[str, str]] = {}
    if not notification_ids:
        return found
    rows = session.execute(
        select(DELIVERIES.c.notification_id, DELIVERIES.c.channel, DELIVERIES.c.state).where(
            DELIVERIES.c.notification_id.in_(sorted(notification_ids))
        )
    )
    for notification_id, channel, state in rows:
        found.setdefault(notification_id, {})[channel] = state
    return found


@dataclass(frozen=True, slots=True)
class Listed:
    """A delivery as an operator lists it: ids, state and a short error code only."""

    id: int
    notification_id: str
    channel: str
    oin: str
    state: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None


def listed(session: Session, state: str | None, limit: int) -> list[Listed]:
    query = select(
        DELIVERIES.c.id,
        DELIVERIES.c.notification_id,
        DELIVERIES.c.channel,
        DELIVERIES.c.oin,
        DELIVERIES.c.state,
        DELIVERIES.c.attempts,
        DELIVERIES.c.next_attempt_at,
        DELIVERIES.c.last_error,
    ).order_by(DELIVERIES.c.id)
    if state is not None:
        query = query.where(DELIVERIES.c.state == state)
    return [Listed(*row) for row in session.execute(query.limit(limit))]


def retry(
    session: Session, now: dt.datetime, *, delivery_id: int | None = None, dead: bool = False
) -> int:
    """Put deliveries back as pending, due now, with a fresh retry window from now: one by id
    (unless delivered), or every dead one. Returns how many."""
    if delivery_id is not None:
        where = and_(DELIVERIES.c.id == delivery_id, DELIVERIES.c.state != DELIVERED)
    elif dead:
        where = DELIVERIES.c.state == DEAD
    else:
        return 0
    result = session.execute(
        update(DELIVERIES)
        .where(where)
        .values(
            state=PENDING,
            next_attempt_at=now,
            retry_from=now,
            claim=None,
            claimed_until=None,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def delivery_state(session: Session, delivery_id: int) -> str | None:
    """The state of one delivery, or None when there is none with this id."""
    state = session.execute(
        select(DELIVERIES.c.state).where(DELIVERIES.c.id == delivery_id)
    ).scalar_one_or_none()
    return None if state is None else str(state)


def counts(session: Session, channels: Sequence[str]) -> dict[tuple[str, str], int]:
    """(channel, state) -> how many deliveries of ``channels`` are pending, retrying or
    dead (``counts_query``)."""
    rows = session.execute(counts_query(channels))
    return {(channel, state): int(n) for channel, state, n in rows}


def counts_query(channels: Sequence[str]) -> Select[str, str, int]:
    """Delivered deliveries are left out: they accumulate until retention removes their
    notification, and counting them would make every scrape cost all of them. The rest
    are ranges of ``ix_deliveries_due`` (channel, state, ...): a scrape costs the open and
    dead deliveries only (``vir_deliveries_delivered_total`` counts deliveries made)."""
    return (
        select(DELIVERIES.c.channel, DELIVERIES.c.state, func.count())
        .where(DELIVERIES.c.channel.in_(channels), DELIVERIES.c.state.in_(NOT_DELIVERED))
        .group_by(DELIVERIES.c.channel, DELIVERIES.c.state)
    )


def dead_between(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Channel -> deliveries that are dead, whose last attempt fell in [start, end)."""
    rows = session.execute(
        select(DELIVERIES.c.channel, func.count())
        .where(
            DELIVERIES.c.state == DEAD,
            DELIVERIES.c.last_attempt_at >= start,
            DELIVERIES.c.last_attempt_at < end,
        )
        .group_by(DELIVERIES.c.channel)
    )
    return {channel: int(n) for channel, n in rows}


@dataclass(frozen=True, slots=True)
class Webhook:
    oin: str
    url: str
    # As stored: sealed (vir.crypto.secretbox), or a plain whsec_ secret written before
    # sealing. Never logged, printed or put in an error.
    secret: str

    def __repr__(self) -> str:
        return f"Webhook(oin={self.oin!r}, url=<hidden>, secret=<hidden>)"


def webhook(session: Session, oin: str) -> Webhook | None:
    row = session.execute(
        select(WEBHOOKS.c.oin, WEBHOOKS.c.url, WEBHOOKS.c.secret).where(WEBHOOKS.c.oin == oin)
    ).first()
    return Webhook(row.oin, row.url, row.secret) if row else None


def set_webhook(session: Session, hook: Webhook, now: dt.datetime) -> None:
    session.execute(delete(WEBHOOKS).where(WEBHOOKS.c.oin == hook.oin))
    session.execute(
        insert(WEBHOOKS).values(oin=hook.oin, url=hook.url, secret=hook.secret, updated_at=now)
    )


def webhooks(session: Session) -> list[Webhook]:
    """Every organisation's webhook, by OIN (``vir outbox seal-secrets``)."""
    rows = session.execute(
        select(WEBHOOKS.c.oin, WEBHOOKS.c.url, WEBHOOKS.c.secret).order_by(WEBHOOKS.c.oin)
    )
    return [Webhook(row.oin, row.url, row.secret) for row in rows]


def replace_secret(session: Session, oin: str, old: str, new: str) -> bool:
    """Store ``new`` as the organisation's secret if it still holds ``old`` (a change
    meanwhile wins); whether it did."""
    result = session.execute(
        WEBHOOKS.update().where(WEBHOOKS.c.oin == oin, WEBHOOKS.c.secret == old).values(secret=new)
    )
    return bool(getattr(result, "rowcount", 0))


def remove_webhook(session: Session, oin: str) -> bool:
    result = session.execute(delete(WEBHOOKS).where(WEBHOOKS.c.oin == oin))
    return bool(getattr(result, "rowcount", 0))
