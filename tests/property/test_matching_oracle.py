"""Random register/withdraw sequences: the persisted matches and every organisation's
notifications equal what a brute-force oracle computes from the sequence alone.

The oracle is written from the rules in DESIGN.md and vir.domain.matching's docstring,
not from the implementation: groups are found by filtering all active signals for
each candidate key, qualification by looking at every pair, and notifications by
comparing each key's match before and after each step.

The household rule (DESIGN.md §3): a parent belongs to the young person. Parent Q's
group holds every active signal about a young person of whom *any* active signal
names Q as parent, and the signals about Q herself; a signal that is still
registered but loses its link (the only signal naming Q went) leaves the match and
is told so, with the match shown inactive.

Coordinators (vir.domain.coordination, docs/matching.md): each example draws the
region's rules (or none: the defaults). A new match is coordinated by the member whose
organisation's category ranks first in the rules, ties to the earliest registered,
without an eligible member by the earliest; the coordinator stays while its signal is
in the match, and when it leaves the rules choose again and every member is told
(``match.coordinator``). Every notification showing an active match names the
coordinator's organisation, and after every step each active match has exactly one
coordinator: an active member, the one the oracle expects.

Handover (vir.services.matchregie): the coordinator offers the role to another
participating organisation (its earliest signal in the match is told), which accepts
(the role moves, everyone is told) or declines (the coordinator is told). An offer to
its own organisation or to one outside the match is refused and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from support import postgres
from support.instore import T0, Store, fresh_store, template

from vir.crypto import oprf
from vir.domain.coordination import DEFAULT_RULES
from vir.domain.errors import Conflict, InputError, NotFound
from vir.domain.signals import Professional, WithdrawalReason
from vir.services.coordination import set_rules
from vir.services.epochs import EpochBook
from vir.services.matchregie import Matchregie
from vir.services.signals import SignalRequest, SignalService
from vir.store.tables import (
    ArchivedSignalRow,
    ArchiveOfferRow,
    ExcludedAddressRow,
    MatchMemberRow,
    MatchRow,
    NotificationRow,
    SignalRow,
)

N_ORGS = 3
# The organisations' categories (support.instore.ORGS): school, GP, youth care.
CATEGORIES = {0: "education", 1: "gp", 2: "youth_care"}
# Rules an example may draw: None is the defaults (youth care, then the GP; the school
# only reports); the others put the GP first, let the school coordinate, or leave no
# member eligible (the earliest signal coordinates).
RULES = st.sampled_from(
    [None, ("gp", "youth_care"), ("education",), ("youth_care",), ("police", "halt")]
)
PEOPLE = [oprf.hash_to_group(f"person-{i}".encode()) for i in range(5)]  # 0..3 young, 4 adult
ADDRESSES = [oprf.hash_to_group(f"address-{i}".encode()) for i in range(3)]
EXCLUDED = ADDRESSES[2]


@dataclass(frozen=True)
class Sig:
    ref: str
    org: int
    person: int
    parents: frozenset[int]
    address: int | None


def candidates(active: list[Sig]) -> Iterator[tuple[str, int]]:
    for i in range(len(PEOPLE)):
        yield ("person", i)
        yield ("parent", i)
    for a in range(len(ADDRESSES)):
        yield ("address", a)


def members(key: tuple[str, int], active: list[Sig]) -> list[Sig]:
    via, k = key
    if via == "person":
        return [s for s in active if s.person == k]
    if via == "parent":
        children = {s.person for s in active if k in s.parents}
        return [s for s in active if s.person == k or s.person in children]
    return [s for s in active if s.address == k and ADDRESSES[k] != EXCLUDED]


def is_match(key: tuple[str, int], group: list[Sig]) -> bool:
    if key[0] == "person":
        return any(a.org != b.org for a, b in itertools.combinations(group, 2))
    return any(a.org != b.org and a.person != b.person for a, b in itertools.combinations(group, 2))


def expected_matches(active: list[Sig]) -> dict[tuple[str, int], frozenset[str]]:
    found = {}
    for key in candidates(active):
        group = members(key, active)
        if is_match(key, group):
            found[key] = frozenset(s.ref for s in group)
    return found


def ticking() -> Callable[[], dt.datetime]:
    """A clock a second later at every reading: signals register in the order of the
    operations, so "the earliest signal" is the oracle's first, not a tie."""
    seconds = itertools.count()
    return lambda: T0 + dt.timedelta(seconds=next(seconds))


