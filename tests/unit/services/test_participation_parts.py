"""The participation monitor keeps each organisation's part in each match on disk
(``_Parts``), so that its memory stays flat: its outcomes and medians equal those of
the whole lists in memory (the way the monitor computed them before), for any log.
A contact recorded with another organisation is contact for both (mutual, as on the
follow-up officer's list); a region's matches count once each, with the outcome of
the region's participants together."""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.domain.coordination import FollowUp
from vir.services import participation
from vir.store import audit_log

pytestmark = pytest.mark.sqlite_only(
    "the monitor's figures from a list of entries, in a temporary SQLite file: no database"
)

ORGS = [f"0000000900000000010{n}" for n in range(4)]
T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
HIGH = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)

# Whole days mostly, so that a contact falls exactly on the term's end; now and then a
# microsecond either side of one.
moments = st.tuples(st.integers(0, 30), st.sampled_from([0, 0, 0, -1, 1])).map(
    lambda t: max(0, t[0] * 86400 * 10**6 + t[1])
)
# The organisation a contact was recorded with: one of ORGS, another (not reporting),
# or none ("-", as the audit log writes it).
partners = st.sampled_from([*range(len(ORGS)), -1, -1, -2])
# (organisation, what, match, microseconds after T0, with whom): a member added, a
# contact made, another follow-up, a registration, or a refused entry, in any order.
noise = st.lists(
    st.tuples(
        st.integers(0, len(ORGS) - 1),
        st.sampled_from(["joined", "contact", "other", "signal", "refused"]),
        st.integers(0, 5),
        moments,
        partners,
    ),
    max_size=20,
)
# An organisation joins a match, and makes contact some days later (or does not).
pairs = st.lists(
    st.tuples(
        st.integers(0, len(ORGS) - 1),
        st.integers(0, 5),
        moments,
        st.none() | moments,
        partners,
    ),
    max_size=30,
)
Step = tuple[int, str, int, int, int]


@st.composite
def steps(draw: st.DrawFn) -> list[Step]:
    joins, contacts = [], []
    for org, match, joined, took, partner in draw(pairs):
        joins.append((org, "joined", match, joined, -1))
        if took is not None:
            contacts.append((org, "contact", match, joined + took, partner))
    mixed = draw(st.permutations(draw(noise) + contacts))
    return joins + mixed


def _with(partner: int) -> str:
    return {-1: "-", -2: "00000009000000000999"}.get(partner) or ORGS[partner]


def _events(drawn: list[Step]) -> list[AuditEvent]:
    made = []
    for org, what, match, micros, partner in drawn:
        action, objects, outcome = {
            "joined": (Action.MATCH_MEMBER_ADDED, {}, Outcome.SUCCESS),
            "contact": (
                Action.MATCH_FOLLOW_UP_RECORDED,
                {"event": FollowUp.CONTACT_MADE.value, "with": _with(partner)},
                Outcome.SUCCESS,
            ),
            "other": (
                Action.MATCH_FOLLOW_UP_RECORDED,
                {"event": FollowUp.PLAN_AGREED.value},
                Outcome.SUCCESS,
            ),
            "signal": (Action.SIGNAL_REGISTERED, {}, Outcome.SUCCESS),
            "refused": (Action.MATCH_MEMBER_ADDED, {}, Outcome.REFUSED),
        }[what]
        made.append(
            AuditEvent(
                event_id=str(uuid.uuid4()),
                occurred_at=audit_log.rfc3339(T0 + dt.timedelta(microseconds=micros)),
                action=action.value,
                outcome=outcome,
                organisation=ORGS[org],
                objects={"match": f"m{match}", **objects},
            )
        )
    return made


Joined = dict[str, dict[str, list[dt.datetime | None]]]


