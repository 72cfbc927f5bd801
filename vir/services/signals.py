"""Registering and withdrawing signals, and reading one's own matches and notifications."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import oprf
from vir.domain import intake, policy
from vir.domain.clock import Clock
from vir.domain.cursor import decode_cursor, encode_cursor, legacy_seq
from vir.domain.errors import (
    Conflict,
    InputError,
    NotFound,
    RateLimited,
    SecondSignalOnPerson,
    VirError,
)
from vir.domain.intake import SignalRequest as SignalRequest  # what register() takes
from vir.domain.lifecycle import ArchiveReason, InformedWho, archives
from vir.domain.matching import NotificationType, Via, group_keys
from vir.domain.ratelimit import LimitKind
from vir.domain.signals import Professional, SignalFacts, WithdrawalReason
from vir.services import removal
from vir.services.combining import Combiner
from vir.services.epochs import EpochBook, in_transaction
from vir.services.identity import Caller
from vir.services.matching import (
    Organisations,
    current_matches,
    notification,
    notify_contact_changed,
    settle,
    snapshot,
)
from vir.services.views import MatchView, Participant, Registration, SignalState
from vir.store import audit_log, locks, organisations, outbox
from vir.store import epochs as stored_epochs
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.ratelimits import RateLimits
from vir.store.records import ArchivedSignal, Informed, Signal, StoredNotification

# Registrations handled together at most: a batch of 32 costs a signal about
# a seventh of one alone (docs/benchmarks.md), and keeps the wait it adds short.
COMBINED_MOST = 32


class SignalService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        epochs: EpochBook,
        information_days: int = 30,
        limits: RateLimits | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._epochs = epochs
        self._information_days = information_days
        # Per organisation, shared by every instance: registering and withdrawing in a
        # loop would otherwise ask "is this child in the index?" in bulk.
        self._limits = limits if limits is not None else RateLimits({})
        # Registrations that arrive while a batch is registered are registered together,
        # as a batch (docs/concurrency.md, "Registrations combined"): on SQLite one write
        # transaction runs at a time anyway; on PostgreSQL a batch costs the process and
        # the server a fraction of its registrations one by one.
        self._combined: Combiner[Caller, SignalRequest, Registration] = Combiner(
            self.register_many, most=COMBINED_MOST
        )

    def register(self, caller: Caller, request: SignalRequest) -> Registration:
        """Store a signal and settle its matches; a repeat of a stored one returns it.

        ``request`` may be made under any accepted key epoch: its pseudonyms are
        converted to the stored epoch inside the write transaction, where no rekey can
        switch epochs (``vir.services.epochs``), so the signal is stored, matched and
        compared in the epoch of everything it meets. It is ``register_many`` of one,
        or of the caller's registrations that arrive meanwhile
        (``vir.services.combining``): the same answers as one after the other."""
        return self._combined(caller, request)

    async def register_waiting(self, caller: Caller, request: SignalRequest) -> Registration:
        """``register`` for a caller on an event loop, without a thread of its own while
        it waits (``Combiner.submit``)."""
        return await self._combined.submit(caller, request)

    def register_many(
        self, caller: Caller, requests: Sequence[SignalRequest | VirError]
    ) -> list[Registration | VirError]:
        """Register ``requests`` in order, in one write transaction: each as ``register``
        would (an item meets the items before it), with its registration or its refusal.

        An item given as a ``VirError`` (its caller could not even read it) is answered
        with that error. A refusal of one item (invalid, a conflict) leaves the others;
        once the rate limit refuses one, it refuses every later one. Nothing is stored
        unless the transaction commits: then ``WriteNotCommitted`` (or ``RateLimited``)
        is raised for all of them.

        Locks: every local_ref and young person of the batch in one round, then every
        group any of them is in, in a second; an item's own rounds find them held. An
        item can only be in groups that item-by-item registration would have found:
        what an earlier item adds to a young person's groups (a parent it declares) is
        seen by a later item on the same young person only, which is the same
        organisation's second signal on them and a conflict or a repeat.
        """
        policy.require_reporter(caller)
        now = self._clock()
        results: list[Registration | VirError | None] = [None] * len(requests)
        checked: list[tuple[int, SignalRequest, dt.date]] = []
        for i, request in enumerate(requests):
            try:
                if isinstance(request, VirError):
                    raise request
                checked.append((i, request, self._check(caller, request, now)))
            except VirError as error:
                results[i] = error
        if checked:
            self._precheck(caller, [request for _i, request, _on in checked], now)
            first = (organisations.participation(caller.oin), stored_epochs.READ)
            with self._db.write(first=first) as session:
                # An organisation removed while this request was under way (its
                # certificate checked just before): revoked, and nothing is stored.
                organisations.require_participating(session, caller.oin)
                epochs = in_transaction(session)
                items: list[tuple[int, SignalRequest, dt.date]] = []
                for i, request, remove_on in checked:
                    try:
                        items.append((i, epochs.convert_request(request), remove_on))
                    except VirError as error:
                        results[i] = error
                # Two rounds of locks, each with the read it protects (one round trip
                # each on PostgreSQL): the local_refs and young persons, then the parents
                # linked to them; every group the items touch, then who is known there.
                linked = repo.linked_parents_of(
                    session,
                    {r.person for _i, r, _on in items},
                    after=[
                        lock
                        for _i, r, _on in items
                        for lock in (
                            Lock.named("ref", caller.oin, r.local_ref),
                            Lock.person(r.person),
                        )
                    ],
                )
                groups = [
                    Lock.group(key)
                    for _i, r, _on in items
                    for key in group_keys(_facts("", caller, r), linked.get(r.person, ()))
                ]
                alone = _alone(session, caller, [r for _i, r, _on in items], after=groups)
                new: list[tuple[Signal, Sequence[bytes]]] = []  # not inserted yet
                stopped: RateLimited | None = None
                for (i, request, remove_on), meets_nobody in zip(items, alone, strict=True):
                    if stopped is not None:
                        results[i] = stopped
                        continue
                    try:
                        if meets_nobody:
                            results[i] = self._store_alone(
                                session, caller, request, remove_on, now, new
                            )
                        else:
                            repo.insert_signals(session, new)  # what the item may meet
                            new = []
                            results[i] = self._store(session, caller, request, remove_on, now)
                    except RateLimited as error:
                        results[i] = stopped = error
                    except (Conflict, InputError) as error:
                        results[i] = error
                repo.insert_signals_last(session, new)
        return [r for r in results if r is not None]

    def _precheck(
        self, caller: Caller, requests: Sequence[SignalRequest], now: dt.datetime
    ) -> None:
        """Refuse (``RateLimited``) before any work when the registration bucket surely
        cannot pay for one new signal and none of ``requests`` can be an idempotent
        repeat (which costs nothing): no local_ref of them is an active signal of the
        caller's. A repeat is refused only where the transaction finds a new signal
        before it that the bucket cannot pay (``_store``)."""
        try:
            self._limits.precheck(LimitKind.REGISTER, caller.oin, 1, now)
        except RateLimited:
            with self._db.read() as session:
                if not repo.refs_in(session, caller.oin, {r.local_ref for r in requests}):
                    raise

    def _store_alone(
        self,
        session: Session,
        caller: Caller,
        request: SignalRequest,
        remove_on: dt.date,
        now: dt.datetime,
        new: list[tuple[Signal, Sequence[bytes]]],
    ) -> Registration:
        """``_store`` for a request that meets nobody (``_alone``): it is new, and has
        no match, notification or archive offer. Its signal joins ``new``, to be
        inserted with the others before anything reads it."""
        self._limits.take(session, LimitKind.REGISTER, caller.oin, 1, now)
        signal = _new_signal(session, caller, request, remove_on, now)
        new.append((signal, request.parents))
        return Registration(signal, (), created=True)

    def _check(self, caller: Caller, request: SignalRequest, now: dt.datetime) -> dt.date:
        """The request's removal date, once it is a valid signal for the caller to send."""
        known = self._epochs.for_epoch(request.epoch)
        return intake.check_signal(
            request,
            category=caller.organisation.category,
            current_epoch=known.current,
            today=now.date(),
            is_valid_element=oprf.is_valid_element,
            accepted_epochs=tuple(known.factors),
            retired_epochs=known.retired,
        )

    def _store(
        self,
        session: Session,
        caller: Caller,
        request: SignalRequest,
        remove_on: dt.date,
        now: dt.datetime,
    ) -> Registration:
        """Register ``request`` (in the stored epoch, its local_ref and young person
        locked) in the caller's write transaction; the rate limit is charged for a new
        signal only. Not for a conflict (nothing is written before it), nor for an
        idempotent repeat of the caller's own stored signal: it tells the organisation
        nothing it did not know (it registered that signal, and reads it and its matches
        with ``GET /v1/signals/{local_ref}`` and ``GET /v1/matches`` unlimited), and a
        nightly reconciliation repeats every signal it still holds. The local_ref is
        locked, so of two registrations of one new local_ref the first pays and the
        second is a repeat."""
        existing = repo.signal_by_ref(session, caller.oin, request.local_ref)
        if existing is not None:
            if not _repeats(session, existing, request):
                raise Conflict("this local_ref is already registered with other content")
            return Registration(
                existing, current_matches(session, existing.id, existing.oin), created=False
            )
        other = repo.ref_on(session, caller.oin, request.person)
        if other is not None:
            raise SecondSignalOnPerson(other)
        self._limits.take(session, LimitKind.REGISTER, caller.oin, 1, now)
        # Its groups, with every parent linked to the young person: a new parent
        # link brings the person's other signals into that parent's household.
        linked = repo.linked_parents(session, request.person)
        before = snapshot(session, group_keys(_facts("", caller, request), linked))
        signal = _new_signal(session, caller, request, remove_on, now)
        repo.insert_signal(session, signal, request.parents)
        settle(session, before, now)
        offer_archive(session, signal, now)
        return Registration(signal, current_matches(session, signal.id, caller.oin), created=True)

    def withdraw(self, caller: Caller, local_ref: str, reason: WithdrawalReason) -> str:
        """Withdraw one's own signal: archived when the risk ended, otherwise erased."""
        policy.require_reporter(caller)
        now = self._clock()
        self._limits.precheck(LimitKind.WITHDRAW, caller.oin, 1, now)
        with self._db.write() as session:
            self._limits.take(session, LimitKind.WITHDRAW, caller.oin, 1, now)
            locks.take(session, [Lock.named("ref", caller.oin, local_ref)])
            row = _own(session, caller, local_ref)
            accessor: dict[str, Any] = {**audit_log.by(caller), "reason": reason.value}
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.SIGNAL_WITHDRAWN,
                    Outcome.SUCCESS,
                    now,
                    objects={"signal": row.id},
                    **accessor,
                ),
            )
            archive = ArchiveReason.RISK_ENDED if archives(reason) else None
            return removal.remove(session, row, now, archive, accessor)

    def update(self, caller: Caller, local_ref: str, change: SignalChange) -> SignalState:
        """New contact details (partners are told), the information-duty confirmation
        and/or a new removal date: in the future, at most two years from today and not
        after the 23rd birthday (``intake.removal_date``), extending or shortening the
        signal. Nobody else is told: partners never see removal dates."""
        policy.require_reporter(caller)
        intake.check_function(caller.organisation.category, change.professional)
        now = self._clock()
        with self._db.write() as session:
            locks.take(session, [Lock.named("ref", caller.oin, local_ref)])
            row = _own(session, caller, local_ref)
            # The partners are told in every match of the signal: every group it is in
            # stays as it is meanwhile. Its person's lock alone would not keep another
            # young person's registration from making a new match of its address or
            # parent group, whose partners would then see the old contact details.
            removal.lock(session, [row])
            if change.informed is not None:
                informed_on, who = change.informed
                intake.check_informed(informed_on, now.date(), row.created_at.date())
                repo.set_informed(session, row.id, Informed(informed_on, who.value))
                audit_log.append(
                    session,
                    audit_log.new_event(
                        Action.SIGNAL_INFORMED,
                        Outcome.SUCCESS,
                        now,
                        objects={"signal": row.id, "informed": who.value},
                        **audit_log.by(caller),
                    ),
                )
            contact_changed = (
                change.professional is not None and change.professional != row.professional
            )
            if change.professional is not None and contact_changed:
                repo.set_professional(
                    session, row.id, change.professional, _rehash(session, row, change.professional)
                )
                audit_log.append(
                    session,
                    audit_log.new_event(
                        Action.SIGNAL_CONTACT_CHANGED,
                        Outcome.SUCCESS,
                        now,
                        objects={"signal": row.id},
                        **audit_log.by(caller),
                    ),
                )
            if change.remove_on is not None and change.remove_on != row.remove_on:
                remove_on = intake.removal_date(
                    change.remove_on, row.archive_until, now.date(), made=row.created_at.date()
                )
                current = _own(session, caller, local_ref)
                repo.set_remove_on(
                    session, row.id, remove_on, _rehash(session, current, remove_on=remove_on)
                )
                audit_log.append(
                    session,
                    audit_log.new_event(
                        Action.SIGNAL_REMOVAL_CHANGED,
                        Outcome.SUCCESS,
                        now,
                        objects={
                            "signal": row.id,
                            "remove_on": audit_log.day(remove_on, row.archive_until),
                        },
                        **audit_log.by(caller),
                    ),
                )
            if contact_changed:
                notify_contact_changed(session, [row.id], now)
            updated = _own(session, caller, local_ref)
            return SignalState(updated, current_matches(session, row.id, row.oin))

    def list_own(
        self,
        caller: Caller,
        *,
        archived: bool,
        uninformed: bool,
        after: str | None,
        limit: int,
    ) -> Sequence[Signal | ArchivedSignal]:
        """The organisation's signals (for its back office and coordinator), by id."""
        policy.require_reporter(caller)
        with self._db.read() as session:
            if archived:
                return repo.own_archived(session, caller.oin, after, limit)
            due = self._clock() - dt.timedelta(days=self._information_days) if uninformed else None
            return repo.own_signals(session, caller.oin, after, limit, due)

    def listed(
        self,
        caller: Caller,
        *,
        person: str | None,
        matched: bool,
        older_than: repo.ListKey | None,
        newer_than: repo.ListKey | None,
        limit: int,
    ) -> ListedPage:
        """A page of the organisation's active signals, newest first by (created_at, id)
        (``person``: those that person registered through the portal; ``matched``: those
        in an active match, each with its matches), with the totals and the page's place,
        read at one moment (``repo.listed_page``)."""
        policy.require_reporter(caller)
        oin = caller.oin
        with self._db.read() as session:
            rows = repo.listed_page(
                session,
                oin,
                person=person,
                matched=matched,
                older_than=older_than,
                newer_than=newer_than,
                limit=limit,
            )
            total = repo.listed_count(session, oin, person=person, matched=matched)
            before = (
                repo.listed_count(
                    session,
                    oin,
                    person=person,
                    matched=matched,
                    newer_than=(rows[0].created_at, rows[0].id),
                )
                if rows
                else 0
            )
            if not matched:
                return ListedPage(tuple(rows), total, before)
            found = {r.id: current_matches(session, r.id, oin) for r in rows}
            count = repo.listed_matches_count(session, oin, person=person)
            return ListedPage(tuple(rows), total, before, found, count)

    def own(self, caller: Caller, local_ref: str) -> Signal:
        """One of the organisation's own active signals, as ``list_own`` shows it."""
        policy.require_reporter(caller)
        with self._db.read() as session:
            return _own(session, caller, local_ref)

    def matches(self, caller: Caller, local_ref: str) -> tuple[MatchView, ...]:
        policy.require_reporter(caller)
        with self._db.read() as session:
            row = _own(session, caller, local_ref)
            return current_matches(session, row.id, row.oin)


