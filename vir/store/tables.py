"""The database tables. Pseudonyms are 32-byte ristretto255 encodings; no BSN exists here."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, overload

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        moment: dt.datetime | None = value
        return utc(moment)


@overload
def utc(value: dt.datetime) -> dt.datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A moment as read from the database, as an aware UTC datetime (SQLite's are naive)."""
    if value is None:
        return None
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UtcDateTime}


class OrganisationRow(Base):
    __tablename__ = "organisations"

    oin: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    region: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column()
    # The organisation's coordinator (DESIGN.md §3), shown to match partners when set.
    coordinator_name: Mapped[str | None] = mapped_column(String(100))
    coordinator_email: Mapped[str | None] = mapped_column(String(254))
    coordinator_phone: Mapped[str | None] = mapped_column(String(32))
    # Reference of the written agreement with the municipality (Jeugdwet art. 7.1.3.2).
    convenant: Mapped[str | None] = mapped_column(String(100))
    # When it left the index (``vir org remove``, migration 0026): a tombstone from then
    # on, deleted by the lifecycle once nothing kept refers to it (vir.services.offboarding).
    left_at: Mapped[dt.datetime | None] = mapped_column()


class CertificateRow(Base):
    __tablename__ = "certificates"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    oin: Mapped[str] = mapped_column(ForeignKey("organisations.oin"), index=True)
    serial: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[dt.datetime] = mapped_column()
    not_after: Mapped[dt.datetime] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    # What the holder may do: system (back office), coordinator, privacy_officer.
    role: Mapped[str] = mapped_column(String(24), server_default="system")


