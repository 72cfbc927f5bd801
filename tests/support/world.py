"""A small in-process world for service tests: a fresh store, a clock that tests move,
and the services wired as the app wires them.

Two regions: Rotterdam (``ORGS``, ``VEILIG_THUIS`` and the municipality ``MUNICIPALITY``,
whose privacy officer is ``World.officer``) and Utrecht (``UTRECHT_ORGS`` and
``UTRECHT``, officer ``World.utrecht_officer``); and the index operator ``OPERATOR``,
whose national officer (``World.national_officer``) sees both."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from support.instore import ORGS, T0, UTRECHT_ORGS, Store, fresh_store, template

from vir.audit.chain import AuditEvent
from vir.crypto import oprf
from vir.domain.organisations import Category, Oin, Organisation, Role
from vir.domain.ratelimit import Limit, LimitKind
from vir.domain.signals import Professional
from vir.services.consultations import ConsultationService
from vir.services.epochs import EpochBook
from vir.services.identity import Caller
from vir.services.lifecycle import Lifecycle
from vir.services.onboarding import register_organisation
from vir.services.privacy import PrivacyService
from vir.services.signals import SignalRequest, SignalService
from vir.store.ratelimits import RateLimits
from vir.store.records import Signal
from vir.store.tables import AuditEntryRow, NotificationRow

# Rotterdam, as every organisation of ``ORGS`` is: the municipality's officer acts for
# the region of the organisations the tests register with.
MUNICIPALITY = Organisation(
    Oin("00000009000000000199"), "Gemeente Test", Category.MUNICIPALITY, "Rotterdam"
)
VEILIG_THUIS = Organisation(
    Oin("00000009000000000198"),
    "Veilig Thuis T",
    Category.VEILIG_THUIS,
    "Rotterdam",
    "test-convenant",
)
UTRECHT = Organisation(
    Oin("00000009000000000299"), "Gemeente Utrecht", Category.MUNICIPALITY, "Utrecht"
)
OPERATOR = Organisation(
    Oin("00000009000000000999"), "Beheerder Verwijsindex", Category.INDEX_OPERATOR, "Nederland"
)


def person(name: str) -> bytes:
    """A pseudonym stand-in: a valid group element derived from a name."""
    return oprf.hash_to_group(name.encode())


@dataclass
class Clock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def to(self, day: dt.date) -> None:
        self.now = dt.datetime.combine(day, dt.time(3, 0), tzinfo=dt.UTC)


@dataclass
class World:
    store: Store
    clock: Clock
    signals: SignalService
    lifecycle: Lifecycle
    privacy: PrivacyService
    consultations: ConsultationService
    refs: dict[str, str] = field(default_factory=dict)

    def caller(self, index: int | Organisation, role: Role = Role.SYSTEM) -> Caller:
        """``ORGS[index]``, or the organisation given (one of ``UTRECHT_ORGS``)."""
        if isinstance(index, Organisation):
            return Caller(index, f"{int(str(index.oin)):064x}", role)
        return Caller(ORGS[index], f"{index:064x}", role)

    @property
    def officer(self) -> Caller:
        """The Rotterdam privacy officer."""
        return Caller(MUNICIPALITY, "f" * 64, Role.PRIVACY_OFFICER)

    @property
    def utrecht_officer(self) -> Caller:
        return Caller(UTRECHT, "d" * 64, Role.PRIVACY_OFFICER)

    @property
    def national_officer(self) -> Caller:
        return Caller(OPERATOR, "c" * 64, Role.NATIONAL_PRIVACY_OFFICER)

    @property
    def veilig_thuis(self) -> Caller:
        return Caller(VEILIG_THUIS, "e" * 64)

    def register(
        self,
        org: int | Organisation,
        who: str,
        ref: str | None = None,
        *,
        parents: tuple[str, ...] = (),
        remove_on: dt.date | None = None,
        archive_until: dt.date | None = None,
        name: str = "Anna de Vries",
    ) -> Signal:
        """Register a signal as ``org`` would; the signal as stored."""
        tag = org if isinstance(org, int) else str(org.oin)[-4:]
        local_ref = ref or f"{who}-{tag}"
        request = SignalRequest(
            local_ref,
            1,
            person(who),
            tuple(person(p) for p in parents),
            None,
            remove_on,
            Professional(name, f"{name.split()[0].lower()}@org{tag}.example"),
            archive_until,
        )
        return self.signals.register(self.caller(org), request).signal

    def notifications(self, org_oin: str | None = None) -> list[dict[str, Any]]:
        with self.store.db.read() as session:
            query = select(NotificationRow).order_by(NotificationRow.seq)
            if org_oin is not None:
                query = query.where(NotificationRow.oin == org_oin)
            return [
                {"oin": r.oin, "type": r.type, "local_ref": r.local_ref, **json.loads(r.payload)}
                for r in session.scalars(query)
            ]

    def audit(self) -> list[AuditEvent]:
        self.store.db.integrate()
        with self.store.db.read() as session:
            bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
            return [AuditEvent.decode(bytes(b)) for b in bodies]

    def actions(self, since: int = 0) -> list[str]:
        return [e.action for e in self.audit()[since:]]


@contextmanager
def world(tmp_path: Path) -> Iterator[World]:
    with fresh_store(template(tmp_path), tmp_path / "world.sqlite") as store:
        clock = Clock()
        for org in (MUNICIPALITY, VEILIG_THUIS, UTRECHT, *UTRECHT_ORGS, OPERATOR):
            register_organisation(store.db, org, T0)
        yield World(
            store,
            clock,
            SignalService(store.db, clock, EpochBook(store.db)),
            Lifecycle(store.db, clock, batch=2),
            PrivacyService(store.db, clock),
            ConsultationService(
                store.db, clock, RateLimits({LimitKind.CONSULTATION: Limit(1.0, 3)})
            ),
        )
