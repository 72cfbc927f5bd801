"""Veilig Thuis consults the index without registering a signal, and later tells the
reporters it found where its involvement stands.

A consultation is about one young person (``person`` form) or about a household (the
``household`` form: by a parent's pseudonym, the young persons linked to that parent as
matching links them, docs/matching.md). Purpose-bound (a code from a fixed list),
rate-limited per organisation, and logged: one entry for the consultation and one per
signal it disclosed, so a data-subject access report shows who consulted, and
privacy-officer reports count consultations per organisation.

Feedback (``feedback``) needs nothing stored beyond those entries: the consultation's
entry names the organisation that made it, when, and in which form; its disclosure
entries name the signals it found. So the index keeps no pseudonym and no list of its
own for a consultation: feedback reads the log (by the consultation's id, through the
``audit_refs`` index), for ``FEEDBACK_DAYS`` after the consultation. Each reporter whose
signal the consultation found, and that is still active, gets a content-free
``match.safety_feedback`` notification, stored as every notification is, so webhooks
and e-mail deliver it.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.errors import Conflict, NotFound
from vir.domain.feedback import FEEDBACK_DAYS, FeedbackCode, refusal
from vir.domain.matching import GroupKey, NotificationType, Via, group_members
from vir.domain.ratelimit import LimitKind
from vir.services.epochs import Arriving, stored_in
from vir.services.identity import Caller
from vir.services.matching import Organisations
from vir.services.views import MatchView, Participant, match_payload
from vir.store import audit_log, locks
from vir.store import signals as repo
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.ratelimits import RateLimits
from vir.store.records import ArchivedSignal, OrganisationContact, Signal


class Purpose(enum.StrEnum):
    """Why Veilig Thuis consults (Jeugdwet art. 7.1.4.1; Wmo 2015 art. 4.1.1)."""

    TRIAGE = "triage"  # deciding what a report needs
    SAFETY_ASSESSMENT = "safety_assessment"  # veiligheidsbeoordeling
    INVESTIGATION = "investigation"  # onderzoek
    ADVICE = "advice"  # advies aan een professional


class Form(enum.StrEnum):
    """What a consultation is about: one young person, or a parent's household."""

    PERSON = "person"
    HOUSEHOLD = "household"

    @property
    def via(self) -> Via:
        """The group whose reporters the form finds (as matching groups signals)."""
        return Via.PERSON if self is Form.PERSON else Via.PARENT


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
    form: Form = Form.PERSON


@dataclass(frozen=True, slots=True)
class Feedback:
    """What feedback did: the consultation, the code and how many reporters were told."""

    consultation_id: str
    code: FeedbackCode
    notified: int


def _by_registration(signals: Sequence[Signal]) -> list[Signal]:
    return sorted(signals, key=lambda r: (r.created_at, r.id))


def _household(session: Session, parent: bytes) -> tuple[list[Signal], list[ArchivedSignal]]:
    """The reporters of parent ``parent``'s household: the active signals of its parent
    group (the young persons some active signal declares ``parent`` for, and ``parent``
    as a young person, decided by ``group_members`` as matching decides it), and the
    archived signals on those young persons."""
    key = GroupKey(Via.PARENT, parent)
    candidates = repo.group(session, key)
    members = {m.id for m in group_members(key, repo.facts(session, candidates))}
    active = _by_registration([r for r in candidates if r.id in members])
    persons = sorted({r.person for r in active} | {parent})
    archived = sorted(
        (a for p in persons for a in repo.archived_on_person(session, p)),
        key=lambda a: (a.registered_at, a.id),
    )
    return active, archived


def _made_at(event: AuditEvent) -> dt.datetime:
    return dt.datetime.fromisoformat(event.occurred_at)


def feedback_payload(
    consultation_id: str, form: Form, code: FeedbackCode, veilig_thuis: OrganisationContact
) -> str:
    """The stored match of a ``match.safety_feedback`` notification: the wire's
    ``<match>`` with the consultation's id, no participants (no reporter is shown to
    another), inactive once Veilig Thuis closed its involvement, and ``safety_feedback``
    naming Veilig Thuis (organisation only) and the code with its Dutch label."""
    view = MatchView(consultation_id, form.via, code is not FeedbackCode.CLOSED, ())
    shown: dict[str, Any] = json.loads(match_payload(view))
    shown["safety_feedback"] = {
        "organisation": {"oin": veilig_thuis.oin, "name": veilig_thuis.name},
        "code": code.value,
        "label": code.label,
    }
    return json.dumps(shown, separators=(",", ":"), ensure_ascii=False)


