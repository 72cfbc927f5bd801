"""Who takes part: the organisations connected to the index in a professional's region
(issue 17, part 5), names and categories only.

A professional may see which organisations of their region they can meet in a match, so
that they know whom the index can connect them with; nothing about signals or matches.
OINs are public (the Dutch register of OINs), but a professional has no use for them
here, so the list leaves them out. Each listing is logged (ids only), as reading
notifications is.
"""

from __future__ import annotations

from dataclasses import dataclass

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.domain import policy
from vir.domain.clock import Clock
from vir.domain.organisations import Category
from vir.services.identity import Caller
from vir.store import audit_log, directory
from vir.store.db import Database


@dataclass(frozen=True, slots=True)
class Connected:
    """One connected organisation, as a professional sees it."""

    name: str
    category: Category


@dataclass(frozen=True, slots=True)
class Directory:
    """One page of a region's connected organisations; ``next``: where the next page
    starts (None: this is the last)."""

    region: str
    items: tuple[Connected, ...]
    next: int | None


def connected_organisations(
    db: Database, clock: Clock, caller: Caller, region: str | None, after: int, limit: int
) -> Directory:
    """The connected organisations of ``region`` (the caller's own; None: the same) from
    position ``after``, at most ``limit``; another region is OutsideRegion."""
    own = policy.directory_region(caller, region)
    now = clock()
    with db.write() as session:
        found = directory.connected_in_region(session, own, now)
        page = found[after : after + limit]
        audit_log.append(
            session,
            audit_log.new_event(
                Action.ORGANISATIONS_LISTED,
                Outcome.SUCCESS,
                now,
                objects={"count": len(page)},
                **audit_log.by(caller),
            ),
        )
    following = after + limit
    return Directory(
        own,
        tuple(Connected(name, category) for name, category in page),
        following if following < len(found) else None,
    )
