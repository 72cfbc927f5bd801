"""Persisting matches: run the pure matching for the groups an operation touched,
compare with the stored matches, store the difference, notify, and audit.

Runs inside the caller's transaction, so a signal, its matches, the
notifications and the audit entries commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vir.audit.chain import Outcome
from vir.domain.matching import GroupKey, Notice, Via, qualifies, reconcile
from vir.store import audit_log
from vir.store import signals as repo
from vir.store.tables import MatchMemberRow, MatchRow, NotificationRow, OrganisationRow, SignalRow


@dataclass(frozen=True)
class Before:
    match: MatchRow | None
    members: frozenset[str] | None


def snapshot(session: Session, keys: Iterable[GroupKey]) -> dict[GroupKey, Before]:
    """The stored match of each group before an operation changes anything."""
    found = {}
    for key in sorted(set(keys)):
        match = repo.active_match(session, key)
        found[key] = Before(match, frozenset(repo.members(session, match.id)) if match else None)
    return found


class _Names:
    """Organisation names, loaded once per operation."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._names: dict[str, str] = {}

    def __call__(self, oin: str) -> str:
        if oin not in self._names:
            self._names[oin] = self._session.scalars(
                select(OrganisationRow.name).where(OrganisationRow.oin == oin)
            ).one()
        return self._names[oin]


def rfc3339(moment: dt.datetime) -> str:
    return audit_log.rfc3339(moment)


def participant(row: SignalRow, name: str) -> dict[str, Any]:
    return {
        "organisation": {"oin": row.oin, "name": name},
        "professional": {
            "name": row.professional_name,
            "email": row.professional_email,
            "phone": row.professional_phone,
            "function": row.professional_function,
        },
        "since": rfc3339(row.created_at),
    }


def match_view(
    match: MatchRow, rows: Collection[SignalRow], for_oin: str, names: _Names
) -> dict[str, Any]:
    """A match as one organisation sees it: the *other* organisations, never a pseudonym."""
    via = Via(match.via)
    others = sorted((r for r in rows if r.oin != for_oin), key=lambda r: (r.created_at, r.id))
    return {
        "id": match.id,
        "kind": via.kind,
        "via": via.value,
        "active": match.ended_at is None,
        "participants": [participant(r, names(r.oin)) for r in others],
    }


def current_matches(session: Session, signal: SignalRow) -> list[dict[str, Any]]:
    names = _Names(session)
    views = []
    for match in repo.matches_of(session, signal.id):
        ids = repo.members(session, match.id)
        rows = session.scalars(select(SignalRow).where(SignalRow.id.in_(ids))).all()
        views.append(match_view(match, rows, signal.oin, names))
    return views


def settle(
    session: Session,
    before: Mapping[GroupKey, Before],
    now: dt.datetime,
    departed: Mapping[str, str] | None = None,
) -> None:
    """Bring the stored matches of the snapshotted groups in line with the signals now.

    ``departed`` maps signals removed by this operation to their organisation.
    """
    names = _Names(session)
    addresses = [k.key for k in before if k.via is Via.ADDRESS]
    excluded = repo.excluded(session, addresses)
    for key, old in before.items():
        rows = {r.id: r for r in repo.group_rows(session, key)}
        group = repo.facts(session, rows.values())
        is_match = qualifies(key, group) and not (key.via is Via.ADDRESS and key.key in excluded)
        after = frozenset(rows) if is_match else None
        if old.members == after:
            continue
        oin_of = {f.id: f.oin for f in group} | dict(departed or {})
        notices = reconcile(key, old.members, after, rows.keys(), oin_of)
        match = _store(session, key, old, after, now, oin_of)
        shown = [
            rows[s] for s in (after if after is not None else (old.members or ())) if s in rows
        ]
        for notice in notices:
            _notify(session, notice, match, rows[notice.recipient], shown, now, names)


def _store(
    session: Session,
    key: GroupKey,
    old: Before,
    after: frozenset[str] | None,
    now: dt.datetime,
    oin_of: Mapping[str, str],
) -> MatchRow:
    def audit(action: str, objects: dict[str, str | int], organisation: str | None = None) -> None:
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

    if old.match is None:
        match = MatchRow(id=str(uuid.uuid4()), via=key.via.value, key=key.key, created_at=now)
        session.add(match)
        session.flush()
        audit("match.created", {"match": match.id, "via": key.via.value})
    else:
        match = old.match
    previous = old.members or frozenset()
    current = after or frozenset()
    for signal_id in sorted(current - previous):
        session.add(MatchMemberRow(match_id=match.id, signal_id=signal_id, joined_at=now))
        audit("match.member_added", {"match": match.id, "signal": signal_id}, oin_of[signal_id])
    for signal_id in sorted(previous - current):
        audit(
            "match.member_removed", {"match": match.id, "signal": signal_id}, oin_of.get(signal_id)
        )
    repo.delete_members(session, match.id, previous - current)
    if after is None:
        match.ended_at = now
        match.key = None  # no pseudonym outlives the match
        audit("match.ended", {"match": match.id})
    session.flush()
    return match


def _notify(
    session: Session,
    notice: Notice,
    match: MatchRow,
    recipient: SignalRow,
    shown: Collection[SignalRow],
    now: dt.datetime,
    names: _Names,
) -> None:
    view = match_view(match, shown, recipient.oin, names)
    notification = NotificationRow(
        id=str(uuid.uuid4()),
        oin=recipient.oin,
        local_ref=recipient.local_ref,
        type=notice.type.value,
        match_id=match.id,
        created_at=now,
        payload=json.dumps(view, separators=(",", ":"), ensure_ascii=False),
    )
    session.add(notification)
    audit_log.append(
        session,
        audit_log.new_event(
            "notification.created",
            Outcome.SUCCESS,
            now,
            organisation=recipient.oin,
            actor="matching",
            objects={
                "notification": notification.id,
                "match": match.id,
                "signal": recipient.id,
                "type": notice.type.value,
            },
        ),
    )
