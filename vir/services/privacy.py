"""Data-subject rights, executed by a privacy officer (GDPR art. 15-17 and 21).

The officer's client turns the BSN into the pseudonym (the index never sees a
BSN) and submits it. Access returns everything held on that pseudonym: active
and archived signals with their reporters and dates, the matches of the active
ones, consultations that disclosed them, and the audit entries on them. For a
household match only its kind and dates are shown: its other participants
reported about other young persons. Erasure, objection and correction erase
without archive; a death notice erases and destroys everything on the person.

A privacy officer acts for a part of the index (``policy.Scope``): a municipality's
officer for the signals of its region's organisations, the index operator's for every
region. Everything in a regional answer is of the region: signals, match participants,
consultations and audit entries of other regions' organisations are left out, and a
person with signals only elsewhere gets the same 404 as one with none at all — "held
elsewhere" would tell the officer of a young person's involvement outside their remit.
Naming a signal outside the region is refused (OutsideRegion, 403), with the same
answer whether it exists elsewhere or nowhere. A death notice is the exception: it
erases in every region (see ``deceased``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.errors import InputError, NotFound, OutsideRegion, VirError
from vir.domain.lifecycle import ErasureKind
from vir.domain.ratelimit import LimitKind
from vir.services import removal
from vir.services.epochs import Arriving, stored_in
from vir.services.identity import Caller
from vir.services.matching import Organisations
from vir.services.views import UninformedSignal, professional_json
from vir.store import audit_log, locks
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.organisations import require_participating
from vir.store.ratelimits import RateLimits
from vir.store.records import ArchivedSignal, Informed, Match, Signal

NOTHING_HELD = "nothing is held on this pseudonym"
NOTHING_HELD_IN_REGION = "nothing is held on this pseudonym in your region"


def nothing_held(scope: policy.Scope) -> NotFound:
    """The one answer for an empty part: a regional officer's never says whether the
    person has signals in another region."""
    return NotFound(NOTHING_HELD if scope.national else NOTHING_HELD_IN_REGION)


@dataclass(frozen=True, slots=True)
class _Part:
    """The organisations a privacy officer's request covers (``oins`` None: every one)."""

    oins: frozenset[str] | None

    def has(self, oin: str | None) -> bool:
        return self.oins is None or (oin is not None and oin in self.oins)


def _part(session: Session, scope: policy.Scope) -> _Part:
    return _Part(None if scope.region is None else repo.oins_in_region(session, scope.region))