@dataclass(frozen=True)
class ListedPage:
    """A page of an organisation's active signals (``SignalService.listed``): the
    signals, newest first; how many the whole list holds; how many come before the page
    (newer); for a list of matched signals, each one's matches and the list's number of
    matches (a signal in two matches counts twice)."""

    signals: tuple[Signal, ...]
    total: int
    before: int
    matches: dict[str, tuple[MatchView, ...]] = field(default_factory=dict)
    match_total: int = 0


@dataclass(frozen=True)
class SignalChange:
    professional: Professional | None = None
    informed: tuple[dt.date, InformedWho] | None = None
    remove_on: dt.date | None = None  # a new removal date (intake.removal_date's rules)


def _new_signal(
    session: Session, caller: Caller, request: SignalRequest, remove_on: dt.date, now: dt.datetime
) -> Signal:
    """A new signal for ``request``, its registration audited (not inserted yet)."""
    signal_id = str(uuid.uuid4())
    audit_log.append(
        session,
        audit_log.new_event(
            Action.SIGNAL_REGISTERED,
            Outcome.SUCCESS,
            now,
            objects={
                "signal": signal_id,
                "remove_on": audit_log.day(remove_on, request.archive_until),
            },
            **audit_log.by(caller),
        ),
    )
    return Signal(
        id=signal_id,
        oin=caller.oin,
        local_ref=request.local_ref,
        epoch=request.epoch,
        person=request.person,
        address=request.address,
        remove_on=remove_on,
        professional=request.professional,
        content_hash=request.content_hash(),
        created_at=now,
        archive_until=request.archive_until,
    )