def configure(store: Store, rules: tuple[str, ...] | None) -> tuple[str, ...]:
    """Give the store's region ``rules`` (None: leave the defaults); the rules in effect."""
    if rules is None:
        return tuple(c.value for c in DEFAULT_RULES)
    from vir.domain.organisations import Category

    set_rules(store.db, "Rotterdam", [Category(c) for c in rules], T0)
    return rules


@dataclass
class Oracle:
    active: list[Sig] = field(default_factory=list)
    generation: dict[tuple[str, int], int] = field(default_factory=dict)
    archive: list[Sig] = field(default_factory=list)
    offered: set[tuple[str, int]] = field(default_factory=set)  # (archived ref, organisation)
    rules: tuple[str, ...] = tuple(c.value for c in DEFAULT_RULES)
    coordinator: dict[tuple[str, int], str] = field(default_factory=dict)  # key -> ref

    def choose(self, refs: frozenset[str], by_ref: dict[str, Sig]) -> str:
        """The rules' coordinator among a match's members; refs r0, r1, ... are in
        registration order."""
        order = sorted(refs, key=lambda r: int(r[1:]))
        eligible = [r for r in order if CATEGORIES[by_ref[r].org] in self.rules]
        if not eligible:
            return order[0]
        return min(eligible, key=lambda r: self.rules.index(CATEGORIES[by_ref[r].org]))

    def archived(self, signal: Sig) -> None:
        self.archive.append(signal)

    def historical(self, new: Sig) -> list[tuple[object, ...]]:
        """An organisation newly registering a person is offered, once, others' archived
        signals on that person (DESIGN.md §3)."""
        fresh = [
            a
            for a in self.archive
            if a.person == new.person and a.org != new.org and (a.ref, new.org) not in self.offered
        ]
        self.offered |= {(a.ref, new.org) for a in fresh}
        if not fresh:
            return []
        instance = ("historical", frozenset(a.ref for a in fresh))
        others = tuple(sorted(a.org for a in fresh))
        return [(new.org, new.ref, "match.historical", instance, others, False, None)]

    def handover(self, key: tuple[str, int], target: str, accept: bool) -> list[tuple[object, ...]]:
        """The coordinator of ``key``'s match offers the role to the signal ``target``,
        which accepts or declines: the notifications expected."""
        members = expected_matches(self.active)[key]
        by_ref = {s.ref: s for s in self.active}
        instance = (key, self.generation[key])
        offering = self.coordinator[key]

        def note(ref: str, kind: str, lead: str) -> tuple[object, ...]:
            org = by_ref[ref].org
            others = tuple(sorted(by_ref[r].org for r in members if by_ref[r].org != org))
            return (org, ref, kind, instance, others, True, by_ref[lead].org)

        told = [note(target, "match.handover_offered", offering)]
        if not accept:
            return [*told, note(offering, "match.handover_declined", offering)]
        self.coordinator[key] = target
        return told + [note(ref, "match.coordinator", target) for ref in members]

    def step(self, new_active: list[Sig]) -> list[tuple[object, ...]]:
        """Expected notifications: (org, local_ref, type, match instance, other orgs,
        whether the recipient sees the match active, the coordinator's organisation
        shown: None on an inactive match)."""
        before, after = expected_matches(self.active), expected_matches(new_active)
        by_ref = {s.ref: s for s in self.active + new_active}
        out: list[tuple[object, ...]] = []
        for key in set(before) | set(after):
            b, a = before.get(key), after.get(key)
            if b == a:
                continue
            if b is None:
                self.generation[key] = self.generation.get(key, 0) + 1
            instance = (key, self.generation[key])
            changed = False
            if a is None:
                self.coordinator.pop(key, None)
            elif b is None or self.coordinator[key] not in a:
                self.coordinator[key] = self.choose(a, by_ref)
                changed = b is not None
            lead = by_ref[self.coordinator[key]].org if a is not None else None

            def note(
                ref: str,
                kind: str,
                shown: frozenset[str],
                active: bool = True,
                instance: object = instance,
                lead: int | None = lead,
            ) -> None:
                org = by_ref[ref].org
                others = tuple(sorted(by_ref[r].org for r in shown if by_ref[r].org != org))
                out.append((org, ref, kind, instance, others, active, lead if active else None))

            registered = {s.ref for s in new_active}

            if b is None and a is not None:
                for ref in a:
                    note(ref, "match.created", a)
            elif b is not None and a is not None:
                for ref in a - b:
                    note(ref, "match.created", a)
                    for old in b & a:
                        if by_ref[old].org != by_ref[ref].org:
                            note(old, "match.joined", a)
                for ref in b - a:
                    if ref in registered:  # out of the match, yet registered: told
                        note(ref, "match.left", a, active=False)
                    for old in b & a:
                        if by_ref[old].org != by_ref[ref].org:
                            note(old, "match.left", a)
            elif b is not None:
                still = b & registered
                for ref in still:
                    note(ref, "match.left", still, active=False)
            if changed and a is not None:
                for ref in a:  # everyone in the match is told who coordinates now
                    note(ref, "match.coordinator", a)
        self.active = new_active
        # One notification per recipient, type and match, however many signals joined or
        # left it in the step (one step can take several out: a parent link went).
        return sorted(set(out), key=repr)


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("register"),
            st.integers(0, N_ORGS - 1),
            st.integers(0, 3),
            st.frozensets(st.integers(0, 4), max_size=2),
            st.one_of(st.none(), st.integers(0, len(ADDRESSES) - 1)),
        ),
        st.tuples(
            st.just("withdraw"),
            st.integers(0, N_ORGS - 1),
            st.integers(0, 3),
            st.sampled_from([WithdrawalReason.RISK_ENDED, WithdrawalReason.UNJUSTIFIED]),
        ),
        # The coordinator of one of the active matches (which: the integer, modulo their
        # number) offers the role to an organisation, which accepts or declines.
        st.tuples(
            st.just("handover"), st.integers(0, 7), st.integers(0, N_ORGS - 1), st.booleans()
        ),
    ),
    min_size=1,
    max_size=14,
)


