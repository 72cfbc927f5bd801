"""What the store hands out and takes in: frozen records, never rows or column dicts.

``vir.store.signals`` maps its rows to these (and these to its columns) in one place
each; services and routes see attributes with types, so mypy follows a request from
the route to the table and back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from vir.domain.matching import Via
from vir.domain.signals import Professional


@dataclass(frozen=True, slots=True)
class Informed:
    """The confirmation of the information duty (GDPR art. 14): when, and who was told
    (an ``InformedWho`` value as stored)."""

    on: dt.date
    who: str


@dataclass(frozen=True, slots=True)
class Signal:
    """An active signal (a row of ``signals``; its parents are in ``facts``)."""

    id: str
    oin: str
    local_ref: str
    epoch: int
    person: bytes
    address: bytes | None
    remove_on: dt.date
    professional: Professional
    content_hash: bytes
    created_at: dt.datetime
    archive_until: dt.date | None = None
    informed: Informed | None = None


@dataclass(frozen=True, slots=True)
class ArchivedSignal:
    """An archived signal (a row of ``archived_signals``): the person, the reporter and
    dates only."""

    id: str
    oin: str
    local_ref: str
    person: bytes
    professional: Professional
    registered_at: dt.datetime
    remove_on: dt.date
    archived_on: dt.date
    reason: str
    destroy_on: dt.date
    informed: Informed | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """A match; ``coordinator`` is the id of the member signal whose reporter coordinates
    it (None once it ended)."""

    id: str
    via: Via
    created_at: dt.datetime
    active: bool = True
    coordinator: str | None = None


@dataclass(frozen=True, slots=True)
class OrganisationContact:
    """An organisation as match partners and privacy officers see it: its name, category
    and (when it appointed one) its coordinator's contact details; ``region`` chooses
    the rules for a match's coordinator and is never shown."""

    oin: str
    name: str
    category: str
    coordinator: Professional | None = None
    region: str = ""


@dataclass(frozen=True, slots=True)
class StoredNotification:
    """A notification as stored: ``payload`` is the match as its recipient saw it, the
    JSON ``vir.services.views.match_payload`` wrote."""

    id: str
    oin: str
    position: int
    local_ref: str
    type: str
    match_id: str
    created_at: dt.datetime
    payload: str


@dataclass(frozen=True, slots=True)
class HandoverOffer:
    """A coordinator's open offer of the role: from its signal to another member's."""

    match_id: str
    from_signal: str
    to_signal: str
    offered_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FollowUpRecord:
    """One follow-up event of a match: organisation ``oin`` recorded ``event`` (a
    ``FollowUp`` value) at ``recorded_at``; ``with_oin`` the organisation it made
    contact with (``contact_made`` only, else empty)."""

    oin: str
    event: str
    with_oin: str
    recorded_at: dt.datetime