def _alone(
    session: Session,
    caller: Caller,
    requests: Sequence[SignalRequest],
    *,
    after: Sequence[Lock] = (),
) -> list[bool]:
    """For each of a batch's requests (in the stored epoch), whether it meets nobody:
    registered in order, it would find its local_ref free and every group it joins
    (its young person, their household, each parent's, its address) without an active
    signal or match but its own, and no archived signal on its young person to offer.

    Read for the whole batch at once, before any of it is stored: a request that
    shares a local_ref or a group with another of the batch is not alone, so what the
    others store cannot change the answer for one that is. ``after``: the locks to take
    first (the groups the requests touch), in the same round trip on PostgreSQL.
    """
    if not requests:
        locks.take(session, after)
        return []
    keys = [group_keys(_facts("", caller, r)) for r in requests]
    refs = Counter(r.local_ref for r in requests)
    shared = Counter(key for own in keys for key in own)
    pseudonyms = {p for r in requests for p in (r.person, *r.parents)}
    known = repo.known(
        session,
        caller.oin,
        refs,
        pseudonyms,
        {r.address for r in requests if r.address is not None},
        shared,
        after=after,
    )
    taken = known.persons | known.parents
    return [
        refs[r.local_ref] == 1
        and r.local_ref not in known.refs
        and all(shared[key] == 1 and key not in known.matched for key in own)
        and taken.isdisjoint((r.person, *r.parents))
        and r.person not in known.archived
        and (r.address is None or r.address not in known.addresses)
        for r, own in zip(requests, keys, strict=True)
    ]


