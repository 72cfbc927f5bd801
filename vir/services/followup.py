"""The municipal follow-up officer (issue 17, part 3): the region's matches where
contact was not confirmed in time, and reminders to their participants.

The officer acts for one region (``policy.require_follow_up_officer``) and sees of a
match only what the check needs: when it was made, and the participating
organisations of the region with their professionals' contact details and whether
their contact is confirmed (``vir.domain.followup``). Never a person, a signal, a local
reference or the participants of another region (only how many there are). A match
with no participant in the region is refused (403 ``outside-region``, audited), as is
every other endpoint for this role (the handlers ask for a reporter or an officer).

A reminder (``match.reminder``) goes to the region's participants without confirmed
contact, one notification per organisation through its earliest signal in the match,
at most once a day per match and region. It takes the match's group lock, the lock
matching and matchregie take, so it never crosses a change of members.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain import followup, policy
from vir.domain.caller import Caller
from vir.domain.clock import Clock
from vir.domain.errors import Conflict, InputError, NotFound, OutsideRegion, RateLimited
from vir.domain.matching import NotificationType
from vir.domain.signals import Professional
from vir.services.matching import Organisations
from vir.services.matchregie import acting, notify
from vir.store import audit_log, coordination, locks
from vir.store import followup as store
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.records import Match, OrganisationContact, Signal

# Active matches read per query while looking for overdue ones, and at most per page:
# a page may hold fewer than asked (then ``next`` goes on from where the scan stopped).
BATCH = 200
SCAN_LIMIT = 5_000
# The two reasons a reminder is not needed (both Conflict, 409); the portal tells them
# apart by these beginnings of the message.
NOT_OVERDUE = "this match is not overdue"
ALL_CONFIRMED = "every participant of this region confirmed contact"
# A reminder within a day of the region's last one (RateLimited, 429): the detail says
# from when (UTC, ISO 8601), the portal and ``vir-client`` show it.
ALREADY_REMINDED = "this match was already reminded in the last 24 hours"
_CURSOR = re.compile(r"([0-9]{1,17})\.([0-9a-f-]{36})")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class ParticipantStatus:
    """A participating organisation of the officer's region, its professional's contact
    details (of its earliest signal in the match), and whether contact is confirmed."""

    organisation: OrganisationContact
    professional: Professional
    contact_confirmed: bool


@dataclass(frozen=True, slots=True)
class OverdueMatch:
    id: str
    created_at: dt.datetime
    days_open: int
    participants: tuple[ParticipantStatus, ...]  # of the officer's region only
    other_regions: int  # participating organisations of other regions: a count only
    reminded_at: dt.datetime | None  # the region's last reminder


@dataclass(frozen=True, slots=True)
class OverduePage:
    region: str
    days: int
    items: tuple[OverdueMatch, ...]
    next: str | None


@dataclass(frozen=True, slots=True)
class Reminder:
    match_id: str
    region: str
    reminded: tuple[OrganisationContact, ...]
    sent_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Period:
    region: str
    days: int
    configured: bool


def encode_cursor(created_at: dt.datetime, match_id: str) -> str:
    """A page's ``next``: where the scan stopped (opaque to the officer)."""
    micros = (created_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{micros}.{match_id}"


def decode_cursor(text: str) -> tuple[dt.datetime, str]:
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise InputError("after", "not a cursor of this list: give the `next` of a page")
    return _EPOCH + dt.timedelta(microseconds=int(found.group(1))), found.group(2)


def period(db: Database, region: str) -> Period:
    """The region's overdue period: its own, or ``followup.DEFAULT_DAYS``."""
    with db.read() as session:
        days = store.overdue_days(session, region)
    if days is None:
        return Period(region, followup.DEFAULT_DAYS, configured=False)
    return Period(region, days, configured=True)


def set_period(db: Database, region: str, days: int, now: dt.datetime) -> Period:
    """Configure a region's overdue period (``vir region follow-up``), audited."""
    followup.check_days(days)
    with db.write() as session:
        locks.take(session, [Lock.named("region-follow-up", region)])
        if not coordination.region_known(session, region):
            raise InputError("region", "no organisation is registered in this region")
        store.set_overdue_days(session, region, days, now)
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ADMIN_FOLLOW_UP_CHANGED,
                Outcome.SUCCESS,
                now,
                actor="admin",
                objects={"region": region, "days": days},
            ),
        )
    return Period(region, days, configured=True)