class PrivacyService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        information_days: int = 30,
        limits: RateLimits | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._information_days = information_days
        self._limits = limits if limits is not None else RateLimits({})

    @property
    def information_days(self) -> int:
        """Days after which an unconfirmed information duty is listed
        (``VIR_INFORMATION_DUTY_DAYS``); the privacy report uses the same term."""
        return self._information_days

    def access(self, caller: Caller, person: bytes | Arriving) -> dict[str, Any]:
        scope = policy.require_privacy_officer(caller)
        now = self._clock()
        # Every lookup, found or not, pays from the organisation's bucket (shared by all
        # instances): an answer tells whether the index holds anything on the person.
        self._limits.precheck(LimitKind.PRIVACY_LOOKUP, caller.oin, 1, now)
        request_id = str(uuid.uuid4())
        with self._db.write() as session:
            require_participating(session, caller.oin)
            self._limits.take(session, LimitKind.PRIVACY_LOOKUP, caller.oin, 1, now)
            person = stored_in(session, person)
            names = Organisations(session)
            active = repo.active_on_person(session, person)
            archived = repo.archived_on_person(session, person)
            as_parent = repo.active_as_parent(session, person)
            part = _part(session, scope)
            # Ids of the person's signals outside the officer's part: no entry naming one
            # is shown (an archive offer names the archived signal, whoever reported it).
            held = [(r.oin, r.id) for r in active] + [(r.oin, r.id) for r in archived]
            held += [(r.oin, r.id) for r in as_parent]
            outside = {signal_id for oin, signal_id in held if not part.has(oin)}
            active = [r for r in active if part.has(r.oin)]
            archived = [r for r in archived if part.has(r.oin)]
            as_parent = [r for r in as_parent if part.has(r.oin)]
            found = bool(active or archived or as_parent)
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.ACCESS_REQUESTED,
                    Outcome.SUCCESS if found else Outcome.REFUSED,
                    now,
                    objects={"request": request_id, "signals": len(active) + len(archived)},
                    reason=None if found else "not_found",
                    **audit_log.by(caller),
                ),
            )
            signals = []
            for row in active:
                view = _active_entry(row) | {"organisation": _org(names, row.oin)}
                view["matches"] = [
                    _match(session, match, row, names, part) for match in _matches(session, row.id)
                ]
                signals.append(view)
            for kept in archived:
                signals.append(
                    _archived_entry(kept) | {"organisation": _org(names, kept.oin), "matches": []}
                )
            ids = {s["signal_id"] for s in signals}
            entries = [
                (seq, e)
                for seq, e in audit_log.entries_mentioning(session, ids)
                if (e.organisation is None or part.has(e.organisation))
                and not any(str(v) in outside for v in e.objects.values())
            ]
            report = {
                "request_id": request_id,
                "generated_at": audit_log.rfc3339(now),
                # What the answer covers: the officer's region (signals of its
                # organisations, and of their matches only those participants), or None:
                # every region (the national officer's).
                "region": scope.region,
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
                    if e.action == Action.CONSULTATION_DISCLOSED
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
            raise nothing_held(scope)
        return report

    def erase(
        self,
        caller: Caller,
        person: bytes | Arriving,
        kind: ErasureKind,
        signal_ids: Collection[str] | None = None,
    ) -> list[str]:
        """Erase (never archive) the person's signals in the officer's part, all or the
        listed ones; listing one outside it is refused (OutsideRegion), erasing nothing."""
        scope = policy.require_privacy_officer(caller)
        return self._erase_all(
            caller, person, kind.value, Action.ERASURE_EXECUTED, signal_ids, scope
        )

    def deceased(self, caller: Caller | None, person: bytes | Arriving) -> list[str]:
        """A death notice: every active and archived signal on the person goes, in every
        region. Returns the ids of those in the officer's part (None: the operator's,
        every one); NotFound when that part held none."""
        scope = policy.NATIONAL if caller is None else policy.require_privacy_officer(caller)
        # A death is a fact of the BRP that holds everywhere, and the law wants every signal
        # removed as soon as possible after it: a regional officer's notice is not left to
        # wait for every other region's. Its answer is limited to the officer's part, so
        # it tells nothing of what was held elsewhere.
        return self._erase_all(
            caller, person, "deceased", Action.PERSON_DECEASED, None, scope, everywhere=True
        )

    def _erase_all(
        self,
        caller: Caller | None,
        person: bytes | Arriving,
        reason: str,
        action: Action,
        only: Collection[str] | None,
        scope: policy.Scope,
        *,
        everywhere: bool = False,
    ) -> list[str]:
        now = self._clock()
        accessor: dict[str, Any] = (
            {**audit_log.by(caller), "reason": reason}
            if caller is not None
            else {"actor": "admin", "reason": reason}
        )
        if caller is not None:  # a lookup too: NotFound tells that nothing is held
            self._limits.precheck(LimitKind.PRIVACY_LOOKUP, caller.oin, 1, now)
        refused: VirError | None = None
        erased: list[str] = []
        with self._db.write() as session:
            if caller is not None:
                require_participating(session, caller.oin)
                self._limits.take(session, LimitKind.PRIVACY_LOOKUP, caller.oin, 1, now)
            person = stored_in(session, person)
            locks.take(session, [Lock.person(person)])
            active = repo.active_on_person(session, person)
            archived = repo.archived_on_person(session, person)
            part = _part(session, scope)
            mine = {r.id for r in active if part.has(r.oin)}
            mine |= {r.id for r in archived if part.has(r.oin)}
            if not everywhere:
                active = [r for r in active if r.id in mine]
                archived = [r for r in archived if r.id in mine]
            if only is not None:
                known = {r.id for r in active} | {r.id for r in archived}
                if set(only) - known:
                    # A regional officer gets the same answer for a signal elsewhere as for
                    # one that does not exist: neither says what other regions hold.
                    refused = (
                        InputError("signals", "lists a signal that is not held on this person")
                        if scope.national
                        else OutsideRegion(
                            "lists a signal that is not one of your region's signals on this "
                            "person; nothing was erased"
                        )
                    )
                active = [r for r in active if r.id in only]
                archived = [r for r in archived if r.id in only]
            if not active and not archived:
                refused = refused or nothing_held(scope)
            if refused is None:
                removal.lock(session, active)
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
        # A death notice erases in every region; its answer names the officer's part only.
        erased = [i for i in erased if i in mine]
        if refused is None and not erased:
            refused = nothing_held(scope)
        # Raised after the commit: a refused lookup was paid for all the same.
        if refused is not None:
            raise refused
        return erased

    def uninformed(self, caller: Caller) -> list[UninformedSignal]:
        """Active signals whose information duty is unconfirmed after the configured number
        of days, of the organisations in the officer's part."""
        scope = policy.require_privacy_officer(caller)
        now = self._clock()
        with self._db.read() as session:
            names = Organisations(session)
            before = now - dt.timedelta(days=self._information_days)
            rows = repo.uninformed_in_region(session, before, scope.region)
            return [
                UninformedSignal(r.id, names(r.oin), r.created_at, (now - r.created_at).days)
                for r in rows
            ]


def _org(names: Organisations, oin: str) -> dict[str, str]:
    org = names(oin)
    return {"oin": oin, "name": org.name, "category": org.category}


def _matches(session: Session, signal_id: str) -> list[Match]:
    return [match for match, _key in repo.matches_of(session, signal_id)]


# The access report is a JSON document (the PDF renderer, vir.reports.access_pdf, reads
# the same one), built here until it has records and a response model of its own.
def _informed(informed: Informed | None) -> dict[str, str] | None:
    return None if informed is None else {"on": informed.on.isoformat(), "who": informed.who}


def _active_entry(row: Signal) -> dict[str, Any]:
    return {
        "signal_id": row.id,
        "local_ref": row.local_ref,
        "status": "active",
        "registered_at": audit_log.rfc3339(row.created_at),
        "remove_on": row.remove_on.isoformat(),
        "professional": professional_json(row.professional),
        "informed": _informed(row.informed),
    }


def _archived_entry(row: ArchivedSignal) -> dict[str, Any]:
    return {
        "signal_id": row.id,
        "local_ref": row.local_ref,
        "status": "archived",
        "registered_at": audit_log.rfc3339(row.registered_at),
        "remove_on": row.remove_on.isoformat(),
        "archived_on": row.archived_on.isoformat(),
        "destroy_on": row.destroy_on.isoformat(),
        "professional": professional_json(row.professional),
        "informed": _informed(row.informed),
    }


def _match(
    session: Session, match: Match, row: Signal, names: Organisations, part: _Part
) -> dict[str, Any]:
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
            if m.id != row.id and part.has(m.oin)
        ]
    return view