def _facts(signal_id: str, caller: Caller, request: SignalRequest) -> SignalFacts:
    return SignalFacts(
        signal_id, caller.oin, request.person, frozenset(request.parents), request.address
    )


def _own(session: Session, caller: Caller, local_ref: str) -> Signal:
    row = repo.signal_by_ref(session, caller.oin, local_ref)
    if row is None:
        raise NotFound("your organisation has no active signal with this local_ref")
    return row


def _repeats(session: Session, existing: Signal, request: SignalRequest) -> bool:
    """Whether ``request`` (converted to the stored epoch) is ``existing`` again."""
    (facts,) = repo.facts(session, [existing])
    stored = (existing.person, facts.parents, existing.address)
    return intake.same_registration(existing.content_hash, stored, request, existing.remove_on)


def _rehash(
    session: Session,
    row: Signal,
    new: Professional | None = None,
    *,
    remove_on: dt.date | None = None,
) -> bytes:
    """The content hash of the signal as it now reads, so a repeat of it stays idempotent.

    The stored hash covers the removal date as it was requested: none when the
    registration gave none (the row holds the default date). With new contact details
    the new hash keeps that reading, so a repeat of the original registration with the
    new contact details is still recognised; a new removal date (``remove_on``) is a
    date requested from then on."""
    (facts,) = repo.facts(session, [row])

    def digest(remove_on: dt.date | None, professional: Professional) -> bytes:
        return intake.content_digest(
            len(facts.parents), row.address is not None, remove_on, professional, row.archive_until
        )

    requested = None if row.content_hash == digest(None, row.professional) else row.remove_on
    return digest(remove_on or requested, new or row.professional)


