"""Taking an address off the exclusion list leaves the matches a fresh registration
would have made (``vir.services.addresses.include``).

The oracle is a store where the address was never excluded: the same signals are
registered on two stores; on one the address is excluded somewhere in between (its
household match ends, or is never made) and taken off the list at the end. The active
matches of both (how, through what, with which members) must be equal, and every
member of a household match through the address on the first store must have been
told of it as of a new match (``match.created``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from support.instore import T0, Store, fresh_store, template

from vir.crypto import oprf
from vir.domain.errors import VirError
from vir.domain.signals import Professional
from vir.services import addresses
from vir.services.epochs import EpochBook
from vir.services.signals import SignalRequest, SignalService
from vir.store.tables import MatchMemberRow, MatchRow, NotificationRow, SignalRow

N_ORGS = 3
PEOPLE = [oprf.hash_to_group(f"exclusion-person-{i}".encode()) for i in range(6)]
ADDRESSES = [oprf.hash_to_group(f"exclusion-address-{i}".encode()) for i in range(3)]
NAMES = {bytes(p): f"P{i}" for i, p in enumerate(PEOPLE)} | {
    bytes(a): f"A{i}" for i, a in enumerate(ADDRESSES)
}
CONTACT = Professional("Anna", "anna@example.nl")

# (organisation, person, parent or None, address or None)
signal = st.tuples(
    st.integers(0, N_ORGS - 1),
    st.integers(0, len(PEOPLE) - 1),
    st.one_of(st.none(), st.integers(0, len(PEOPLE) - 1)),
    st.one_of(st.none(), st.integers(0, len(ADDRESSES) - 1)),
)
signals = st.lists(signal, min_size=1, max_size=10)

Signal = tuple[int, int, int | None, int | None]


def _request(ref: str, item: Signal) -> SignalRequest:
    _org, person, parent, address = item
    parents = (PEOPLE[parent],) if parent is not None and parent != person else ()
    where = ADDRESSES[address] if address is not None else None
    return SignalRequest(ref, 1, PEOPLE[person], parents, where, None, CONTACT)


@contextmanager
def _store(folder: Path) -> Iterator[tuple[Store, SignalService]]:
    database = Path(tempfile.mkdtemp(dir=folder)) / "db.sqlite"
    with fresh_store(template(folder), database) as store:
        yield store, SignalService(store.db, lambda: T0, EpochBook(store.db))


def _register(store: Store, service: SignalService, items: list[tuple[int, Signal]]) -> None:
    for n, item in items:
        try:
            service.register(store.caller(item[0]), _request(f"s{n}", item))
        except VirError:
            continue  # the same person twice at one organisation: refused on both stores


def _active(store: Store) -> tuple[list[Any], dict[str, set[str]], dict[str, set[str]]]:
    """The active matches (via, key, members by organisation and local_ref); per active
    match id its member signal ids, and the signals told ``match.created`` of it."""
    with store.db.read() as session:
        name = {s.id: (s.oin, s.local_ref) for s in session.scalars(select(SignalRow))}
        members: dict[str, set[str]] = {}
        for match_id, signal_id in session.execute(
            select(MatchMemberRow.match_id, MatchMemberRow.signal_id)
        ):
            members.setdefault(match_id, set()).add(signal_id)
        active = [m for m in session.scalars(select(MatchRow)) if m.ended_at is None]
        told: dict[str, set[str]] = {}
        for row in session.scalars(select(NotificationRow)):
            if row.type == "match.created":
                told.setdefault(row.match_id, set()).add(
                    next(s for s, n in name.items() if n == (row.oin, row.local_ref))
                )
    found = sorted(
        (
            (
                m.via,
                NAMES[bytes(m.key)] if m.key is not None else None,
                sorted(name[s] for s in members.get(m.id, set())),
            )
            for m in active
        ),
        key=repr,
    )
    return found, {m.id: members.get(m.id, set()) for m in active}, told


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(items=signals, cut=st.integers(0, 10), excluded=st.integers(0, len(ADDRESSES) - 1))
@example(items=[(0, 0, None, 0), (1, 1, None, 0)], cut=2, excluded=0)  # a match ends
@example(items=[(0, 0, None, 0), (1, 1, None, 0)], cut=0, excluded=0)  # never made
@example(items=[(0, 0, None, 0), (1, 1, None, 0), (2, 2, None, 0)], cut=2, excluded=0)
def test_taking_an_address_off_leaves_the_matches_of_a_fresh_registration(
    tmp_path: Path, items: list[Signal], cut: int, excluded: int
) -> None:
    numbered = list(enumerate(items))
    with _store(tmp_path) as (oracle, oracle_service), _store(tmp_path) as (store, service):
        _register(oracle, oracle_service, numbered)
        _register(store, service, numbered[:cut])
        addresses.exclude(store.db, ADDRESSES[excluded], "Opvang", T0)
        _register(store, service, numbered[cut:])
        addresses.include(store.db, ADDRESSES[excluded], T0)

        expected, _, _ = _active(oracle)
        found, members, told = _active(store)
        assert found == expected
        # Every member of a household match through the address was told of it as of
        # a new match (once the exclusion is gone, the match is new to all of them).
        with store.db.read() as session:
            through = [
                m.id
                for m in session.scalars(select(MatchRow))
                if m.ended_at is None
                and m.key is not None
                and bytes(m.key) == bytes(ADDRESSES[excluded])
            ]
        for match_id in through:
            assert told.get(match_id, set()) == members[match_id]
