"""The ``key_epochs`` table: which key epoch the stored pseudonyms are in, and the rest.

One row per epoch the index has known. ``delta`` on the row of epoch ``e`` is δₑ, the
factor from epoch ``e - 1`` (kₑ = δₑ·kₑ₋₁); it is kept only while epoch ``e - 1`` is
still accepted, and erased when that one retires. Every change is made inside a
write transaction (``Database.write``), so a writer reads the epochs, converts
pseudonyms and stores them without an epoch switch in between.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from vir.store.tables import KeyEpochRow, utc
from vir.store.write_group import FirstRead, first_read

EPOCHS = cast(Table, KeyEpochRow.__table__)


class EpochState(enum.StrEnum):
    CURRENT = "current"  # stored pseudonyms are in this epoch
    INCOMING = "incoming"  # a rekey to this epoch has started; accepted, converted down
    PREVIOUS = "previous"  # replaced by a rekey; accepted, converted up, until retire_after
    RETIRED = "retired"  # no longer accepted since retire_after; δ erased


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """A row of ``key_epochs``; ``delta`` (δ from the epoch before) is not in the repr.
    ``retire_after``: a previous epoch's end of grace; a retired one's moment of
    retirement (``retire``)."""

    epoch: int
    state: EpochState
    delta: bytes | None = field(repr=False)
    created_at: dt.datetime
    activated_at: dt.datetime | None = None
    retire_after: dt.datetime | None = None


_ALL = select(EPOCHS).order_by(EPOCHS.c.epoch)
# The same read, sent with a writer's BEGIN on PostgreSQL (``Database.write(first=...)``):
# the epochs change only under the write lock taken exclusively, which a writer's own
# shared hold keeps out until it commits.
READ = FirstRead(
    "SELECT epoch, state, delta, created_at, activated_at, retire_after "
    "FROM key_epochs ORDER BY epoch"
)


def load(session: Session) -> list[EpochRecord]:
    """Every epoch, oldest first (read with the writer's BEGIN when it asked for ``READ``)."""
    rows = first_read(session, READ)
    return [
        EpochRecord(
            epoch,
            EpochState(state),
            bytes(delta) if delta is not None else None,
            utc(created_at),
            utc(activated_at),
            utc(retire_after),
        )
        for epoch, state, delta, created_at, activated_at, retire_after in (
            session.execute(_ALL) if rows is None else rows
        )
    ]


def current(records: Sequence[EpochRecord]) -> EpochRecord:
    (found,) = [r for r in records if r.state == EpochState.CURRENT]
    return found


def incoming(records: Sequence[EpochRecord]) -> EpochRecord | None:
    found = [r for r in records if r.state == EpochState.INCOMING]
    return found[0] if found else None


def add_incoming(session: Session, epoch: int, delta: bytes, now: dt.datetime) -> None:
    session.execute(
        insert(EPOCHS),
        [{"epoch": epoch, "state": EpochState.INCOMING.value, "delta": delta, "created_at": now}],
    )


def switch(
    session: Session, old: int, new: int, now: dt.datetime, retire_after: dt.datetime
) -> None:
    """``new`` becomes current, ``old`` previous until ``retire_after``."""
    session.execute(
        update(EPOCHS)
        .where(EPOCHS.c.epoch == old)
        .values(state=EpochState.PREVIOUS.value, retire_after=retire_after)
    )
    session.execute(
        update(EPOCHS)
        .where(EPOCHS.c.epoch == new)
        .values(state=EpochState.CURRENT.value, activated_at=now)
    )


def retire(session: Session, epochs: Sequence[int], now: dt.datetime) -> None:
    """Mark ``epochs`` retired ``now`` (their ``retire_after`` becomes that moment: what
    the listing shows) and erase every δ no accepted epoch needs any more: δₑ goes once
    epoch ``e - 1`` is retired (or never existed)."""
    if epochs:
        session.execute(
            update(EPOCHS)
            .where(EPOCHS.c.epoch.in_(list(epochs)))
            .values(state=EpochState.RETIRED.value, retire_after=now)
        )
    records = load(session)
    accepted = {r.epoch for r in records if r.state != EpochState.RETIRED}
    unneeded = [r.epoch for r in records if r.delta is not None and r.epoch - 1 not in accepted]
    if unneeded:
        session.execute(update(EPOCHS).where(EPOCHS.c.epoch.in_(unneeded)).values(delta=None))
