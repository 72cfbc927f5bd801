"""Persisting matches: run the pure matching for the groups an operation touched,
compare with the stored matches, store the difference, notify, and audit.

Every active match has one coordinator (vir.domain.coordination): chosen by the rules
of its region when it is created, kept while its signal stays, chosen again when it
leaves; then every member is told (``match.coordinator``). The rules are read only
when a choice is made, so a registration that keeps the coordinator costs nothing more.

Runs inside the caller's write transaction, so a signal, its matches, the
notifications and the audit entries commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain.coordination import DEFAULT_RULES, Candidate, choose, rules_region
from vir.domain.matching import (
    GroupKey,
    Notice,
    NotificationType,
    Via,
    group_members,
    qualifies,
    reconcile,
)
from vir.services.views import MatchView, Participant, match_payload
from vir.store import audit_log, coordination, locks
from vir.store import signals as repo
from vir.store.locks import Lock
from vir.store.records import Match, OrganisationContact, Signal


@dataclass(frozen=True)
class Before:
    match: Match | None
    members: frozenset[str] | None


def snapshot(session: Session, keys: Iterable[GroupKey]) -> dict[GroupKey, Before]:
    """The stored match of each group before an operation changes anything.

    Locks the groups first (``vir.store.locks``), for the rest of the transaction: a
    writer that would change one of them waits, so what is read here stays true until
    the difference is stored."""
    keys = set(keys)
    locks.take(session, [Lock.group(key) for key in keys])
    found = {}
    for key in sorted(keys):
        match = repo.active_match(session, key)
        found[key] = Before(match, repo.members(session, match.id) if match else None)
    return found


class Organisations:
    """Organisation names and coordinators, and regions' coordination rules, loaded once
    per operation."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[str, OrganisationContact] = {}
        self._rules: dict[str, tuple[str, ...]] = {}

    def __call__(self, oin: str) -> OrganisationContact:
        if oin not in self._known:
            self._known[oin] = repo.organisation_contact(self._session, oin)
        return self._known[oin]

    def rules(self, region: str) -> tuple[str, ...]:
        """The region's coordination rules, or the default ones where it set none."""
        if region not in self._rules:
            configured = coordination.rules_of(self._session, region)
            self._rules[region] = configured or tuple(c.value for c in DEFAULT_RULES)
        return self._rules[region]


def candidate(row: Signal, names: Organisations) -> Candidate:
    """A member signal as the coordinator's choice sees it."""
    organisation = names(row.oin)
    return Candidate(row.id, organisation.category, organisation.region, row.created_at)


def chosen(current: str | None, members: Collection[Signal], names: Organisations) -> str:
    """The coordinator after a change of members: the current one while its signal is
    among them, else the choice of the rules of the earliest signal's region."""
    if current is not None and any(m.id == current for m in members):
        return current
    candidates = [candidate(m, names) for m in members]
    return choose(candidates, names.rules(rules_region(candidates)))


def shown_to(rows: Collection[Signal], for_oin: str) -> list[Signal]:
    """The members whose reporters an organisation is shown: the other organisations'."""
    return sorted((r for r in rows if r.oin != for_oin), key=lambda r: (r.created_at, r.id))


def match_view(
    match: Match, rows: Collection[Signal], for_oin: str, names: Organisations
) -> MatchView:
    """A match as one organisation sees it: the *other* organisations, never a pseudonym,
    and its coordinator (possibly the organisation itself) while it is active."""
    coordinator = None
    if match.active:
        coordinator = next(
            (
                Participant(names(r.oin), r.professional, r.created_at)
                for r in rows
                if r.id == match.coordinator
            ),
            None,
        )
    return MatchView(
        match.id,
        match.via,
        match.active,
        tuple(
            Participant(names(r.oin), r.professional, r.created_at) for r in shown_to(rows, for_oin)
        ),
        coordinator=coordinator,
    )


