"""Data-subject rights, executed by a privacy officer (GDPR art. 15-17 and 21).

The officer's client turns the BSN into the pseudonym (the index never sees a
BSN) and submits it. Access returns everything held on that pseudonym: active
and archived signals with their reporters and dates, the matches of the active
ones, consultations that disclosed them, and the audit entries on them. For a
household match only its kind and dates are shown: its other participants
reported about other young persons. Erasure, objection and correction erase
without archive; a death notice erases and destroys everything on the person.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy.orm import Session

from vir.audit.chain import Outcome
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.errors import InputError, NotFound
from vir.domain.lifecycle import ErasureKind
from vir.services import removal
from vir.services.identity import Caller
from vir.services.matching import Organisations
from vir.services.signals import archived_view, signal_view
from vir.store import audit_log
from vir.store import signals as repo
from vir.store.db import Database

NOTHING_HELD = "nothing is held on this pseudonym"


class PrivacyService:
    def __init__(self, db: Database, clock: Clock, information_days: int = 30) -> None:
        self._db = db
        self._clock = clock
        self._information_days = information_days

    def access(self, caller: Caller, person: bytes) -> dict[str, Any]:
        policy.require_privacy_officer(caller)
        now = self._clock()
        request_id = str(uuid.uuid4())
        with self._db.write() as session:
            names = Organisations(session)
            active = repo.active_on_person(session, person)
            archived = repo.archived_on_person(session, person)
            as_parent = repo.active_as_parent(session, person)
            found = bool(active or archived or as_parent)
            audit_log.append(
                session,
                audit_log.new_event(
                    "access.requested",
                    Outcome.SUCCESS if found else Outcome.REFUSED,
                    now,
                    objects={"request": request_id, "signals": len(active) + len(archived)},
                    reason=None if found else "not_found",
                    **audit_log.by(caller),
                ),
            )
            signals = []
            for row in active:
                view = signal_view(row) | {"organisation": _org(names, row.oin)}
                view["matches"] = [
                    _match(session, match, row, names) for match in _matches(session, row.id)
                ]
                signals.append(view)
            for row in archived:
                signals.append(
                    archived_view(row) | {"organisation": _org(names, row.oin), "matches": []}
                )
            ids = {s["signal_id"] for s in signals}
            entries = audit_log.entries_mentioning(session, ids)
            report = {
                "request_id": request_id,
                "generated_at": audit_log.rfc3339(now),
                "signals": signals,
                "as_parent": [
                    {
                        "signal_id": r.id,
                        "status": "active",
                        "organisation": _org(names, r.oin),
                        "registered_at": audit_log.rfc3339(r.created_at),
                    }
                    for r in as_parent
                ],
                "consultations": [
                    {
                        "occurred_at": e.occurred_at,
                        "organisation": _org(names, e.organisation or ""),
                        "purpose": e.purpose,
                    }
                    for _seq, e in entries
                    if e.action == "consultation.disclosed"
                ],
                "audit": [
                    {
                        "seq": seq,
                        "occurred_at": e.occurred_at,
                        "action": e.action,
                        "outcome": e.outcome,
                        "organisation": e.organisation,
                        "objects": dict(e.objects),
                    }
                    for seq, e in entries
                ],
            }
        if not found:  # raised after the commit: the request is on the record all the same
            raise NotFound(NOTHING_HELD)
        return report

    def erase(
        self,
        caller: Caller,
        person: bytes,
        kind: ErasureKind,
        signal_ids: Collection[str] | None = None,
    ) -> list[str]:
        """Erase (never archive) the person's signals, all or the listed ones."""
        policy.require_privacy_officer(caller)
        return self._erase_all(caller, person, kind.value, "erasure.executed", signal_ids)

    def deceased(self, caller: Caller | None, person: bytes) -> list[str]:
        """A death notice: every active and archived signal on the person goes."""
        if caller is not None:
            policy.require_privacy_officer(caller)
        return self._erase_all(caller, person, "deceased", "person.deceased", None)

    def _erase_all(
        self,
        caller: Caller | None,
        person: bytes,
        reason: str,
        action: str,
        only: Collection[str] | None,
    ) -> list[str]:
        now = self._clock()
        accessor: dict[str, Any] = (
            {**audit_log.by(caller), "reason": reason}
            if caller is not None
            else {"actor": "admin", "reason": reason}
        )
        with self._db.write() as session:
            active = repo.active_on_person(session, person)
            archived = repo.archived_on_person(session, person)
            if only is not None:
                known = {r.id for r in active} | {r.id for r in archived}
                unknown = sorted(set(only) - known)
                if unknown:
                    raise InputError("signals", "lists a signal that is not held on this person")
                active = [r for r in active if r.id in only]
                archived = [r for r in archived if r.id in only]
            if not active and not archived:
                raise NotFound(NOTHING_HELD)
            for row in active:
                removal.remove(session, row, now, None, accessor | {"organisation": row.oin})
            for old in archived:
                removal.destroy(session, old, now, **(accessor | {"organisation": old.oin}))
            erased = [r.id for r in active] + [r.id for r in archived]
            audit_log.append(
                session,
                audit_log.new_event(
                    action,
                    Outcome.SUCCESS,
                    now,
                    objects={"active": len(active), "archived": len(archived)},
                    **accessor,
                ),
            )
            return erased

    def uninformed(self, caller: Caller) -> list[dict[str, Any]]:
        """Active signals of every organisation whose information duty is unconfirmed after
        the configured number of days."""
        policy.require_privacy_officer(caller)
        now = self._clock()
        with self._db.read() as session:
            names = Organisations(session)
            rows = repo.uninformed(session, now - dt.timedelta(days=self._information_days))
            return [
                {
                    "signal_id": r.id,
                    "organisation": _org(names, r.oin),
                    "registered_at": audit_log.rfc3339(r.created_at),
                    "days": (now - r.created_at).days,
                }
                for r in rows
            ]


def _org(names: Organisations, oin: str) -> dict[str, str]:
    org = names(oin)
    return {"oin": oin, "name": org.name, "category": org.category}


def _matches(session: Session, signal_id: str) -> list[Any]:
    return [match for match, _key in repo.matches_of(session, signal_id)]


def _match(session: Session, match: Any, row: Any, names: Organisations) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": match.id,
        "kind": match.via.kind,
        "via": match.via.value,
        "active": match.active,
        "created_at": audit_log.rfc3339(match.created_at),
        "participants": [],
    }
    if match.via.kind == "person":
        members = repo.signals_by_id(session, repo.members(session, match.id))
        view["participants"] = [
            {"organisation": _org(names, m.oin), "since": audit_log.rfc3339(m.created_at)}
            for m in sorted(members, key=lambda m: (m.created_at, m.id))
            if m.id != row.id
        ]
    return view
