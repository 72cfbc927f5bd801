"""The pure matching rules, case by case (the oracle test covers random sequences)."""

from __future__ import annotations

from vir.domain.matching import (
    GroupKey,
    Notice,
    NotificationType,
    Via,
    group_keys,
    group_members,
    groups,
    matches,
    parent_links,
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
    assert GroupKey(Via.ADDRESS, SHELTER) not in group_keys(a, excluded_addresses={SHELTER})
    assert matches([a, sig("b", "2", SIBLING, address=SHELTER)], {SHELTER}) == {}
    assert matches([sig("a", "1", CHILD, address=HOME), sig("b", "2", SIBLING, address=HOME)])


def test_a_parent_belongs_to_the_young_person_not_to_one_signal() -> None:
    school = sig("a", "1", CHILD, (MOTHER,))
    gp = sig("b", "2", CHILD)  # no parents registered
    youth_care = sig("c", "3", SIBLING, (MOTHER,))
    household = GroupKey(Via.PARENT, MOTHER)
    assert parent_links([school, gp, youth_care]) == {
        CHILD: frozenset({MOTHER}),
        SIBLING: frozenset({MOTHER}),
    }
    assert household in group_keys(gp, {MOTHER})
    assert household not in group_keys(gp)
    found = matches([school, gp, youth_care])
    assert found[household] == {"a", "b", "c"}
    assert found[GroupKey(Via.PERSON, CHILD)] == {"a", "b"}
    # The school withdraws: no active signal names the mother of the child any more.
    assert matches([gp, youth_care]) == {}
    # Another signal on the child that names the mother keeps the link.
    police = sig("d", "4", CHILD, (MOTHER,))
    assert matches([gp, youth_care, police])[household] == {"b", "c", "d"}


def test_the_link_is_per_parent_and_not_transitive() -> None:
    # The GP's signal on the child is in the mother's household (the school names her)
    # but not in the grandmother's, which only the mother's own signal is in.
    school = sig("a", "1", CHILD, (MOTHER,))
    gp = sig("b", "2", CHILD)
    mother_herself = sig("c", "3", MOTHER, (GRANDMA,))
    aunt = sig("d", "4", SIBLING, (GRANDMA,))
    found = groups([school, gp, mother_herself, aunt])
    assert {s.id for s in found[GroupKey(Via.PARENT, MOTHER)]} == {"a", "b", "c"}
    assert {s.id for s in found[GroupKey(Via.PARENT, GRANDMA)]} == {"c", "d"}


def test_group_members_agrees_with_groups_whatever_else_is_among_the_candidates() -> None:
    signals = [
        sig("a", "1", CHILD, (MOTHER,), HOME),
        sig("b", "2", CHILD, (), SHELTER),
        sig("c", "3", SIBLING, (MOTHER, GRANDMA), HOME),
        sig("d", "1", MOTHER, (GRANDMA,)),
        sig("e", "2", GRANDMA),
    ]
    everything = groups(signals, {SHELTER})
    for key in {*everything, GroupKey(Via.ADDRESS, SHELTER)}:
        want = {s.id for s in everything.get(key, [])}
        assert {s.id for s in group_members(key, signals, {SHELTER})} == want
        assert {s.id for s in group_members(key, list(reversed(signals)), {SHELTER})} == want


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


def test_a_registered_signal_that_leaves_a_continuing_match_is_told() -> None:
    # c (organisation 3) left, but is still registered: its parent link went with a
    # withdrawn signal. It is told, and so are the remaining other organisations.
    got = reconcile(KEY, frozenset("abc"), frozenset("ab"), "abc", ORGS)
    assert got == [Notice("a", LEFT, KEY), Notice("b", LEFT, KEY), Notice("c", LEFT, KEY)]


def test_end_tells_every_remaining_member() -> None:
    assert reconcile(KEY, frozenset("ab"), None, "a", ORGS) == [Notice("a", LEFT, KEY)]


def test_no_change_no_notice() -> None:
    assert reconcile(KEY, frozenset("ab"), frozenset("ab"), "ab", ORGS) == []
    assert reconcile(KEY, None, None, "a", ORGS) == []