def current_matches(session: Session, signal_id: str, oin: str) -> tuple[MatchView, ...]:
    """The active matches of one signal, as its organisation sees them."""
    names = Organisations(session)
    views = []
    for match, _key in repo.matches_of(session, signal_id):
        rows = repo.signals_by_id(session, repo.members(session, match.id))
        views.append(match_view(match, rows, oin, names))
    return tuple(views)


def settle(
    session: Session,
    before: Mapping[GroupKey, Before],
    now: dt.datetime,
    departed: Mapping[str, str] | None = None,
) -> None:
    """Bring the stored matches of the snapshotted groups in line with the signals now.

    ``departed`` maps signals removed by this operation to their organisation.
    """
    names = Organisations(session)
    excluded = repo.excluded(session, [k.key for k in before if k.via is Via.ADDRESS])
    # Handover offers that lapse: of the matches that ended, and of (match, signal) pairs
    # whose signal left a match that goes on; dropped in one statement at the end.
    ended: list[str] = []
    departed_from: list[tuple[str, str]] = []
    for key, old in before.items():
        candidates = repo.group(session, key)
        if old.members is None and len({r.oin for r in candidates}) < 2:
            continue  # no match before, and too few organisations for one now
        rows = {r.id: r for r in candidates}
        members = group_members(key, repo.facts(session, candidates), excluded)
        after = frozenset(m.id for m in members) if qualifies(key, members) else None
        if old.members == after:
            continue
        # Former members still registered: out of this group now, but told so.
        missing = (old.members or frozenset()) - rows.keys()
        rows |= {r.id: r for r in repo.signals_by_id(session, missing)}
        oin_of = {r.id: r.oin for r in rows.values()} | dict(departed or {})
        notices = reconcile(key, old.members, after, rows.keys(), oin_of)
        coordinator = None
        if after is not None:
            current = old.match.coordinator if old.match else None
            coordinator = chosen(current, [rows[s] for s in after], names)
            if old.match is not None and coordinator != current:
                # Everyone in the match is told who coordinates now.
                notices += [Notice(s, NotificationType.COORDINATOR, key) for s in sorted(after)]
        match = _store(session, key, old, after, now, oin_of, coordinator)
        if after is None:
            ended.append(match.id)
        else:
            departed_from += [(match.id, s) for s in sorted((old.members or frozenset()) - after)]
        shown = [rows[s] for s in (after if after is not None else old.members or ()) if s in rows]
        # A recipient out of the match (it ended, or the recipient left it) sees it
        # inactive; one view per recipient organisation and standing, with the signals
        # whose reporters it shows.
        gone = Match(match.id, match.via, match.created_at, active=False)
        views: dict[tuple[str, bool], tuple[MatchView, frozenset[str]]] = {}
        notifications = []
        for notice in notices:
            recipient = rows[notice.recipient]
            member = after is not None and recipient.id in after
            if (recipient.oin, member) not in views:
                views[recipient.oin, member] = (
                    match_view(match if member else gone, shown, recipient.oin, names),
                    frozenset(r.id for r in shown_to(shown, recipient.oin)),
                )
            view, carries = views[recipient.oin, member]
            notifications.append(
                notification(session, notice.type, match.id, recipient, view, now, carries=carries)
            )
        repo.insert_notifications(session, notifications)
    coordination.lapse_offers(session, ended, departed_from)


def _audit(
    session: Session,
    now: dt.datetime,
    action: Action,
    objects: dict[str, str | int],
    organisation: str | None = None,
) -> None:
    audit_log.append(
        session,
        audit_log.new_event(
            action,
            Outcome.SUCCESS,
            now,
            organisation=organisation,
            actor="matching",
            objects=objects,
        ),
    )