class AuditEntryRow(Base):
    """Append-only. ``body`` is the hashed canonical entry; the other columns index it."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    occurred_at: Mapped[str] = mapped_column(String(32), index=True)
    organisation: Mapped[str | None] = mapped_column(String(20), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditStagedRow(Base):
    """An audit event committed with its change and not in the chain yet: the
    integrator (vir.store.sequencer) moves it into ``audit_entries`` in id order."""

    __tablename__ = "audit_staged"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    occurred_at: Mapped[str] = mapped_column(String(32))
    organisation: Mapped[str | None] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    refs: Mapped[str] = mapped_column(Text)  # the object ids it names, space-separated
    staged_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class AuditRefRow(Base):
    """Which entries name which object id (signal, match, ...): derived from the entry
    bodies, so an access request finds a person's entries without reading the whole
    log. ``vir audit verify`` checks it against the bodies."""

    __tablename__ = "audit_refs"

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class SignalRow(Base):
    """An active signal. Removal moves it to ``archived_signals`` or erases it."""

    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("oin", "local_ref", name="uq_signals_oin_local_ref"),
        # A unique index, not a table constraint (migration 0022): a rekey's switch drops
        # it and builds it again after moving every person into place, by sorting, much
        # faster than updating it row by row (vir.store.rekey.swap_all). SQLite cannot
        # drop the index behind a table constraint. Person first: it also serves the
        # lookups by person (migration 0024).
        Index("uq_signals_person_oin", "person", "oin", unique=True),
        # The lifecycle's batches, in this order (migrations 0014, 0024).
        Index("ix_signals_remove_on_id", "remove_on", "id"),
        # The portal's lists of an organisation's signals, newest first, a page at a time
        # (migration 0025). No pseudonym: a rekey's switch leaves it as it is.
        Index("ix_signals_oin_created_at_id", "oin", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    oin: Mapped[str] = mapped_column(ForeignKey("organisations.oin"))
    local_ref: Mapped[str] = mapped_column(String(64))
    # The key epoch ``person``, ``address`` and the parents are stored in (the current
    # one when the signal arrived, converted on arrival; a rekey moves it on).
    epoch: Mapped[int] = mapped_column(Integer)
    person: Mapped[bytes] = mapped_column(LargeBinary(32))
    address: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    remove_on: Mapped[dt.date] = mapped_column(Date)
    professional_name: Mapped[str] = mapped_column(String(100))
    professional_email: Mapped[str | None] = mapped_column(String(254))
    professional_phone: Mapped[str | None] = mapped_column(String(32))
    professional_function: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of the request's content other than its pseudonyms (epoch-independent,
    # vir.domain.intake), to tell an idempotent repeat from a conflict.
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column()
    # The last day an archived copy may exist (the young person turns 23), when earlier
    # than the five-year archive term; computed by the client, never a date of birth.
    archive_until: Mapped[dt.date | None] = mapped_column(Date)
    informed_on: Mapped[dt.date | None] = mapped_column(Date)
    informed_who: Mapped[str | None] = mapped_column(String(16))
    # While a rekey runs (vir.store.rekey): ``person`` and ``address`` in the incoming
    # epoch (δ·N), filled batch by batch and moved into place at the switch; NULL otherwise.
    person_next: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    address_next: Mapped[bytes | None] = mapped_column(LargeBinary(32))


class SignalParentRow(Base):
    """A parent an active signal declares. No primary key but the same rule as a unique
    index (migration 0024): a rekey's switch drops that and builds it again, where
    SQLite would update a primary key holding the pseudonym row by row."""

    __tablename__ = "signal_parents"
    __table_args__ = (
        Index("uq_signal_parents_parent_signal", "parent", "signal_id", unique=True),
        Index("ix_signal_parents_signal_id", "signal_id"),
    )

    signal_id: Mapped[str] = mapped_column(ForeignKey("signals.id", ondelete="CASCADE"))
    parent: Mapped[bytes] = mapped_column(LargeBinary(32))
    parent_next: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # as signals.person_next

    __mapper_args__ = {"primary_key": [signal_id, parent]}  # noqa: RUF012


class MatchRow(Base):
    """A match: the group of one key (person, parent or address pseudonym) while it qualifies.

    ``key`` is cleared when the match ends, so no pseudonym outlives its signals here.
    """

    __tablename__ = "matches"
    __table_args__ = (
        Index(
            "uq_matches_active_key",
            "via",
            "key",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        # The follow-up officer's list walks the active matches oldest first (0019).
        Index(
            "ix_matches_active_created",
            "created_at",
            "id",
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    via: Mapped[str] = mapped_column(String(16))
    key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime] = mapped_column()
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    key_next: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # as signals.person_next
    # The member signal whose reporter coordinates the match (vir.domain.coordination);
    # NULL once the match ended (migration 0017).
    coordinator: Mapped[str | None] = mapped_column(String(36))


class MatchMemberRow(Base):
    __tablename__ = "match_members"

    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), primary_key=True)
    signal_id: Mapped[str] = mapped_column(
        ForeignKey("signals.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[dt.datetime] = mapped_column()


class NotificationRow(Base):
    """A notification as sent: the match as the recipient saw it then (never a pseudonym)."""

    __tablename__ = "notifications"
    # AUTOINCREMENT on SQLite: without it a new row reuses the seq of deleted newest rows,
    # and seq must grow in commit order (legacy cursors, vir.store.db) also after
    # notifications are deleted (migration 0010).
    __table_args__ = (
        Index("uq_notifications_oin_position", "oin", "position", unique=True),
        Index(
            "ix_notifications_unnumbered",
            "seq",
            sqlite_where=text("position IS NULL"),
            postgresql_where=text("position IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    oin: Mapped[str] = mapped_column(String(20))
    # The notification's place among its organisation's own (1, 2, ...): the cursor is
    # made of it, so it tells nothing about other organisations' notifications.
    # None until the audit integrator numbers it (vir.store.sequencer); readers see
    # numbered notifications only.
    position: Mapped[int | None] = mapped_column(Integer)
    local_ref: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    match_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[dt.datetime] = mapped_column()
    payload: Mapped[str] = mapped_column(Text)


class NotificationCounterRow(Base):
    """The last notification position drawn per organisation; never goes back, so a
    position is never reused, also after notifications are deleted."""

    __tablename__ = "notification_counters"

    oin: Mapped[str] = mapped_column(String(20), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class AuditTileRow(Base):
    """Merkle tree hashes of the audit log, 256 to a tile (``vir.store.tiles``): tile
    (level, idx) holds the nodes at height 8·level from index 256·idx on, concatenated;
    derived from the entries, so a proof reads O(log n) hashes (migration 0023)."""

    __tablename__ = "audit_tiles"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hashes: Mapped[bytes] = mapped_column(LargeBinary)


class CheckpointRow(Base):
    """A signed checkpoint (C2SP signed note) over the first ``size`` audit entries."""

    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column()


class ExcludedAddressRow(Base):
    """Institutional addresses (shelters, institutions) that never make a household match."""

    __tablename__ = "excluded_addresses"

    address: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column()
    address_next: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # as signals.person_next


class ArchivedSignalRow(Base):
    """A signal removed because the risk ended or its term ran out, kept five years.

    Only what an offer to a new reporter needs: the person's pseudonym, the
    reporter and the dates. Parents and address are dropped on archiving.
    """

    __tablename__ = "archived_signals"
    # Destruction at the end of the term, in this order (migration 0014).
    __table_args__ = (Index("ix_archived_signals_destroy_on_id", "destroy_on", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    oin: Mapped[str] = mapped_column(ForeignKey("organisations.oin"), index=True)
    local_ref: Mapped[str] = mapped_column(String(64))
    person: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    professional_name: Mapped[str] = mapped_column(String(100))
    professional_email: Mapped[str | None] = mapped_column(String(254))
    professional_phone: Mapped[str | None] = mapped_column(String(32))
    professional_function: Mapped[str | None] = mapped_column(String(100))
    registered_at: Mapped[dt.datetime] = mapped_column()
    remove_on: Mapped[dt.date] = mapped_column(Date)
    informed_on: Mapped[dt.date | None] = mapped_column(Date)
    informed_who: Mapped[str | None] = mapped_column(String(16))
    archived_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(16))  # risk_ended | expired
    destroy_on: Mapped[dt.date] = mapped_column(Date)
    person_next: Mapped[bytes | None] = mapped_column(LargeBinary(32))  # as signals.person_next


class ArchiveOfferRow(Base):
    """An archived signal was offered to an organisation: once, never again."""

    __tablename__ = "archive_offers"

    archived_signal_id: Mapped[str] = mapped_column(
        ForeignKey("archived_signals.id", ondelete="CASCADE"), primary_key=True
    )
    oin: Mapped[str] = mapped_column(String(20), primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(36))
    offered_at: Mapped[dt.datetime] = mapped_column()


class RateLimitRow(Base):
    """One token bucket per (kind, organisation), shared by every app instance: read and
    updated inside the write transaction of the action it limits (vir.store.ratelimits)."""

    __tablename__ = "rate_limits"

    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    oin: Mapped[str] = mapped_column(String(20), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column()


class RefusalCountRow(Base):
    """Refused requests of one minute, counted per key until they are in the audit log.

    The key is the reason, the endpoint, the claimed organisation and certificate and
    the peer's network ('' when absent). ``audited`` of ``count`` are in audit entries
    already, in ``entries`` entries (vir.services.refusals). Rows of closed minutes are
    written to the audit log and deleted by the next flush of any instance.
    """

    __tablename__ = "refusal_counts"

    minute: Mapped[str] = mapped_column(String(17), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(128), primary_key=True)
    organisation: Mapped[str] = mapped_column(String(20), primary_key=True)
    certificate: Mapped[str] = mapped_column(String(64), primary_key=True)
    network: Mapped[str] = mapped_column(String(48), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    audited: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)


class NotificationSignalRow(Base):
    """Which signals a notification carries: the recipient's own, and those whose reporter
    details its payload shows (the participants, or for an archive offer the archived
    signals offered). A notification goes when any of them ends (docs/matching.md,
    Retention); ``signal_id`` is no foreign key, as an archived signal keeps its id."""

    __tablename__ = "notification_signals"

    notification_id: Mapped[str] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    signal_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    # recipient | participant | archived (vir.store.signals.Carried)
    role: Mapped[str] = mapped_column(String(12))


class KeyEpochRow(Base):
    """A key epoch as the index knows it (migration 0011): never key material, only the
    rekey factor δ from the epoch before while the older one may still arrive."""

    __tablename__ = "key_epochs"

    epoch: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # current | incoming | previous | retired (vir.services.epochs.EpochState)
    state: Mapped[str] = mapped_column(String(12))
    delta: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[dt.datetime]
    activated_at: Mapped[dt.datetime | None]
    # previous: accepted (at the key holder: its key kept) until this moment; retired:
    # the moment it was retired (vir.store.epochs.retire, vir.keyholder.epochs.retire).
    retire_after: Mapped[dt.datetime | None]


class WebhookRow(Base):
    """An organisation's webhook (``vir org webhook``, migration 0015): where its
    notifications are pushed and the Standard Webhooks secret they are signed with.
    Every instance reads it per delivery, so a change applies at once. Disabling deletes
    the row, secret and all."""

    __tablename__ = "webhooks"

    oin: Mapped[str] = mapped_column(
        ForeignKey("organisations.oin", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(200))  # whsec_<base64>; never logged
    updated_at: Mapped[dt.datetime]


class DeliveryRow(Base):
    """The outbox: one notification for one channel (vir.store.outbox, docs/delivery.md).

    Made in the notification's own transaction and deleted with it. ``claim`` and
    ``claimed_until`` are a worker's lease: a worker that dies leaves a claim that
    expires, and the delivery is claimed again (at least once). ``last_error`` is a
    short code ("503", "timeout"), never a URL, body or secret."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", name="uq_deliveries_notification_channel"),
        Index("ix_deliveries_due", "channel", "state", "next_attempt_at"),
        # An organisation's open deliveries of a channel: the claim's ordering check.
        Index("ix_deliveries_oin", "oin", "channel", "state"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    oin: Mapped[str] = mapped_column(String(20))
    # pending | retrying | delivered | dead (vir.delivery.channels.State)
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime]
    # Retried until this plus the channel's window (VIR_WEBHOOK_RETRY_HOURS): when the
    # notification was made, or when an operator retried it (vir outbox retry).
    retry_from: Mapped[dt.datetime]
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[dt.datetime | None]
    first_attempt_at: Mapped[dt.datetime | None]
    last_attempt_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(16))