def _match_id(store: Store, key: tuple[str, int]) -> str:
    """The active match of an oracle key."""
    via, k = key
    pool = ADDRESSES if via == "address" else PEOPLE
    with store.db.read() as session:
        found = session.scalar(
            select(MatchRow.id).where(
                MatchRow.via == via, MatchRow.key == pool[k], MatchRow.ended_at.is_(None)
            )
        )
    assert found is not None
    return str(found)


def handover_op(
    store: Store,
    regie: Matchregie,
    oracle: Oracle,
    op: tuple[object, ...],
) -> list[tuple[object, ...]]:
    """Run a ``("handover", pick, target organisation, accept)`` operation on the service
    and the oracle; the notifications the oracle expects of it."""
    _, pick, target_org, accept = op
    assert isinstance(pick, int) and isinstance(target_org, int) and isinstance(accept, bool)
    keys = sorted(oracle.coordinator)
    if not keys:
        return []
    key = keys[pick % len(keys)]
    match_id = _match_id(store, key)
    by_ref = {s.ref: s for s in oracle.active}
    lead_org = by_ref[oracle.coordinator[key]].org
    targets = sorted(
        (r for r in expected_matches(oracle.active)[key] if by_ref[r].org == target_org),
        key=lambda r: int(r[1:]),
    )
    to = str(store.caller(target_org).oin)
    if target_org == lead_org or not targets:
        with pytest.raises(InputError):
            regie.offer(store.caller(lead_org), match_id, to)
        return []
    regie.offer(store.caller(lead_org), match_id, to)
    regie.answer(store.caller(target_org), match_id, accept)
    return oracle.handover(key, targets[0], accept)


_TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="vir-oracle-"))


def _service_notifications(store: Store, after_seq: int) -> tuple[list[tuple[object, ...]], int]:
    orgs = {str(store.caller(i).oin): i for i in range(N_ORGS)}
    with store.db.read() as session:
        rows = session.scalars(
            select(NotificationRow)
            .where(NotificationRow.seq > after_seq)
            .order_by(NotificationRow.seq)
        ).all()
        got = []
        for row in rows:
            payload = json.loads(row.payload)
            others = tuple(sorted(orgs[p["organisation"]["oin"]] for p in payload["participants"]))
            lead = payload.get("coordinator")
            got.append(
                (
                    orgs[row.oin],
                    row.local_ref,
                    row.type,
                    row.match_id,
                    others,
                    payload["active"],
                    None if lead is None else orgs[lead["organisation"]["oin"]],
                )
            )
        return got, (rows[-1].seq if rows else after_seq)