class ConsultationService:
    def __init__(self, db: Database, clock: Clock, limits: RateLimits | None = None) -> None:
        self._db = db
        self._clock = clock
        self._limits = limits if limits is not None else RateLimits({})

    def consult(
        self,
        caller: Caller,
        person: bytes | Arriving,
        purpose: Purpose,
        form: Form = Form.PERSON,
    ) -> Consultation:
        """Who is or was involved: with the young person ``person`` (``Form.PERSON``), or
        with the household of the parent ``person`` (``Form.HOUSEHOLD``)."""
        policy.require_veilig_thuis(caller)
        now = self._clock()
        self._limits.precheck(LimitKind.CONSULTATION, caller.oin, 1, now)
        consultation_id = str(uuid.uuid4())
        with self._db.write() as session:
            # The organisation's bucket, shared by every instance, in this transaction.
            self._limits.take(session, LimitKind.CONSULTATION, caller.oin, 1, now)
            subject = stored_in(session, person)
            names = Organisations(session)
            if form is Form.PERSON:
                active = repo.active_on_person(session, subject)
                archived = repo.archived_on_person(session, subject)
            else:
                active, archived = _household(session, subject)
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
                    objects={
                        "consultation": consultation_id,
                        "results": len(involvement),
                        "form": form.value,
                    },
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
        return Consultation(consultation_id, purpose, involvement, form)

    def feedback(self, caller: Caller, consultation_id: str, code: FeedbackCode) -> Feedback:
        """Tell the reporters ``consultation_id`` found (their signals still active, other
        organisations' than the caller's) where Veilig Thuis's involvement stands.

        NotFound, whichever the reason, for a consultation that does not exist, is
        another organisation's, or is older than ``FEEDBACK_DAYS``; Conflict for a code
        given on it before, or any code after ``closed``."""
        policy.require_veilig_thuis(caller)
        now = self._clock()
        with self._db.write() as session:
            # Feedback on one consultation, one at a time: the codes given so far are read
            # below and must still hold when this one commits.
            locks.take(session, [Lock.named("consultation-feedback", consultation_id)])
            entries = [e for _, e in audit_log.entries_mentioning(session, {consultation_id})]
            made = next(
                (
                    e
                    for e in entries
                    if e.action == Action.CONSULTATION_MADE
                    and e.objects.get("consultation") == consultation_id
                ),
                None,
            )
            if made is None or now - _made_at(made) > dt.timedelta(days=FEEDBACK_DAYS):
                raise NotFound("no such consultation of this organisation")
            policy.require_feedback_giver(caller, made.organisation or "")
            given = frozenset(
                FeedbackCode(str(e.objects["code"]))
                for e in entries
                if e.action == Action.CONSULTATION_FEEDBACK
                and e.objects.get("consultation") == consultation_id
            )
            refused = refusal(given, code)
            if refused is not None:
                raise Conflict(refused)
            disclosed = {
                str(e.objects["signal"])
                for e in entries
                if e.action == Action.CONSULTATION_DISCLOSED
                and e.objects.get("consultation") == consultation_id
            }
            # Still active, and another organisation's: Veilig Thuis's own signals need no
            # telling, and an archived or removed signal has no reporter to tell.
            told = _by_registration(
                [r for r in repo.signals_by_id(session, disclosed) if r.oin != caller.oin]
            )
            form = Form(str(made.objects.get("form", Form.PERSON.value)))
            veilig_thuis = repo.organisation_contact(session, caller.oin)
            payload = feedback_payload(consultation_id, form, code, veilig_thuis)
            accessor = audit_log.by(caller)
            notifications = []
            for recipient in told:
                notification_id = str(uuid.uuid4())
                audit_log.append(
                    session,
                    audit_log.new_event(
                        Action.NOTIFICATION_CREATED,
                        Outcome.SUCCESS,
                        now,
                        organisation=recipient.oin,
                        actor="veilig_thuis",
                        objects={
                            "notification": notification_id,
                            "consultation": consultation_id,
                            "signal": recipient.id,
                            "type": NotificationType.SAFETY_FEEDBACK.value,
                        },
                    ),
                )
                notifications.append(
                    repo.NewNotification(
                        id=notification_id,
                        oin=recipient.oin,
                        local_ref=recipient.local_ref,
                        type=NotificationType.SAFETY_FEEDBACK.value,
                        match_id=consultation_id,
                        created_at=now,
                        payload=payload,
                        recipient=recipient.id,
                    )
                )
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.CONSULTATION_FEEDBACK,
                    Outcome.SUCCESS,
                    now,
                    objects={
                        "consultation": consultation_id,
                        "code": code.value,
                        "notified": len(notifications),
                    },
                    **accessor,
                ),
            )
            repo.insert_notifications(session, notifications)
        return Feedback(consultation_id, code, len(notifications))
