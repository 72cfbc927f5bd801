"""Veilig Thuis consults the index for a young person without registering a signal.

Purpose-bound (a code from a fixed list), rate-limited per organisation, and
logged: one entry for the consultation and one per signal it disclosed, so a
data-subject access report shows who consulted, and privacy-officer reports
count consultations per organisation.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.ratelimit import LimitKind
from vir.services.epochs import Arriving, stored_in
from vir.services.identity import Caller
from vir.services.matching import Organisations
from vir.services.views import Participant
from vir.store import audit_log
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.ratelimits import RateLimits


class Purpose(enum.StrEnum):
    """Why Veilig Thuis consults (Jeugdwet art. 7.1.4.1; Wmo 2015 art. 4.1.1)."""

    TRIAGE = "triage"  # deciding what a report needs
    SAFETY_ASSESSMENT = "safety_assessment"  # veiligheidsbeoordeling
    INVESTIGATION = "investigation"  # onderzoek
    ADVICE = "advice"  # advies aan een professional


@dataclass(frozen=True, slots=True)
class Involvement:
    """One reporter involved with the young person, with its signal's standing."""

    participant: Participant
    status: Literal["active", "archived"]


@dataclass(frozen=True, slots=True)
class Consultation:
    """What a consultation disclosed: every reporter, active signals first."""

    id: str
    purpose: Purpose
    involvement: tuple[Involvement, ...]


class ConsultationService:
    def __init__(self, db: Database, clock: Clock, limits: RateLimits | None = None) -> None:
        self._db = db
        self._clock = clock
        self._limits = limits if limits is not None else RateLimits({})

    def consult(self, caller: Caller, person: bytes | Arriving, purpose: Purpose) -> Consultation:
        policy.require_veilig_thuis(caller)
        now = self._clock()
        self._limits.precheck(LimitKind.CONSULTATION, caller.oin, 1, now)
        consultation_id = str(uuid.uuid4())
        with self._db.write() as session:
            # The organisation's bucket, shared by every instance, in this transaction.
            self._limits.take(session, LimitKind.CONSULTATION, caller.oin, 1, now)
            person = stored_in(session, person)
            names = Organisations(session)
            active = repo.active_on_person(session, person)
            archived = repo.archived_on_person(session, person)
            involvement = tuple(
                Involvement(Participant(names(r.oin), r.professional, r.created_at), "active")
                for r in active
            ) + tuple(
                Involvement(
                    Participant(names(r.oin), r.professional, r.registered_at, r.archived_on),
                    "archived",
                )
                for r in archived
            )
            accessor: dict[str, Any] = {**audit_log.by(caller), "purpose": purpose.value}
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.CONSULTATION_MADE,
                    Outcome.SUCCESS,
                    now,
                    objects={"consultation": consultation_id, "results": len(involvement)},
                    **accessor,
                ),
            )
            for signal_id in [*(r.id for r in active), *(r.id for r in archived)]:
                audit_log.append(
                    session,
                    audit_log.new_event(
                        Action.CONSULTATION_DISCLOSED,
                        Outcome.SUCCESS,
                        now,
                        objects={"consultation": consultation_id, "signal": signal_id},
                        **accessor,
                    ),
                )
        return Consultation(consultation_id, purpose, involvement)
