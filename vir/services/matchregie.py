"""Matchregie (issue 17): one match as its participants see it, the coordinator's
handover, and the match's content-free follow-up.

Only an organisation with an active signal in a match may read or act on it; to anyone
else it does not exist (NotFound, the same answer as for an unknown id, so an id tells
nothing about other organisations' matches). The error handler audits every refusal.

Participants are named as the match view names them: by their organisation's OIN. A
participant organisation with several signals in a (household) match acts through its
earliest one. Writes take the match's group lock (``vir.store.locks``), the lock
matching takes, so a handover or a follow-up never crosses a change of members.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain import policy
from vir.domain.caller import Caller
from vir.domain.clock import Clock
from vir.domain.coordination import FollowUp, follow_up_problem
from vir.domain.errors import Conflict, InputError, NotFound, NotPermitted
from vir.domain.matching import NotificationType
from vir.services.matching import Organisations, match_view, notification, shown_to
from vir.services.views import FollowUpShown, HandoverShown, MatchDetail
from vir.store import audit_log, coordination, locks
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.records import FollowUpRecord, HandoverOffer, Match, Signal

_ABSENT = "no active match with this id has a signal of this organisation"
# At most this many organisations in one "contact made with" (a match has fewer).
MAX_CONTACTS = 50


class Matchregie:
    """Reading a match, handing its coordination over, and recording its follow-up."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def read(self, caller: Caller, match_id: str) -> MatchDetail:
        """The active match ``match_id`` as the caller's organisation sees it."""
        policy.require_reporter(caller)
        with self._db.read() as session:
            match, rows = _participating(session, match_id, caller.oin)
            return _detail(session, match, rows, caller.oin, Organisations(session))

    def offer(self, caller: Caller, match_id: str, to_oin: str) -> MatchDetail:
        """The coordinator offers its role to another participating organisation, which is
        told (``match.handover_offered``); a newer offer replaces an open one."""
        policy.require_reporter(caller)
        now = self._clock()
        with self._db.write() as session:
            match, rows = _locked(session, match_id, caller.oin)
            names = Organisations(session)
            coordinator = _by_id(rows, match.coordinator)
            if coordinator.oin != caller.oin:
                raise NotPermitted("only the match's coordinator may hand it over")
            if to_oin == caller.oin:
                raise InputError("to", "the coordinator's own organisation cannot take over")
            target = acting(rows, to_oin, "to")
            coordination.put_offer(session, HandoverOffer(match.id, coordinator.id, target.id, now))
            _audit(
                session,
                now,
                caller,
                Action.MATCH_HANDOVER_OFFERED,
                {"match": match.id, "signal": coordinator.id, "to": target.id},
            )
            notify(session, NotificationType.HANDOVER_OFFERED, match, rows, [target], now, names)
            return _detail(session, match, rows, caller.oin, names)

    def answer(self, caller: Caller, match_id: str, accept: bool) -> MatchDetail:
        """The offer's target accepts (the role moves, everyone is told:
        ``match.coordinator``) or declines (the coordinator who offered is told:
        ``match.handover_declined``)."""
        policy.require_reporter(caller)
        now = self._clock()
        with self._db.write() as session:
            match, rows = _locked(session, match_id, caller.oin)
            names = Organisations(session)
            offer = coordination.offer_of(session, match.id)
            if offer is None:
                raise NotFound("this match has no open handover offer")
            target = _by_id(rows, offer.to_signal)
            if target.oin != caller.oin:
                raise NotPermitted("only the organisation the role was offered to may answer")
            coordination.drop_offer(session, match.id)
            objects: dict[str, str | int] = {"match": match.id, "signal": target.id}
            if accept:
                repo.set_coordinator(session, match.id, target.id)
                match = Match(match.id, match.via, match.created_at, coordinator=target.id)
                _audit(session, now, caller, Action.MATCH_HANDOVER_ACCEPTED, objects)
                notify(session, NotificationType.COORDINATOR, match, rows, rows, now, names)
            else:
                _audit(session, now, caller, Action.MATCH_HANDOVER_DECLINED, objects)
                offering = _by_id(rows, offer.from_signal)
                kind = NotificationType.HANDOVER_DECLINED
                notify(session, kind, match, rows, [offering], now, names)
            return _detail(session, match, rows, caller.oin, names)

    def follow_up(
        self, caller: Caller, match_id: str, event: FollowUp, with_oins: Sequence[str]
    ) -> MatchDetail:
        """Record a follow-up event: contact made with other participating organisations
        (any participant), or the coordinator's plan agreed, then care started. A contact
        recorded already keeps its first time."""
        policy.require_reporter(caller)
        now = self._clock()
        with self._db.write() as session:
            match, rows = _locked(session, match_id, caller.oin)
            recorded = coordination.follow_ups(session, match.id)
            new = _new_follow_ups(match, rows, recorded, caller.oin, event, with_oins, now)
            coordination.record_follow_ups(session, match.id, new)
            for record in new:
                _audit(
                    session,
                    now,
                    caller,
                    Action.MATCH_FOLLOW_UP_RECORDED,
                    {"match": match.id, "event": record.event, "with": record.with_oin or "-"},
                )
            return _detail(session, match, rows, caller.oin, Organisations(session))