def offer_archive(session: Session, new: Signal, now: dt.datetime) -> None:
    """Offer a newly registered signal's reporter, once, the archived signals of others.

    Once per (archived signal, organisation): an organisation that withdraws and
    registers again is not offered the same archived signal a second time.
    """
    archived = [r for r in repo.archived_on_person(session, new.person) if r.oin != new.oin]
    already = repo.offered(session, new.oin, [r.id for r in archived])
    fresh = [r for r in archived if r.id not in already]
    if not fresh:
        return
    offer_id = str(uuid.uuid4())
    names = Organisations(session)
    view = MatchView(
        offer_id,
        Via.PERSON,
        active=False,
        participants=tuple(
            Participant(names(r.oin), r.professional, r.registered_at, r.archived_on) for r in fresh
        ),
        historical=True,
    )
    row = notification(session, NotificationType.HISTORICAL, offer_id, new, view, now, offer_id)
    repo.insert_notifications(session, [row])
    repo.record_offers(session, new.oin, [r.id for r in fresh], offer_id, now)
    for r in fresh:
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ARCHIVE_OFFERED,
                Outcome.SUCCESS,
                now,
                organisation=new.oin,
                actor="matching",
                objects={"signal": new.id, "archived_signal": r.id, "notification": offer_id},
            ),
        )


