"""Several signals removed at once, as a lifecycle batch removes them
(``removal.remove_many``): the persisted matches and every organisation's
notifications equal the brute-force oracle of ``test_matching_oracle``, which takes
the whole batch as one step (one notification per recipient, type and match).
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from property.test_matching_oracle import (
    ADDRESSES,
    EXAMPLES,
    EXCLUDED,
    N_ORGS,
    PEOPLE,
    RULES,
    Oracle,
    Sig,
    _instance,
    _offer,
    _service_notifications,
    check_coordinators,
    configure,
    expected_matches,
    ticking,
)
from sqlalchemy import select
from support.instore import T0, fresh_store, template

from vir.domain.errors import Conflict
from vir.domain.lifecycle import ArchiveReason
from vir.domain.signals import Professional
from vir.services import removal
from vir.services.epochs import EpochBook
from vir.services.signals import SignalRequest, SignalService
from vir.store import signals as repo
from vir.store.tables import ExcludedAddressRow, MatchMemberRow, MatchRow, SignalRow

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
            st.just("expire"),
            st.frozensets(
                st.tuples(st.integers(0, N_ORGS - 1), st.integers(0, 3)), min_size=1, max_size=4
            ),
        ),
    ),
    min_size=1,
    max_size=14,
)

_TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="vir-removal-oracle-"))


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations, rules=RULES)
# Person 4 is the mother of 0, 1 and 2. The school names her for child 0, the GP
# registers child 0 without parents, youth care and the GP register siblings 1 and 2
# with her. The school's signal and youth care's on sibling 1 expire together: the GP's
# signal on child 0 leaves the household (its link went with the school's), which
# goes on with the GP on 2 alone, so it ends; the person match on child 0 ends too.
@example(
    ops=[
        ("register", 0, 0, frozenset({4}), None),
        ("register", 1, 0, frozenset(), None),
        ("register", 2, 1, frozenset({4}), None),
        ("register", 1, 2, frozenset({4}), None),
        ("expire", frozenset({(0, 0), (2, 1)})),
    ],
    rules=None,
)
# Two of three organisations on one child leave together; the third is told once.
@example(
    ops=[
        ("register", 0, 0, frozenset(), 0),
        ("register", 1, 0, frozenset(), 0),
        ("register", 2, 0, frozenset(), 1),
        ("register", 2, 3, frozenset(), 0),
        ("expire", frozenset({(0, 0), (1, 0)})),
    ],
    rules=None,
)
# Youth care coordinates the household at address 0 (the school and youth care on
# child 0, the GP and the school on child 1); youth care's signal and the school's on
# child 1 expire together: the household goes on, the GP takes over and all are told.
@example(
    ops=[
        ("register", 0, 0, frozenset(), 0),
        ("register", 2, 0, frozenset(), 0),
        ("register", 1, 1, frozenset(), 0),
        ("register", 0, 1, frozenset(), 0),
        ("expire", frozenset({(2, 0), (0, 1)})),
    ],
    rules=None,
)
def test_a_batch_of_removals_equals_the_oracle(
    ops: list[tuple[object, ...]], rules: tuple[str, ...] | None, tmp_path: Path
) -> None:
    database = Path(tempfile.mkdtemp(dir=tmp_path)) / "db.sqlite"
    with fresh_store(template(_TEMPLATE_DIR), database) as store:
        with store.db.write() as session:
            session.add(ExcludedAddressRow(address=EXCLUDED, label="shelter", created_at=T0))
        clock = ticking()
        service = SignalService(store.db, clock, EpochBook(store.db))
        oracle = Oracle(rules=configure(store, rules))
        active: list[Sig] = []
        seq = 0
        counter = itertools.count()
        instance_of: dict[str, object] = {}
        for op in ops:
            extra: list[tuple[object, ...]] = []
            if op[0] == "register":
                _, org, person, parents, address = op
                assert isinstance(org, int) and isinstance(person, int)
                assert isinstance(parents, frozenset)
                assert address is None or isinstance(address, int)
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
            else:
                (_, pairs) = op
                assert isinstance(pairs, frozenset)
                leaving = [s for s in active if (s.org, s.person) in pairs]
                with store.db.write() as session:
                    rows = [
                        row
                        for s in leaving
                        if (row := repo.signal_by_ref(session, str(store.caller(s.org).oin), s.ref))
                    ]
                    outcomes = removal.remove_many(
                        session,
                        rows,
                        clock(),
                        ArchiveReason.EXPIRED,
                        lambda row: {"organisation": row.oin, "actor": "lifecycle"},
                    )
                assert outcomes == [removal.ARCHIVED] * len(leaving)
                for s in leaving:
                    oracle.archived(s)
                new_active = [s for s in active if s not in leaving]
            expected = sorted(oracle.step(new_active) + extra, key=repr)
            got, seq = _service_notifications(store, seq)
            mapped = []
            for org, ref, kind, match_id, others, shown_active, lead in got:
                assert isinstance(match_id, str)
                if kind == "match.historical":
                    instance_of[match_id] = _offer(store, match_id)
                if match_id not in instance_of:
                    instance_of[match_id] = _instance(store, match_id, oracle)
                mapped.append((org, ref, kind, instance_of[match_id], others, shown_active, lead))
            assert sorted(mapped, key=repr) == expected
            check_coordinators(store, oracle)
            active = new_active

        with store.db.read() as session:
            rows_ = session.execute(
                select(MatchRow.id, MatchMemberRow.signal_id)
                .join(MatchMemberRow, MatchMemberRow.match_id == MatchRow.id)
                .where(MatchRow.ended_at.is_(None))
            ).all()
            ref_of = dict(session.execute(select(SignalRow.id, SignalRow.local_ref)).all())
        persisted: dict[str, set[str]] = {}
        for match_id, signal_id in rows_:
            persisted.setdefault(match_id, set()).add(ref_of[signal_id])
        assert sorted(map(sorted, persisted.values())) == sorted(
            map(sorted, expected_matches(active).values())
        )
