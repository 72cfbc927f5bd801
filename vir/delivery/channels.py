"""The channel interface: how the delivery worker hands claimed deliveries to a channel.

A *delivery* is one row of the outbox (``deliveries``, ``vir.store.outbox``): one
notification for one channel (``webhook``, ``email``). It is made in the writer's own
transaction, beside the notification, when the channel's enqueue rule says the
notification's organisation gets it (``vir.store.outbox.RULES``: SQL on the writer's
session only, because every writing process enqueues, the CLI as well as ``vir serve``,
whatever it has configured). The worker (``vir.delivery.worker``) later claims due
deliveries of one channel in a short transaction of its own, committed before anything
is sent, calls ``Channel.deliver`` outside any transaction, and records each ``Outcome``.

A channel never sees the database's rows or writes to the outbox itself: it gets
``Due`` records and answers with one ``Outcome`` per delivery. It must not log or raise
with content: an outcome's ``error`` is a short code (an HTTP status, ``timeout``,
``refused``), never a URL, a body, an address or a secret.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class DeliveryState(enum.StrEnum):
    """A delivery's state (``deliveries.state``), as ``GET /v1/notifications`` shows it."""

    PENDING = "pending"  # not tried yet
    RETRYING = "retrying"  # tried, failed, will be tried again at next_attempt_at
    DELIVERED = "delivered"  # the receiver took it (2xx; the mail server accepted it)
    DEAD = "dead"  # given up: a permanent failure, or retried for the channel's whole window


State = DeliveryState


class Result(enum.StrEnum):
    DELIVERED = "delivered"  # done
    RETRY = "retry"  # failed for now: an attempt; tried again (backoff, or at retry_at)
    FAILED = "failed"  # failed for good: an attempt; dead at once
    DEFER = "defer"  # not tried (e.g. waiting for a digest): no attempt; again at retry_at


@dataclass(frozen=True, slots=True)
class Due:
    """One delivery the worker claimed for a channel."""

    id: int  # the delivery's id (deliveries.id): what an Outcome names
    channel: str
    notification_id: str  # stable: the event id receivers deduplicate by
    oin: str  # the organisation the notification is addressed to
    position: int  # its position among the organisation's notifications (the cursor's order)
    type: str  # match.created, match.joined, ...
    local_ref: str  # the organisation's own reference of its signal
    signal_id: str | None  # the recipient's own signal (None if it went meanwhile)
    created_at: dt.datetime
    # The notification exactly as GET /v1/notifications shows it (JSON-ready), without
    # its ``delivery`` state.
    item: Mapping[str, Any]
    attempts: int  # attempts made before this one
    first_attempt_at: dt.datetime | None  # None: this is the first


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    result: Result
    # Short and content-free: "503", "timeout", "refused", "tls", "redirect", "no-address".
    error: str | None = None
    # RETRY: not before this (e.g. a Retry-After); None: the worker's backoff.
    # DEFER: required, when to offer it again.
    retry_at: dt.datetime | None = None


class Channel(Protocol):
    """A way of delivering notifications. ``deliver`` runs outside any transaction, on the
    worker's thread; it may block (network) but should bound its own time (timeouts)."""

    @property
    def name(self) -> str:
        """The channel's name as stored in ``deliveries.channel`` (≤ 16 characters)."""
        ...

    @property
    def give_up_after(self) -> dt.timedelta:
        """A delivery still failing this long after its first attempt is dead."""
        ...

    @property
    def batch(self) -> int:
        """How many due deliveries the worker claims for one ``deliver`` call."""
        ...

    def deliver(self, due: Sequence[Due], now: dt.datetime) -> Sequence[Outcome]:
        """Try each delivery; one Outcome per ``Due`` (a missing one counts as RETRY)."""
        ...