class FollowUpCheck:
    """A follow-up officer's list of overdue matches, and reminders."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def overdue(
        self, caller: Caller, days: int | None, after: str | None, limit: int
    ) -> OverduePage:
        """The region's active matches older than ``days`` (the region's period when
        None) with a participant of the region whose contact is not confirmed, oldest
        first, from the cursor ``after``."""
        region = policy.require_follow_up_officer(caller)
        position = None if after is None else decode_cursor(after)
        days = period(self._db, region).days if days is None else followup.check_days(days)
        now = self._clock()
        cutoff = now - dt.timedelta(days=days)
        found: list[OverdueMatch] = []
        scanned = 0
        with self._db.read() as session:
            names = Organisations(session)
            while True:
                want = min(BATCH, SCAN_LIMIT - scanned)
                batch = store.active_in_region(session, region, cutoff, position, want)
                for match, item in _overdue(session, batch, region, now, names):
                    position = _key(match)
                    scanned += 1
                    if item is not None:
                        found.append(item)
                        if len(found) == limit:
                            break
                if len(batch) < want and (not batch or position == _key(batch[-1])):
                    position = None  # the scan reached the last match: no next page
                    break
                if len(found) == limit or scanned >= SCAN_LIMIT:
                    break
        with self._db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.FOLLOW_UP_OVERDUE_LISTED,
                    Outcome.SUCCESS,
                    now,
                    objects={"region": region, "days": days, "count": len(found)},
                    **audit_log.by(caller),
                ),
            )
        cursor = None if position is None else encode_cursor(*position)
        return OverduePage(region, days, tuple(found), cursor)

    def remind(self, caller: Caller, match_id: str) -> Reminder:
        """Remind the region's participants of an overdue match that have not confirmed
        contact (``match.reminder``)."""
        region = policy.require_follow_up_officer(caller)
        now = self._clock()
        days = period(self._db, region).days
        with self._db.write() as session:
            found = repo.active_match_by_id(session, match_id)
            if found is None:
                raise NotFound("no active match with this id")
            locks.take(session, [Lock.group(found[1])])
            found = repo.active_match_by_id(session, match_id)
            if found is None:
                raise NotFound("no active match with this id")
            match = found[0]
            rows = repo.signals_by_id(session, repo.members(session, match.id))
            names = Organisations(session)
            own = {r.oin for r in rows if names(r.oin).region == region}
            if not own:
                raise OutsideRegion("this match has no participant in the officer's region")
            if now - match.created_at < dt.timedelta(days=days):
                raise Conflict(f"{NOT_OVERDUE}: it is younger than {days} days")
            contacts = store.contacts_of(session, [match.id])[match.id]
            waiting = followup.unconfirmed(own, ((c.oin, c.with_oin) for c in contacts))
            if not waiting:
                raise Conflict(ALL_CONFIRMED)
            last = store.last_reminders(session, region, [match.id]).get(match.id)
            wait = followup.reminder_wait(last, now)
            if last is not None and wait is not None:
                again = followup.reminder_again(last)
                raise RateLimited(
                    max(1, math.ceil((again - now).total_seconds())),
                    f"{ALREADY_REMINDED}; it can be reminded again from "
                    f"{again.astimezone(dt.UTC).isoformat().replace('+00:00', 'Z')}",
                )
            recipients = [acting(rows, oin, "match_id") for oin in waiting]
            notify(session, NotificationType.REMINDER, match, rows, recipients, now, names)
            store.record_reminder(session, match.id, region, now)
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.MATCH_REMINDED,
                    Outcome.SUCCESS,
                    now,
                    objects={"match": match.id, "region": region, "organisations": len(waiting)},
                    **audit_log.by(caller),
                ),
            )
            return Reminder(match.id, region, tuple(names(oin) for oin in waiting), now)


def _key(match: Match) -> tuple[dt.datetime, str]:
    return (match.created_at, match.id)


def _overdue(
    session: Session, batch: Sequence[Match], region: str, now: dt.datetime, names: Organisations
) -> Iterator[tuple[Match, OverdueMatch | None]]:
    """Each match of ``batch`` with what the region's officer sees of it when a
    participant of the region has no confirmed contact (else None); four queries per
    batch, whatever its size."""
    ids = [m.id for m in batch]
    members = store.members_of(session, ids)
    rows = {r.id: r for r in repo.signals_by_id(session, [s for m in members.values() for s in m])}
    contacts = store.contacts_of(session, ids)
    reminded = store.last_reminders(session, region, ids)
    for match in batch:
        signals = [rows[s] for s in members[match.id] if s in rows]
        oins = {r.oin for r in signals}
        own = {oin for oin in oins if names(oin).region == region}
        pairs = ((c.oin, c.with_oin) for c in contacts[match.id])
        waiting = set(followup.unconfirmed(own, pairs))
        if not waiting:
            yield match, None
            continue
        shown = OverdueMatch(
            match.id,
            match.created_at,
            followup.days_open(match.created_at, now),
            tuple(_status(signals, oin, oin not in waiting, names) for oin in sorted(own)),
            len(oins - own),
            reminded.get(match.id),
        )
        yield match, shown


def _status(
    rows: Sequence[Signal], oin: str, confirmed: bool, names: Organisations
) -> ParticipantStatus:
    return ParticipantStatus(names(oin), acting(rows, oin, "match_id").professional, confirmed)
