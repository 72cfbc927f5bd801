"""The pure matching rules, case by case (the oracle test covers random sequences)."""

from __future__ import annotations

from vir.domain.matching import (
    GroupKey,
    Notice,
    NotificationType,
    Via,
    group_keys,
    matches,
    qualifies,
    reconcile,
)
from vir.domain.signals import SignalFacts

CHILD, SIBLING, MOTHER, GRANDMA = b"c" * 32, b"s" * 32, b"m" * 32, b"g" * 32
HOME, SHELTER = b"h" * 32, b"x" * 32
CREATED, JOINED, LEFT = NotificationType.CREATED, NotificationType.JOINED, NotificationType.LEFT


def sig(
    id_: str, oin: str, person: bytes, parents: tuple[bytes, ...] = (), address: bytes | None = None
) -> SignalFacts:
    return SignalFacts(id_, oin, person, frozenset(parents), address)


def test_person_match_needs_two_organisations() -> None:
    key = GroupKey(Via.PERSON, CHILD)
    assert not qualifies(key, [sig("a", "1", CHILD)])
    assert qualifies(key, [sig("a", "1", CHILD), sig("b", "2", CHILD)])


def test_household_needs_two_organisations_and_two_young_persons() -> None:
    key = GroupKey(Via.PARENT, MOTHER)
    same_child = [sig("a", "1", CHILD, (MOTHER,)), sig("b", "2", CHILD, (MOTHER,))]
    same_org = [sig("a", "1", CHILD, (MOTHER,)), sig("b", "1", SIBLING, (MOTHER,))]
    assert not qualifies(key, same_child)
    assert not qualifies(key, same_org)
    assert qualifies(key, [*same_org, sig("c", "2", CHILD, (MOTHER,))])


def test_young_mother_links_two_households() -> None:
    baby = sig("a", "1", CHILD, (MOTHER,))
    mother_herself = sig("b", "2", MOTHER, (GRANDMA,))
    aunt = sig("c", "3", SIBLING, (GRANDMA,))
    found = matches([baby, mother_herself, aunt])
    assert found[GroupKey(Via.PARENT, MOTHER)] == {"a", "b"}
    assert found[GroupKey(Via.PARENT, GRANDMA)] == {"b", "c"}
    # Not transitive: the baby and the aunt share no group.
    assert not any({"a", "c"} <= members for members in found.values())


def test_excluded_address_never_groups() -> None:
    a = sig("a", "1", CHILD, address=SHELTER)
    assert GroupKey(Via.ADDRESS, SHELTER) not in group_keys(a, {SHELTER})
    assert matches([a, sig("b", "2", SIBLING, address=SHELTER)], {SHELTER}) == {}
    assert matches([sig("a", "1", CHILD, address=HOME), sig("b", "2", SIBLING, address=HOME)])


KEY = GroupKey(Via.PERSON, CHILD)
ORGS = {"a": "1", "b": "2", "c": "3", "d": "1"}


def test_new_match_tells_every_member() -> None:
    assert reconcile(KEY, None, frozenset("ab"), "ab", ORGS) == [
        Notice("a", CREATED, KEY),
        Notice("b", CREATED, KEY),
    ]


def test_join_tells_the_newcomer_created_and_other_organisations_joined() -> None:
    got = reconcile(KEY, frozenset("ab"), frozenset("abd"), "abd", ORGS)
    # d is organisation 1, like a: a sees no change in the other organisations.
    assert got == [Notice("b", JOINED, KEY), Notice("d", CREATED, KEY)]


def test_leave_tells_remaining_other_organisations() -> None:
    got = reconcile(KEY, frozenset("abc"), frozenset("ab"), "ab", ORGS)
    assert got == [Notice("a", LEFT, KEY), Notice("b", LEFT, KEY)]


def test_end_tells_every_remaining_member() -> None:
    assert reconcile(KEY, frozenset("ab"), None, "a", ORGS) == [Notice("a", LEFT, KEY)]


def test_no_change_no_notice() -> None:
    assert reconcile(KEY, frozenset("ab"), frozenset("ab"), "ab", ORGS) == []
    assert reconcile(KEY, None, None, "a", ORGS) == []
