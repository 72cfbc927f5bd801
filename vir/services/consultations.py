"""Veilig Thuis consults the index for a young person without registering a signal.

Purpose-bound (a code from a fixed list), rate-limited per organisation, and
logged: one entry for the consultation and one per signal it disclosed, so a
data-subject access report shows who consulted, and privacy-officer reports
count consultations per organisation.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable
from typing import Any

from vir.audit.chain import Outcome
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.errors import RateLimited
from vir.domain.ratelimit import TokenBuckets
from vir.services.identity import Caller
from vir.services.matching import Organisations, participant
from vir.store import audit_log
from vir.store import signals as repo
from vir.store.db import Database


class Purpose(enum.StrEnum):
    """Why Veilig Thuis consults (Jeugdwet art. 7.1.4.1; Wmo 2015 art. 4.1.1)."""

    TRIAGE = "triage"  # deciding what a report needs
    SAFETY_ASSESSMENT = "safety_assessment"  # veiligheidsbeoordeling
    INVESTIGATION = "investigation"  # onderzoek
    ADVICE = "advice"  # advies aan een professional


class ConsultationService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        limiter: TokenBuckets,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock
        self._limiter = limiter
        self._monotonic = monotonic

    def consult(self, caller: Caller, person: bytes, purpose: Purpose) -> dict[str, Any]:
        policy.require_veilig_thuis(caller)
        wait = self._limiter.take(caller.oin, 1, self._monotonic())
        if wait:
            raise RateLimited(wait)
        now = self._clock()
        consultation_id = str(uuid.uuid4())
        with self._db.write() as session:
            names = Organisations(session)
            active = repo.active_on_person(session, person)
            archived = repo.archived_on_person(session, person)
            involvement = [
                participant(r, names(r.oin), r.created_at) | {"status": "active"} for r in active
            ] + [
                participant(r, names(r.oin), r.registered_at)
                | {"status": "archived", "archived_on": r.archived_on.isoformat()}
                for r in archived
            ]
            accessor: dict[str, Any] = {**audit_log.by(caller), "purpose": purpose.value}
            audit_log.append(
                session,
                audit_log.new_event(
                    "consultation.made",
                    Outcome.SUCCESS,
                    now,
                    objects={"consultation": consultation_id, "results": len(involvement)},
                    **accessor,
                ),
            )
            for row in [*active, *archived]:
                audit_log.append(
                    session,
                    audit_log.new_event(
                        "consultation.disclosed",
                        Outcome.SUCCESS,
                        now,
                        objects={"consultation": consultation_id, "signal": row.id},
                        **accessor,
                    ),
                )
        return {
            "consultation_id": consultation_id,
            "purpose": purpose.value,
            "involvement": involvement,
        }