class OrganisationEmailRow(Base):
    """Whether an organisation's professionals get content-free e-mail about their matches,
    and in which language (``vir org email``, migration 0016). No row: no e-mail (opt-in)."""

    __tablename__ = "organisation_email"

    oin: Mapped[str] = mapped_column(
        ForeignKey("organisations.oin", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean)
    language: Mapped[str] = mapped_column(String(2))  # nl | en
    updated_at: Mapped[dt.datetime]


class EmailDigestRow(Base):
    """When the last e-mail went to a professional's address (the digest window,
    vir.delivery.email), keyed by a SHA-256 of the address, never the address itself.
    A row whose window is over decides nothing: the channel's next round deletes it."""

    __tablename__ = "email_digests"

    # SHA-256, hex: not a 32-byte binary column, which in this schema means a pseudonym
    # (those a rekey converts; tests/unit/services/test_rekey.py).
    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sent_at: Mapped[dt.datetime]


class RegionCoordinationRow(Base):
    """A region's rules for choosing a match's coordinator (``vir region coordination``,
    migration 0017): the eligible organisation categories, comma-separated, first to
    last. No row: the default rules (vir.domain.coordination.DEFAULT_RULES)."""

    __tablename__ = "region_coordination"

    region: Mapped[str] = mapped_column(String(100), primary_key=True)
    categories: Mapped[str] = mapped_column(String(1000))
    updated_at: Mapped[dt.datetime]


class CoordinationOfferRow(Base):
    """A coordinator's open offer to hand the role to another participant (migration
    0017): one per match, deleted when answered or when either signal leaves it."""

    __tablename__ = "coordination_offers"

    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), primary_key=True)
    from_signal: Mapped[str] = mapped_column(String(36))
    to_signal: Mapped[str] = mapped_column(String(36))
    offered_at: Mapped[dt.datetime]