@dataclass(frozen=True, slots=True)
class NotificationPage:
    """One page of notifications, each with its match as stored (``match_payload``), and
    the cursor for the next."""

    items: list[StoredNotification]
    next: str
    # Notification id -> {channel: state} of its deliveries (vir.store.outbox); a
    # notification without any is absent.
    delivery: dict[str, dict[str, str]] = field(default_factory=dict)


def _number_committed(session: Session, oin: str) -> None:
    """Notifications of ``oin`` committed but not numbered yet are numbered now (waiting
    for a running integrator), so that a reader sees what was committed before it asked."""
    if repo.has_unnumbered(session, oin):
        audit_log.flush(session)


class NotificationService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def _audit_read(self, session: Session, caller: Caller, count: int) -> None:
        audit_log.append(
            session,
            audit_log.new_event(
                Action.NOTIFICATIONS_READ,
                Outcome.SUCCESS,
                self._clock(),
                objects={"count": count},
                **audit_log.by(caller),
            ),
        )

    def newest(self, caller: Caller, person: str | None, limit: int) -> list[StoredNotification]:
        """The newest ``limit`` notifications of the caller's organisation, newest first
        (the portal's page); with ``person``, only those about the signals that person
        registered through the portal. One ``notifications.read`` entry with the number
        returned: what the person was shown."""
        policy.require_reporter(caller)
        with self._db.write() as session:
            _number_committed(session, caller.oin)
            rows = repo.newest_notifications(session, caller.oin, person, limit)
            self._audit_read(session, caller, len(rows))
        return rows

    def read(self, caller: Caller, after: str | None, limit: int) -> NotificationPage:
        """Notifications for the caller's organisation after the cursor, oldest first.

        The cursor stands for the last item's position among the organisation's own
        notifications (``vir.domain.cursor``): the integrator gives positions to
        committed notifications only, in its own transactions (``vir.store.sequencer``),
        so following ``next`` never skips or repeats.
        """
        policy.require_reporter(caller)
        position = decode_cursor(after) if after else 0
        seq = legacy_seq(after) if after and position is None else None
        if position is None and seq is None:
            raise InputError("after", "not a cursor returned by this endpoint")
        with self._db.write() as session:
            _number_committed(session, caller.oin)
            if seq is not None:
                position = repo.position_at_seq(session, caller.oin, seq)
            assert position is not None
            rows = repo.notifications_after(session, caller.oin, position, limit)
            delivery = outbox.states_of(session, [r.id for r in rows])
            self._audit_read(session, caller, len(rows))
        return NotificationPage(
            rows, encode_cursor(rows[-1].position if rows else position), delivery
        )