def check_coordinators(store: Store, oracle: Oracle) -> None:
    """Every active match has exactly one coordinator: an active member of it, the
    signal the oracle expects for its key."""
    with store.db.read() as session:
        matches = session.execute(
            select(MatchRow.id, MatchRow.via, MatchRow.key, MatchRow.coordinator).where(
                MatchRow.ended_at.is_(None)
            )
        ).all()
        members = session.execute(select(MatchMemberRow.match_id, MatchMemberRow.signal_id)).all()
        ref_of = dict(session.execute(select(SignalRow.id, SignalRow.local_ref)).all())
    of_match: dict[str, set[str]] = {}
    for match_id, signal_id in members:
        of_match.setdefault(match_id, set()).add(signal_id)
    found = {}
    for match_id, via, key, coordinator in matches:
        assert coordinator in of_match[match_id], "the coordinator is an active member"
        pool = ADDRESSES if via == "address" else PEOPLE
        found[(via, pool.index(key))] = ref_of[coordinator]
    assert found == oracle.coordinator


def _offer(store: Store, offer_id: str) -> object:
    """An archive offer named by the local references of the archived signals it offered."""
    with store.db.read() as session:
        refs = session.scalars(
            select(ArchivedSignalRow.local_ref)
            .join(ArchiveOfferRow, ArchiveOfferRow.archived_signal_id == ArchivedSignalRow.id)
            .where(ArchiveOfferRow.notification_id == offer_id)
        ).all()
    return ("historical", frozenset(refs))


def _instance(store: Store, match_id: str, oracle: Oracle) -> object:
    with store.db.read() as session:
        match = session.get(MatchRow, match_id)
        assert match is not None and match.key is not None
        pool = ADDRESSES if match.via == "address" else PEOPLE
        key = (match.via, pool.index(match.key))
    return (key, oracle.generation[key])


