"""Matches for the follow-up officer's portal pages, made honestly in a running portal
world (support.portal_world): the index's own services register real signals (pseudonyms
from the real key holder, through the Python client) on the world's database, at a
clock ``AGE`` days back, so that the matches are overdue when the portal, on the real
clock, lists them. Nothing is written to the tables by hand; the follow-up check itself
decides what is overdue.

Rotterdam (the demo municipality, its officer Daan Mulder) and Utrecht (two
organisations registered here) each have matches:

- ``partly``: Rotterdam's school, GP and youth care; the school recorded contact with
  the GP, so youth care alone is "nog niet" (the reminder's one recipient);
- ``spanning``: Rotterdam's youth care and Utrecht's GP (Rotterdam sees one participant
  and one in another region);
- ``fillers``: more of Rotterdam's (school and GP), enough for a second page;
- ``utrecht``: Utrecht's school and GP only (not Rotterdam's to see or remind);
- ``confirmed``: Rotterdam's school and youth care, contact recorded (not overdue);
- ``fresh``: Rotterdam's GP and youth care, made now (not overdue yet).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from support.portal_world import GP, SCHOOL, YOUTH_CARE, PortalWorld

from vir.client.canonical import is_valid_bsn, nl_bsn
from vir.domain.caller import Caller
from vir.domain.clock import utc_now
from vir.domain.coordination import FollowUp
from vir.domain.encoding import b64url_decode
from vir.domain.intake import SignalRequest
from vir.domain.organisations import Category, Oin, Organisation, Role
from vir.domain.signals import Professional
from vir.services.epochs import EpochBook
from vir.services.matchregie import Matchregie
from vir.services.onboarding import register_organisation
from vir.services.signals import SignalService
from vir.store.db import Database
from vir.store.organisations import get_organisation

AGE = 16  # days: past the region's period (14)
UTRECHT_CONVENANT = "test-convenant-utrecht"
UTRECHT_SCHOOL = Organisation(
    Oin("00000009000000000301"),
    "Basisschool De Dom",
    Category.EDUCATION,
    "Utrecht",
    UTRECHT_CONVENANT,
)
UTRECHT_GP = Organisation(
    Oin("00000009000000000302"),
    "Huisartsenpraktijk Lombok",
    Category.GP,
    "Utrecht",
    UTRECHT_CONVENANT,
)


@dataclass(frozen=True)
class Matches:
    partly: str
    spanning: str
    fillers: tuple[str, ...]
    utrecht: str
    confirmed: str
    fresh: str

    @property
    def rotterdam_overdue(self) -> list[str]:
        """Rotterdam's overdue matches, oldest first (the order they were made)."""
        return [self.partly, self.spanning, *self.fillers]


def _bsns(count: int, start: int) -> list[str]:
    found = (str(n) for n in itertools.count(start) if is_valid_bsn(str(n)))
    return list(itertools.islice(found, count))


def build(world: PortalWorld, *, fillers: int = 0, start: int = 700000000) -> Matches:
    """The matches above on the world's database; their ids."""
    children = _bsns(5 + fillers, start)
    with world.service.client("gp") as client:
        made = client.pseudonymise([nl_bsn(b) for b in children])
    epoch, pseudonyms = made.epoch, list(made.pseudonyms)
    db = Database.connect(world.service.database_url)
    try:
        db.integrate()
        with db.read() as session:
            school, gp, care = (get_organisation(session, oin) for oin in (SCHOOL, GP, YOUTH_CARE))
        assert school is not None and gp is not None and care is not None
        for org in (UTRECHT_SCHOOL, UTRECHT_GP):
            with db.read() as session:
                known = get_organisation(session, str(org.oin)) is not None
            if not known:
                register_organisation(db, org, utc_now())

        def back() -> dt.datetime:
            return utc_now() - dt.timedelta(days=AGE)

        old = _Registrar(db, back, epoch)
        now = _Registrar(db, utc_now, epoch)
        child = iter(pseudonyms)
        partly = old.match([school, gp, care], next(child))
        old.contact(school, partly, gp)
        spanning = old.match([care, UTRECHT_GP], next(child))
        filled = tuple(old.match([school, gp], next(child)) for _ in range(fillers))
        utrecht = old.match([UTRECHT_SCHOOL, UTRECHT_GP], next(child))
        confirmed = old.match([school, care], next(child))
        old.contact(care, confirmed, school)
        fresh = now.match([gp, care], next(child))
    finally:
        db.dispose()
    return Matches(partly, spanning, filled, utrecht, confirmed, fresh)


class _Registrar:
    """Registers signals and records contact with the index's services at ``clock``."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime], epoch: int) -> None:
        self._signals = SignalService(db, clock, EpochBook(db))
        self._regie = Matchregie(db, clock)
        self._epoch = epoch
        self._refs = itertools.count(1)

    def match(self, organisations: list[Organisation], person: str) -> str:
        """Each organisation registers a signal on ``person``; the match's id."""
        element = b64url_decode(person)
        assert element is not None
        found: set[str] = set()
        for org in organisations:
            request = SignalRequest(
                local_ref=f"opvolging-{next(self._refs)}-{org.oin}",
                epoch=self._epoch,
                person=element,
                parents=(),
                address=None,
                remove_on=None,
                professional=Professional(f"Contact {org.name.split()[0]}", None, "0101234567"),
            )
            done = self._signals.register(_caller(org), request)
            found.update(m.id for m in done.matches)
        (match_id,) = found
        return match_id

    def contact(self, org: Organisation, match_id: str, other: Organisation) -> None:
        self._regie.follow_up(_caller(org), match_id, FollowUp.CONTACT_MADE, [str(other.oin)])


def _caller(org: Organisation) -> Caller:
    return Caller(org, "", Role.SYSTEM, person="test-setup")