class MatchFollowUpRow(Base):
    """One content-free follow-up event of a match (migration 0017): organisation ``oin``
    confirmed contact with ``with_oin`` (``contact_made``), or, as coordinator, that a
    plan was agreed or care started (``with_oin`` empty). Times only, never text."""

    __tablename__ = "match_follow_ups"

    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), primary_key=True)
    oin: Mapped[str] = mapped_column(String(20), primary_key=True)
    # contact_made | plan_agreed | care_started (vir.domain.coordination.FollowUp)
    event: Mapped[str] = mapped_column(String(16), primary_key=True)
    with_oin: Mapped[str] = mapped_column(String(20), primary_key=True)
    recorded_at: Mapped[dt.datetime]


class RegionFollowUpRow(Base):
    """After how many days without confirmed contact a region's matches are overdue
    (``vir region follow-up``, migration 0019). No row: 14 days."""

    __tablename__ = "region_follow_up"

    region: Mapped[str] = mapped_column(String(100), primary_key=True)
    overdue_days: Mapped[int]
    updated_at: Mapped[dt.datetime]


class MatchReminderRow(Base):
    """When a region's follow-up officer last reminded a match's participants of that
    region (``match.reminder``, migration 0019): at most once a day."""

    __tablename__ = "match_reminders"

    match_id: Mapped[str] = mapped_column(ForeignKey("matches.id"), primary_key=True)
    region: Mapped[str] = mapped_column(String(100), primary_key=True)
    sent_at: Mapped[dt.datetime]