# Random sequences per oracle test: the profile's number on SQLite, half of it on
# PostgreSQL. The matching under test is the same on both; what PostgreSQL adds (its SQL,
# its locks) every sequence exercises, and the pinned examples run on both in full.
EXAMPLES = settings().max_examples // (2 if postgres.on_postgresql() else 1)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations, rules=RULES)
# The household rule's own cases, always run. Person 4 is the mother of 0, 1 and 2.
# School (0) names her for child 0, the GP (1) registers child 0 without parents,
# youth care (2) registers sibling 1 with her: one household of three organisations.
# The GP also registers sibling 2 with her, so when the school withdraws the household
# continues while the GP's signal on child 0 leaves it (and is told); youth care then
# names her for child 0 and that signal comes back.
@example(
    ops=[
        ("register", 0, 0, frozenset({4}), None),
        ("register", 1, 0, frozenset(), None),
        ("register", 2, 1, frozenset({4}), None),
        ("register", 1, 2, frozenset({4}), None),
        ("withdraw", 0, 0, WithdrawalReason.RISK_ENDED),
        ("register", 2, 0, frozenset({4}), None),
        ("withdraw", 2, 0, WithdrawalReason.UNJUSTIFIED),
        ("withdraw", 1, 2, WithdrawalReason.UNJUSTIFIED),
    ],
    rules=None,
)
# The other order: the GP first, the link appears with the school's signal and goes
# with it, ending the household.
@example(
    ops=[
        ("register", 1, 0, frozenset(), None),
        ("register", 2, 1, frozenset({4}), None),
        ("register", 0, 0, frozenset({4}), None),
        ("withdraw", 0, 0, WithdrawalReason.UNJUSTIFIED),
    ],
    rules=None,
)
# Coordinators: the school and the GP match on child 0 (the GP coordinates); youth care
# joins and the GP stays; the GP withdraws and youth care takes over, all told. With the
# school first in the rules it coordinates throughout, and with no member eligible the
# earliest signal does.
@example(
    ops=[
        ("register", 0, 0, frozenset(), None),
        ("register", 1, 0, frozenset(), None),
        ("register", 2, 0, frozenset(), None),
        ("withdraw", 1, 0, WithdrawalReason.UNJUSTIFIED),
        ("withdraw", 0, 0, WithdrawalReason.RISK_ENDED),
    ],
    rules=None,
)
@example(
    ops=[
        ("register", 1, 0, frozenset(), None),
        ("register", 0, 0, frozenset(), None),
        ("register", 2, 0, frozenset(), None),
        ("withdraw", 1, 0, WithdrawalReason.UNJUSTIFIED),
    ],
    rules=("police", "halt"),
)
# A handover declined, one accepted; the new coordinator stays when youth care (first by
# the rules) joins, and when it withdraws the rules choose youth care.
@example(
    ops=[
        ("register", 0, 0, frozenset(), None),
        ("register", 1, 0, frozenset(), None),
        ("handover", 0, 0, False),
        ("handover", 0, 0, True),
        ("handover", 0, 2, True),
        ("register", 2, 0, frozenset(), None),
        ("withdraw", 0, 0, WithdrawalReason.UNJUSTIFIED),
    ],
    rules=None,
)
def test_persisted_matches_and_notifications_equal_the_oracle(
    ops: list[tuple[object, ...]], rules: tuple[str, ...] | None, tmp_path: Path
) -> None:
    # A new file per example: the test function's tmp_path is shared by all examples.
    database = Path(tempfile.mkdtemp(dir=tmp_path)) / "db.sqlite"
    with fresh_store(template(_TEMPLATE_DIR), database) as store:
        with store.db.write() as session:
            session.add(ExcludedAddressRow(address=EXCLUDED, label="shelter", created_at=T0))
        clock = ticking()
        service = SignalService(store.db, clock, EpochBook(store.db))
        regie = Matchregie(store.db, clock)
        oracle = Oracle(rules=configure(store, rules))
        active: list[Sig] = []
        seq = 0
        counter = itertools.count()
        instance_of: dict[str, object] = {}  # service match id -> oracle instance
        for op in ops:
            extra: list[tuple[object, ...]] = []
            if op[0] == "register":
                _, org, person, parents, address = op
                parents = frozenset(p for p in parents if p != person)
                ref = f"r{next(counter)}"
                request = SignalRequest(
                    ref,
                    1,
                    PEOPLE[person],
                    tuple(PEOPLE[p] for p in sorted(parents)),
                    ADDRESSES[address] if address is not None else None,
                    None,
                    Professional("Anna", "anna@example.nl"),
                )
                if any(s.org == org and s.person == person for s in active):
                    with pytest.raises(Conflict):
                        service.register(store.caller(org), request)
                    new_active = active
                else:
                    service.register(store.caller(org), request)
                    new = Sig(ref, org, person, parents, address)
                    new_active = [*active, new]
                    extra = oracle.historical(new)
            elif op[0] == "handover":
                extra = handover_op(store, regie, oracle, op)
                new_active = active
            else:
                _, org, person, reason = op
                target = next((s for s in active if s.org == org and s.person == person), None)
                if target is None:
                    with pytest.raises(NotFound):
                        service.withdraw(
                            store.caller(org), f"absent-{person}", WithdrawalReason.UNJUSTIFIED
                        )
                    new_active = active
                else:
                    service.withdraw(store.caller(org), target.ref, reason)
                    new_active = [s for s in active if s is not target]
                    if reason is WithdrawalReason.RISK_ENDED:
                        oracle.archived(target)
            expected = sorted(oracle.step(new_active) + extra, key=repr)
            got, seq = _service_notifications(store, seq)
            # Name each service match by its key (read while the match is new) and the
            # oracle's generation of that key, so both sides speak of the same instance.
            mapped = []
            for org, ref, kind, match_id, others, active, lead in got:
                if kind == "match.historical":
                    instance_of[match_id] = _offer(store, match_id)
                if match_id not in instance_of:
                    instance_of[match_id] = _instance(store, match_id, oracle)
                mapped.append((org, ref, kind, instance_of[match_id], others, active, lead))
            assert sorted(mapped, key=repr) == expected
            check_coordinators(store, oracle)
            active = new_active

        # The persisted active matches are exactly the oracle's, member for member.
        with store.db.read() as session:
            rows = session.execute(
                select(MatchRow.id, MatchMemberRow.signal_id)
                .join(MatchMemberRow, MatchMemberRow.match_id == MatchRow.id)
                .where(MatchRow.ended_at.is_(None))
            ).all()
            ref_of = dict(session.execute(select(SignalRow.id, SignalRow.local_ref)).all())
        persisted: dict[str, set[str]] = {}
        for match_id, signal_id in rows:
            persisted.setdefault(match_id, set()).add(ref_of[signal_id])
        assert sorted(map(sorted, persisted.values())) == sorted(
            map(sorted, expected_matches(active).values())
        )
