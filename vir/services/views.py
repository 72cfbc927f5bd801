"""What the services answer with: frozen records of what happened, never wire JSON.

The routes render these through their response models (``vir.api.schemas``). One
thing is stored as JSON: a notification's match as its recipient saw it.
``match_payload`` writes it, in the shape of the wire's ``<match>``
(API-CONTRACT.md), so the API's ``MatchOut`` reads it back as it is.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Literal

from vir.domain import functions
from vir.domain.matching import Via
from vir.domain.signals import Professional
from vir.store.audit_log import rfc3339
from vir.store.records import OrganisationContact, Signal

Kind = Literal["person", "household"]
ViaName = Literal["person", "parent", "address"]
_VIA_NAMES: dict[Via, ViaName] = {
    Via.PERSON: "person",
    Via.PARENT: "parent",
    Via.ADDRESS: "address",
}


@dataclass(frozen=True, slots=True)
class Participant:
    """One reporter as match partners (or Veilig Thuis) see it: organisation, professional,
    coordinator, since when; ``archived_on`` for an archived signal."""

    organisation: OrganisationContact
    professional: Professional
    since: dt.datetime
    archived_on: dt.date | None = None


@dataclass(frozen=True, slots=True)
class MatchView:
    """A match as one organisation sees it: the *other* organisations, never a pseudonym;
    ``coordinator`` is whoever coordinates it (the organisation itself, perhaps), shown
    as a participant is, while the match is active."""

    id: str
    via: Via
    active: bool
    participants: tuple[Participant, ...]
    historical: bool = False
    coordinator: Participant | None = None

    @property
    def kind(self) -> Kind:
        return "person" if self.via is Via.PERSON else "household"

    @property
    def via_name(self) -> ViaName:
        return _VIA_NAMES[self.via]


@dataclass(frozen=True, slots=True)
class HandoverShown:
    """An open offer of the coordinator's role, between two participating organisations."""

    from_organisation: OrganisationContact
    to_organisation: OrganisationContact
    offered_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FollowUpShown:
    """One follow-up event: which organisation recorded what, when; ``with_organisation``
    for a contact made, None for the coordinator's plan and care."""

    organisation: OrganisationContact
    event: str
    with_organisation: OrganisationContact | None
    recorded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class MatchDetail:
    """One match as a participant reads it (``GET /v1/matches/{id}``): the match, an open
    handover offer and its follow-up, all content-free."""

    match: MatchView
    handover: HandoverShown | None
    follow_up: tuple[FollowUpShown, ...]


@dataclass(frozen=True, slots=True)
class SignalState:
    """One of the organisation's own active signals and its current matches."""

    signal: Signal
    matches: tuple[MatchView, ...]


@dataclass(frozen=True, slots=True)
class Registration:
    """What ``register`` did: ``created`` False for an idempotent repeat."""

    signal: Signal
    matches: tuple[MatchView, ...]
    created: bool


@dataclass(frozen=True, slots=True)
class UninformedSignal:
    """An active signal whose information duty is unconfirmed past the term."""

    signal_id: str
    organisation: OrganisationContact
    registered_at: dt.datetime
    days: int


def professional_json(p: Professional) -> dict[str, str | None]:
    """A professional as the stored match and the access report show them."""
    return {
        "name": p.name,
        "email": p.email,
        "phone": p.phone,
        "function": p.function,
        "function_label": functions.label(p.function),
    }


def _participant(p: Participant) -> dict[str, object]:
    c = p.organisation.coordinator
    shown: dict[str, object] = {
        "organisation": {"oin": p.organisation.oin, "name": p.organisation.name},
        "professional": professional_json(p.professional),
        "coordinator": None if c is None else {"name": c.name, "email": c.email, "phone": c.phone},
        "since": rfc3339(p.since),
    }
    if p.archived_on is not None:
        shown["archived_on"] = p.archived_on.isoformat()
    return shown


def match_payload(view: MatchView) -> str:
    """The stored JSON of a notification's match: the wire's ``<match>``, compact."""
    shown: dict[str, object] = {
        "id": view.id,
        "kind": view.kind,
        "via": view.via.value,
        "active": view.active,
    }
    if view.historical:
        shown["historical"] = True
    shown["participants"] = [_participant(p) for p in view.participants]
    if not view.historical:
        shown["coordinator"] = None if view.coordinator is None else _participant(view.coordinator)
    return json.dumps(shown, separators=(",", ":"), ensure_ascii=False)
