"""What the outbox's enqueue rules read of a new notification (``vir.store.outbox``).

Its own module so that a channel's rule module (``vir.store.email_outbox``) and the
outbox, which imports the rules, need not import each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from sqlalchemy.orm import Session


class Enqueued(Protocol):
    """A new notification (``vir.store.signals.NewNotification`` is one)."""

    @property
    def id(self) -> str: ...

    @property
    def oin(self) -> str: ...

    @property
    def recipient(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def created_at(self) -> dt.datetime: ...


# A channel's enqueue rule: of these notifications, the ids that get the channel. SQL on
# the writer's session only: no settings, no network.
Rule = Callable[[Session, Sequence[Enqueued]], Collection[str]]