def _store(
    session: Session,
    key: GroupKey,
    old: Before,
    after: frozenset[str] | None,
    now: dt.datetime,
    oin_of: Mapping[str, str],
    coordinator: str | None,
) -> Match:
    """Store the group's change; ``coordinator`` is the member signal that coordinates
    the match after it (None when it ends)."""
    if old.match is None:
        assert coordinator is not None
        match = Match(str(uuid.uuid4()), key.via, now, coordinator=coordinator)
        repo.create_match(session, match.id, key, now, coordinator)
        _audit(session, now, Action.MATCH_CREATED, {"match": match.id, "via": key.via.value})
        _audit_coordinator(session, now, match.id, coordinator, oin_of)
    else:
        match = old.match
        if coordinator is not None and coordinator != match.coordinator:
            repo.set_coordinator(session, match.id, coordinator)
            _audit_coordinator(session, now, match.id, coordinator, oin_of)
            match = Match(match.id, match.via, match.created_at, coordinator=coordinator)
    previous = old.members or frozenset()
    current = after or frozenset()
    repo.add_members(session, match.id, current - previous, now)
    for signal_id in sorted(current - previous):
        _audit(
            session,
            now,
            Action.MATCH_MEMBER_ADDED,
            {"match": match.id, "signal": signal_id},
            oin_of[signal_id],
        )
    repo.remove_members(session, match.id, previous - current)
    for signal_id in sorted(previous - current):
        _audit(
            session,
            now,
            Action.MATCH_MEMBER_REMOVED,
            {"match": match.id, "signal": signal_id},
            oin_of.get(signal_id),
        )
    if after is None:
        repo.end_match(session, match.id, now)
        _audit(session, now, Action.MATCH_ENDED, {"match": match.id})
        match = Match(match.id, match.via, match.created_at, active=False)
    return match


def _audit_coordinator(
    session: Session, now: dt.datetime, match_id: str, signal_id: str, oin_of: Mapping[str, str]
) -> None:
    _audit(
        session,
        now,
        Action.MATCH_COORDINATOR_SET,
        {"match": match_id, "signal": signal_id},
        oin_of[signal_id],
    )


def notification(
    session: Session,
    kind: NotificationType,
    match_id: str,
    recipient: Signal,
    view: MatchView,
    now: dt.datetime,
    notification_id: str | None = None,
    *,
    carries: Collection[str] = (),
) -> repo.NewNotification:
    """A notification for ``recipient``'s organisation about its own signal, audited.

    ``carries``: the active signals whose reporters ``view`` shows. The notification
    lives no longer than they and the recipient's signal do (vir.services.removal).
    """
    notification_id = notification_id or str(uuid.uuid4())
    audit_log.append(
        session,
        audit_log.new_event(
            Action.NOTIFICATION_CREATED,
            Outcome.SUCCESS,
            now,
            organisation=recipient.oin,
            actor="matching",
            objects={
                "notification": notification_id,
                "match": match_id,
                "signal": recipient.id,
                "type": kind.value,
            },
        ),
    )
    return repo.NewNotification(
        id=notification_id,
        oin=recipient.oin,
        local_ref=recipient.local_ref,
        type=kind.value,
        match_id=match_id,
        created_at=now,
        payload=match_payload(view),
        recipient=recipient.id,
        carries=frozenset(carries),
    )


def notify_contact_changed(session: Session, signal_ids: Collection[str], now: dt.datetime) -> int:
    """Tell the partners in every active match of these signals that contact details changed.

    Each recipient gets the match as it now stands, once per match.
    """
    names = Organisations(session)
    changed = set(signal_ids)
    seen: set[str] = set()
    rows: list[repo.NewNotification] = []
    for signal_id in sorted(changed):
        for match, _key in repo.matches_of(session, signal_id):
            if match.id in seen:
                continue
            seen.add(match.id)
            members = repo.signals_by_id(session, repo.members(session, match.id))
            changed_oins = {m.oin for m in members if m.id in changed}
            for recipient in members:
                # Told only of another organisation's change, never of its own.
                if recipient.id in changed or not changed_oins - {recipient.oin}:
                    continue
                view = match_view(match, members, recipient.oin, names)
                shown = frozenset(r.id for r in shown_to(members, recipient.oin))
                rows.append(
                    notification(
                        session,
                        NotificationType.CONTACT_CHANGED,
                        match.id,
                        recipient,
                        view,
                        now,
                        carries=shown,
                    )
                )
    repo.insert_notifications(session, rows)
    return len(rows)
