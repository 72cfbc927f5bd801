"""Matching: a pure function from active signals to matches (no I/O).

A match is a group of active signals that share one key:

* ``person P``  — signals about young person P. It is a match when the group
  holds signals from two or more organisations (``kind: person``).
* ``parent Q``  — signals about every young person X of whom *some* active
  signal declares Q a parent, together with signals about Q as a young person
  (a young mother is a parent in one signal and the subject of another, which
  links the two households). A parent belongs to the young person, not to one
  reporter's signal: once a school declares Q the mother of X, a GP's signal on
  X without parents is in Q's household too, for as long as some active signal
  on X declares Q.
* ``address A`` — signals with home address A, unless A is on the exclusion list.

A parent or address group is a match (``kind: household``) when it holds two
signals from different organisations about *different* young persons. Keys are
pseudonyms, so a match keeps its identity while it exists: signals join and
leave it. Groups are per key, not transitive: cousins are not matched through a
chain of households, which keeps disclosure to the households actually shared.

Membership is decided in one place, ``group_keys``: the groups of one signal
given the parents linked to its young person (``parent_links``). ``groups``,
``matches`` and ``group_members`` (one group among candidate signals) all use it.

``reconcile`` turns the change of one group into notifications:

* a group becomes a match: every member gets ``match.created``;
* a signal joins a match: it gets ``match.created``, and earlier members of
  *other* organisations get ``match.joined``;
* a signal leaves a match that continues: remaining members of other
  organisations get ``match.left``; so does the signal itself when it is still
  registered (its parent link went with another signal): for it the match ended;
* a match ends (it no longer qualifies): every remaining member gets ``match.left``.

Members of the same organisation as the signal that joined or left are not
notified while the match continues: what they see (the other organisations)
did not change.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from vir.domain.signals import SignalFacts


class Via(enum.StrEnum):
    PERSON = "person"
    PARENT = "parent"
    ADDRESS = "address"

    @property
    def kind(self) -> str:
        return "person" if self is Via.PERSON else "household"


class NotificationType(enum.StrEnum):
    CREATED = "match.created"
    JOINED = "match.joined"
    LEFT = "match.left"
    # Not from reconcile(): a partner's contact details changed; an archived signal offered.
    CONTACT_CHANGED = "match.contact_changed"
    HISTORICAL = "match.historical"
    # Not from matching: Veilig Thuis's feedback on a consultation (vir.domain.feedback).
    SAFETY_FEEDBACK = "match.safety_feedback"
    # Not from reconcile(): the match's coordinator changed (vir.domain.coordination).
    COORDINATOR = "match.coordinator"
    # Not from reconcile() either: a handover of the coordinator's role offered to the
    # recipient; declined, told to the coordinator who offered it.
    HANDOVER_OFFERED = "match.handover_offered"
    HANDOVER_DECLINED = "match.handover_declined"
    # Not from matching: a municipality's follow-up officer reminds the participants of
    # its region that have not confirmed contact in an overdue match (vir.domain.followup).
    REMINDER = "match.reminder"


@dataclass(frozen=True, order=True)
class GroupKey:
    via: Via
    key: bytes


def parent_links(signals: Iterable[SignalFacts]) -> dict[bytes, frozenset[bytes]]:
    """Young person → every parent that any of the signals declares for them."""
    found: dict[bytes, set[bytes]] = defaultdict(set)
    for signal in signals:
        found[signal.person].update(signal.parents)
    return {person: frozenset(parents) for person, parents in found.items()}


def group_keys(
    signal: SignalFacts,
    linked_parents: Collection[bytes] = (),
    *,
    excluded_addresses: Collection[bytes] = (),
) -> set[GroupKey]:
    """Every group a signal belongs to.

    ``linked_parents`` are the parents that active signals (this one or others)
    declare for the signal's young person; the signal's own parents always count.
    """
    keys = {GroupKey(Via.PERSON, signal.person), GroupKey(Via.PARENT, signal.person)}
    keys.update(GroupKey(Via.PARENT, parent) for parent in signal.parents)
    keys.update(GroupKey(Via.PARENT, parent) for parent in linked_parents)
    if signal.address is not None and signal.address not in excluded_addresses:
        keys.add(GroupKey(Via.ADDRESS, signal.address))
    return keys


def group_members(
    key: GroupKey, candidates: Iterable[SignalFacts], excluded_addresses: Collection[bytes] = ()
) -> list[SignalFacts]:
    """The members of one group among ``candidates``.

    ``candidates`` must hold every active signal of the group and, for a parent
    group, every active signal that declares the parent (those link the young
    persons); any other signals may be among them and are left out.
    """
    candidates = list(candidates)
    links = parent_links(candidates)
    return [
        s
        for s in candidates
        if key in group_keys(s, links.get(s.person, ()), excluded_addresses=excluded_addresses)
    ]


def qualifies(key: GroupKey, members: Collection[SignalFacts]) -> bool:
    """Whether a group is a match.

    For a household group the rule is "some pair from different organisations
    about different young persons", which is the same as "two or more
    organisations and two or more young persons": given two signals about
    different persons and a signal from another organisation than the first,
    that signal differs in person from at least one of the two.
    """
    organisations = {m.oin for m in members}
    if key.via is Via.PERSON:
        return len(organisations) >= 2
    return len(organisations) >= 2 and len({m.person for m in members}) >= 2


def groups(
    signals: Iterable[SignalFacts], excluded_addresses: Collection[bytes] = ()
) -> dict[GroupKey, list[SignalFacts]]:
    """All groups (qualifying or not) of the given signals."""
    signals = list(signals)
    links = parent_links(signals)
    found: dict[GroupKey, list[SignalFacts]] = defaultdict(list)
    for signal in signals:
        for key in group_keys(
            signal, links.get(signal.person, ()), excluded_addresses=excluded_addresses
        ):
            found[key].append(signal)
    return dict(found)


def matches(
    signals: Iterable[SignalFacts], excluded_addresses: Collection[bytes] = ()
) -> dict[GroupKey, frozenset[str]]:
    """The qualifying groups: match key → member signal ids."""
    return {
        key: frozenset(m.id for m in members)
        for key, members in groups(signals, excluded_addresses).items()
        if qualifies(key, members)
    }


@dataclass(frozen=True, order=True)
class Notice:
    """One notification to send: to ``recipient`` (a signal id), about the match of ``key``."""

    recipient: str
    type: NotificationType
    key: GroupKey


def reconcile(
    key: GroupKey,
    before: frozenset[str] | None,
    after: frozenset[str] | None,
    present: Collection[str],
    oin_of: Mapping[str, str],
) -> list[Notice]:
    """Notifications for one group whose match went from ``before`` to ``after``.

    ``before``/``after`` are the match's members, or None when the group was or is
    not a match; ``present`` are the signals among them that are still registered
    (a match that ends may still have members, and a signal can leave a match
    while it stays registered, when the parent link it was in through is gone);
    ``oin_of`` gives the organisation of every signal involved. One operation adds
    or removes one signal, but any change works.
    """
    notices: set[Notice] = set()
    if before is None and after is not None:
        notices.update(Notice(s, NotificationType.CREATED, key) for s in after)
    elif before is not None and after is not None:
        for joined in after - before:
            notices.add(Notice(joined, NotificationType.CREATED, key))
            notices.update(
                Notice(s, NotificationType.JOINED, key)
                for s in before & after
                if oin_of[s] != oin_of[joined]
            )
        for left in before - after:
            if left in present:
                # Still registered, but out of this match: for it the match ended.
                notices.add(Notice(left, NotificationType.LEFT, key))
            notices.update(
                Notice(s, NotificationType.LEFT, key)
                for s in before & after
                if oin_of[s] != oin_of[left]
            )
    elif before is not None and after is None:
        # The match ended: whoever of it is still registered is told.
        notices.update(Notice(s, NotificationType.LEFT, key) for s in before if s in present)
    return sorted(notices)
