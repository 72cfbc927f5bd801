"""The e-mail channel's tables: which organisations want e-mail and in which language
(``organisation_email``), and the digest window per professional address
(``email_digests``, keyed by a hash of the address).

``wants`` is the channel's enqueue rule (``vir.store.outbox.RULES``): SQL on the
writer's own session, so every process that writes notifications enqueues alike.
The digest functions run in short write transactions of their own, from the channel
(``vir.delivery.email``), never around the sending itself.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from sqlalchemy import Executable, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from vir.store.tables import EmailDigestRow, OrganisationEmailRow, SignalRow

if TYPE_CHECKING:
    from vir.store.enqueued import Enqueued

SETTINGS = cast(Table, OrganisationEmailRow.__table__)
DIGESTS = cast(Table, EmailDigestRow.__table__)
_SIGNALS = cast(Table, SignalRow.__table__)
_HASH_DOMAIN = b"vir email digest v1\x00"


class Language(enum.StrEnum):
    NL = "nl"
    EN = "en"


@dataclass(frozen=True, slots=True)
class EmailSetting:
    oin: str
    enabled: bool
    language: Language


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where a recipient signal's e-mail goes: its professional's address (None: none)."""

    signal_id: str
    oin: str
    email: str | None


def address_hash(address: str) -> str:
    """The digest key of an address: SHA-256 over the address in lower case (one
    mailbox, however its case is written), with a domain-separation prefix."""
    return hashlib.sha256(_HASH_DOMAIN + address.strip().lower().encode("utf-8")).hexdigest()


def wants(session: Session, notifications: Sequence[Enqueued]) -> set[str]:
    """Of these notifications, those that get an e-mail: their organisation enabled
    e-mail and their recipient signal's professional has an e-mail address."""
    if not notifications:
        return set()
    oins = sorted({n.oin for n in notifications})
    enabled = set(
        session.scalars(
            select(SETTINGS.c.oin).where(SETTINGS.c.oin.in_(oins), SETTINGS.c.enabled.is_(True))
        )
    )
    chosen = [n for n in notifications if n.oin in enabled]
    if not chosen:
        return set()
    signal_ids = sorted({n.recipient for n in chosen})
    with_address = set(
        session.scalars(
            select(_SIGNALS.c.id).where(
                _SIGNALS.c.id.in_(signal_ids), _SIGNALS.c.professional_email.is_not(None)
            )
        )
    )
    return {n.id for n in chosen if n.recipient in with_address}


def get_setting(session: Session, oin: str) -> EmailSetting | None:
    row = session.execute(select(SETTINGS).where(SETTINGS.c.oin == oin)).one_or_none()
    if row is None:
        return None
    return EmailSetting(row.oin, bool(row.enabled), Language(row.language))


def settings_of(session: Session, oins: Collection[str]) -> dict[str, EmailSetting]:
    rows = session.execute(select(SETTINGS).where(SETTINGS.c.oin.in_(sorted(oins))))
    return {r.oin: EmailSetting(r.oin, bool(r.enabled), Language(r.language)) for r in rows}


def put_setting(
    session: Session, oin: str, enabled: bool, language: Language, now: dt.datetime
) -> None:
    values = {"enabled": enabled, "language": language.value, "updated_at": now}
    done = session.execute(
        update(SETTINGS).where(SETTINGS.c.oin == oin).values(**values).returning(SETTINGS.c.oin)
    ).first()
    if done is None:
        session.execute(insert(SETTINGS).values(oin=oin, **values))


def recipients(session: Session, signal_ids: Collection[str]) -> dict[str, Recipient]:
    """The active recipient signals among ``signal_ids`` with their professional's address."""
    rows = session.execute(
        select(_SIGNALS.c.id, _SIGNALS.c.oin, _SIGNALS.c.professional_email).where(
            _SIGNALS.c.id.in_(sorted(signal_ids))
        )
    )
    return {r.id: Recipient(r.id, r.oin, r.professional_email) for r in rows}


def forget_old_windows(session: Session, before: dt.datetime) -> int:
    """Delete the digest rows of e-mails sent before ``before``: their window is over."""
    result = session.execute(delete(DIGESTS).where(DIGESTS.c.last_sent_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of ``reserve``: ``granted`` (this sender may send now; ``previous`` is
    the last-sent time it replaced, for ``release``), or the end of the running window."""

    granted: bool
    previous: dt.datetime | None = None
    window_ends: dt.datetime | None = None


def reserve(session: Session, key: str, now: dt.datetime, interval: dt.timedelta) -> Reservation:
    """Take the address's slot for an e-mail at ``now`` unless one went out less than
    ``interval`` ago. One conditional UPDATE (or an INSERT that a unique key decides), so
    of several workers at once exactly one is granted, on SQLite and PostgreSQL alike."""
    row = session.execute(
        select(DIGESTS.c.last_sent_at).where(DIGESTS.c.address_hash == key)
    ).one_or_none()
    if row is None:
        if _insert_if_absent(session, key, now):
            return Reservation(granted=True)
        return Reservation(granted=False, window_ends=now + interval)
    last: dt.datetime = row.last_sent_at
    if last + interval > now:
        return Reservation(granted=False, window_ends=last + interval)
    done = session.execute(
        update(DIGESTS)
        .where(DIGESTS.c.address_hash == key, DIGESTS.c.last_sent_at == last)
        .values(last_sent_at=now)
        .returning(DIGESTS.c.address_hash)
    ).first()
    if done is None:  # another worker took it between the two statements
        return Reservation(granted=False, window_ends=now + interval)
    return Reservation(granted=True, previous=last)


def _insert_if_absent(session: Session, key: str, now: dt.datetime) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: a second worker inserting the same key
    at once waits for the first and gets no row back, instead of an error that would end
    its transaction (PostgreSQL). RETURNING, not rowcount: psycopg reports -1 for this
    statement."""
    values = {"address_hash": key, "last_sent_at": now}
    statement: Executable
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as insert_pg

        statement = (
            insert_pg(DIGESTS)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(DIGESTS.c.address_hash)
        )
    else:
        from sqlalchemy.dialects.sqlite import insert as insert_sqlite

        statement = (
            insert_sqlite(DIGESTS)
            .values(**values)
            .on_conflict_do_nothing()
            .returning(DIGESTS.c.address_hash)
        )
    return session.execute(statement).first() is not None


def release(
    session: Session, key: str, reserved_at: dt.datetime, previous: dt.datetime | None
) -> None:
    """Undo a reservation whose e-mail did not go out, unless another took the slot since."""
    mine = (DIGESTS.c.address_hash == key) & (DIGESTS.c.last_sent_at == reserved_at)
    if previous is None:
        session.execute(delete(DIGESTS).where(mine))
    else:
        session.execute(update(DIGESTS).where(mine).values(last_sent_at=previous))