def _oracle(
    events: list[AuditEvent], days: int
) -> tuple[dict[str, tuple[Counter[str], list[float]]], Joined]:
    """The monitor's figures as it computed them in memory: per organisation, the first
    joining and first contact of each match, then the outcomes and the days; and those
    first joinings and contacts."""
    high = audit_log.rfc3339(HIGH)
    joined: Joined = {oin: {} for oin in ORGS}
    for event in events:
        oin = event.organisation
        assert oin is not None
        if event.outcome != Outcome.SUCCESS:
            continue
        moment = dt.datetime.fromisoformat(event.occurred_at.replace("Z", "+00:00"))
        match = str(event.objects["match"])
        if event.action == Action.MATCH_FOLLOW_UP_RECORDED:
            if event.objects.get("event") != "contact_made":
                continue
            # Mutual: the recorder and the one it recorded contact with.
            for party in {oin, str(event.objects["with"])}:
                part = joined.get(party, {}).get(match)
                if part is not None and part[1] is None:
                    part[1] = moment
        elif event.occurred_at >= high:
            continue
        elif event.action == Action.MATCH_MEMBER_ADDED and match not in joined[oin]:
            joined[oin][match] = [moment, None]
    term = dt.timedelta(days=days)
    found = {}
    for oin, parts in joined.items():
        counts: Counter[str] = Counter(dict.fromkeys(participation.OUTCOMES, 0))
        waited = []
        for first, contact in parts.values():
            assert first is not None
            if contact is not None:
                took = contact - first
                counts["within" if took <= term else "later"] += 1
                waited.append(took.total_seconds() / 86400)
            else:
                counts["none" if NOW - first > term else "pending"] += 1
        found[oin] = (counts, waited)
    return found, joined


def _region_oracle(joined: Joined, oins: list[str], days: int) -> tuple[Counter[str], list[float]]:
    """A region's matches (of ``oins``), each once: contact (within or later, by the
    slowest of them) when each of its participants had contact, else no contact, term
    passed, when one without contact has passed its term, else pending."""
    term = dt.timedelta(days=days)
    matches: dict[str, list[list[dt.datetime | None]]] = {}
    for oin in oins:
        for match, part in joined[oin].items():
            matches.setdefault(match, []).append(part)
    counts: Counter[str] = Counter(dict.fromkeys(participation.OUTCOMES, 0))
    slowest = []
    for parts in matches.values():
        waiting = [first for first, contact in parts if contact is None]
        if waiting:
            passed = any(NOW - first > term for first in waiting if first is not None)
            counts["none" if passed else "pending"] += 1
            continue
        took = max(contact - first for first, contact in parts if first and contact)
        counts["within" if took <= term else "later"] += 1
        slowest.append(took.total_seconds() / 86400)
    return counts, slowest


def _median(values: list[float]) -> float | None:
    return round(float(statistics.median(values)), 1) if values else None


@settings(max_examples=300, deadline=None)
@given(drawn=steps(), days=st.integers(1, 20), subset=st.sets(st.integers(0, len(ORGS) - 1)))
def test_outcomes_and_medians_equal_the_whole_lists_in_memory(
    drawn: list[Step], days: int, subset: set[int]
) -> None:
    events = _events(drawn)
    expected, joined = _oracle(events, days)
    with participation._Parts() as parts:
        figures = participation._collect(
            iter(events), frozenset(ORGS), audit_log.rfc3339(HIGH), parts
        )
        for oin in ORGS:
            counts, waited = expected[oin]
            assert parts.outcomes(oin, days, NOW).counts == counts
            assert parts.median_days([oin]) == _median(waited)
        chosen = [ORGS[i] for i in sorted(subset)]
        assert parts.median_days(chosen) == _median([d for oin in chosen for d in expected[oin][1]])
        counts, slowest = _region_oracle(joined, chosen, days)
        assert parts.region_outcomes(chosen, days, NOW).counts == counts
        assert parts.region_median_days(chosen) == _median(slowest)
    signals = Counter(
        e.organisation
        for e in events
        if e.action == Action.SIGNAL_REGISTERED and e.occurred_at < audit_log.rfc3339(HIGH)
    )
    assert {oin: f.signals for oin, f in figures.items()} == {oin: signals[oin] for oin in ORGS}