class OrganisationOidcRow(Base):
    """How an organisation's people sign in to the portal (``vir org oidc``, migration
    0018): its OpenID provider, the portal's client there, the claims that name the
    person and give a role, and the assurance level required. ``client_secret`` is the
    client's secret at the provider's token endpoint; never logged or shown."""

    __tablename__ = "organisation_oidc"

    oin: Mapped[str] = mapped_column(
        ForeignKey("organisations.oin", ondelete="CASCADE"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(300))
    client_id: Mapped[str] = mapped_column(String(200))
    client_secret: Mapped[str] = mapped_column(String(400))
    person_claim: Mapped[str] = mapped_column(String(64))
    role_claim: Mapped[str] = mapped_column(String(64))
    # JSON: portal role -> the value of role_claim that gives it.
    roles: Mapped[str] = mapped_column(String(1000))
    # The acr an ID token must carry (None: any); a claim that must equal the OIN (None:
    # the provider is the organisation's own).
    acr: Mapped[str | None] = mapped_column(String(200))
    organisation_claim: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime]


class KeyholderOidcRow(Base):
    """At the key holder (``vir keyholder oidc``, migration 0020): whose OAuth access
    tokens (RFC 9068 JWTs) may ask for evaluations on an organisation's account, for
    people signed in to the portal. The issuer, the audience the token must name, the
    acr it must carry (None: any) and a claim that must equal the OIN (None: the issuer
    is the organisation's own, and then serves no other organisation here)."""

    __tablename__ = "keyholder_oidc"

    oin: Mapped[str] = mapped_column(
        ForeignKey("organisations.oin", ondelete="CASCADE"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(300), index=True)
    audience: Mapped[str] = mapped_column(String(200))
    acr: Mapped[str | None] = mapped_column(String(200))
    organisation_claim: Mapped[str | None] = mapped_column(String(64))
    # The OAuth clients whose tokens are taken, a JSON list (migration 0027); None: any.
    client_ids: Mapped[str | None] = mapped_column(String(2000))
    updated_at: Mapped[dt.datetime]


class UsedLoginRow(Base):
    """A sign-in finished in the last ten minutes (migration 0029), keyed by a SHA-256 of
    its state: its callback is taken once. A sign-in under way is stored nowhere but in
    the browser's sealed sign-in cookie (vir.portal.sessions)."""

    __tablename__ = "portal_used_logins"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[dt.datetime]


class PortalSessionRow(Base):
    """A signed-in person in the portal (migration 0018), keyed by a SHA-256 of the
    cookie's value (the value itself is only in the browser). ``person`` is the stable
    pseudonymous id of the person (vir.portal.identity), never the provider's subject."""

    __tablename__ = "portal_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    oin: Mapped[str] = mapped_column(String(20))
    person: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[str] = mapped_column(String(200))  # comma-separated portal roles
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]


class PortalSignalRow(Base):
    """Which person registered a signal through the portal (migration 0021), for their
    "Mijn meldingen": the signal's id and the person's stable pseudonymous id. Goes with
    the signal (withdrawn, archived or removed: the row is deleted with it)."""

    __tablename__ = "portal_signals"

    signal_id: Mapped[str] = mapped_column(
        ForeignKey("signals.id", ondelete="CASCADE"), primary_key=True
    )
    person: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime]