def _new_follow_ups(
    match: Match,
    rows: Collection[Signal],
    recorded: Collection[FollowUpRecord],
    oin: str,
    event: FollowUp,
    with_oins: Sequence[str],
    now: dt.datetime,
) -> list[FollowUpRecord]:
    """The records ``event`` adds, or InputError/NotPermitted/Conflict saying why not."""
    if event.coordinator_only:
        if with_oins:
            raise InputError("contact_with", "only a contact made names organisations")
        if _by_id(rows, match.coordinator).oin != oin:
            raise NotPermitted("only the match's coordinator records its plan and care")
        problem = follow_up_problem(event, {FollowUp(r.event) for r in recorded})
        if problem is not None:
            raise Conflict(problem)
        return [FollowUpRecord(oin, event.value, "", now)]
    if not with_oins:
        raise InputError(
            "contact_with", "name the participating organisations contact was made with"
        )
    if len(set(with_oins)) != len(with_oins):
        raise InputError("contact_with", "each organisation may appear once")
    others = {r.oin for r in rows} - {oin}
    if not set(with_oins) <= others:
        raise InputError("contact_with", "not another participating organisation of this match")
    done = {r.with_oin for r in recorded if r.oin == oin and r.event == event.value}
    return [FollowUpRecord(oin, event.value, w, now) for w in sorted(set(with_oins) - done)]


def _participating(session: Session, match_id: str, oin: str) -> tuple[Match, list[Signal]]:
    """The match and its member signals, when ``oin`` has one of them; else NotFound."""
    found = repo.active_match_by_id(session, match_id)
    if found is None:
        raise NotFound(_ABSENT)
    match, _key = found
    rows = repo.signals_by_id(session, repo.members(session, match.id))
    if not any(r.oin == oin for r in rows):
        raise NotFound(_ABSENT)
    return match, rows


def _locked(session: Session, match_id: str, oin: str) -> tuple[Match, list[Signal]]:
    """``_participating`` under the match's group lock: read again once it is held."""
    found = repo.active_match_by_id(session, match_id)
    if found is None:
        raise NotFound(_ABSENT)
    locks.take(session, [Lock.group(found[1])])
    return _participating(session, match_id, oin)


def _by_id(rows: Collection[Signal], signal_id: str | None) -> Signal:
    return next(r for r in rows if r.id == signal_id)


def acting(rows: Collection[Signal], oin: str, field: str) -> Signal:
    """The signal a participating organisation acts through: its earliest in the match."""
    own = sorted((r for r in rows if r.oin == oin), key=lambda r: (r.created_at, r.id))
    if not own:
        raise InputError(field, "not another participating organisation of this match")
    return own[0]


def notify(
    session: Session,
    kind: NotificationType,
    match: Match,
    rows: Collection[Signal],
    recipients: Collection[Signal],
    now: dt.datetime,
    names: Organisations,
) -> None:
    """One notification per recipient signal, showing the match as its organisation sees
    it."""
    made = [
        notification(
            session,
            kind,
            match.id,
            recipient,
            match_view(match, rows, recipient.oin, names),
            now,
            carries=frozenset(r.id for r in shown_to(rows, recipient.oin)),
        )
        for recipient in sorted(recipients, key=lambda r: r.id)
    ]
    repo.insert_notifications(session, made)


def _audit(
    session: Session,
    now: dt.datetime,
    caller: Caller,
    action: Action,
    objects: dict[str, str | int],
) -> None:
    audit_log.append(
        session,
        audit_log.new_event(
            action,
            Outcome.SUCCESS,
            now,
            objects=objects,
            **audit_log.by(caller),
        ),
    )


def _detail(
    session: Session, match: Match, rows: Collection[Signal], oin: str, names: Organisations
) -> MatchDetail:
    offer = coordination.offer_of(session, match.id)
    handover = None
    if offer is not None:
        handover = HandoverShown(
            names(_by_id(rows, offer.from_signal).oin),
            names(_by_id(rows, offer.to_signal).oin),
            offer.offered_at,
        )
    follow_up = tuple(
        FollowUpShown(
            names(r.oin), r.event, names(r.with_oin) if r.with_oin else None, r.recorded_at
        )
        for r in coordination.follow_ups(session, match.id)
        if _still_shown(r, rows)
    )
    return MatchDetail(match_view(match, rows, oin, names), handover, follow_up)


def _still_shown(record: FollowUpRecord, rows: Collection[Signal]) -> bool:
    """A follow-up is shown while the organisations it names take part in the match."""
    present = {r.oin for r in rows}
    return record.oin in present and (not record.with_oin or record.with_oin in present)
