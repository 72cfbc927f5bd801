"""Who may do what: organisation categories and certificate roles (DESIGN.md §2-3), and
the part of the index a privacy officer acts for (their region, or every region)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vir.domain.errors import InputError, NotFound, NotPermitted, OutsideRegion
from vir.domain.organisations import Category, Organisation, Role


class Actor(Protocol):
    @property
    def organisation(self) -> Organisation: ...

    @property
    def role(self) -> Role: ...


def require_reporter(actor: Actor) -> None:
    """Registering, withdrawing, reading notifications: a reporting organisation's system
    or coordinator, never a municipality's officer."""
    if not actor.organisation.category.reports:
        raise NotPermitted("organisations of this category do not register signals")
    if actor.role not in (Role.SYSTEM, Role.COORDINATOR):
        raise NotPermitted("this certificate's role does not register or manage signals")


# The roles whose certificates a key holder evaluates for: a reporting organisation's
# system and coordinator (registrations), a municipality's address officer (the
# exclusion list) and the privacy officers (a person's access request or death notice).
# Never the index's own certificate (index_service, on the index's host, for the
# evaluation counts): whoever runs the index must not be able to pseudonymise
# (docs/trust-model.md); nor a follow-up officer, who works on matches.
PSEUDONYMISERS: frozenset[Role] = frozenset(
    {
        Role.SYSTEM,
        Role.COORDINATOR,
        Role.ADDRESS_OFFICER,
        Role.PRIVACY_OFFICER,
        Role.NATIONAL_PRIVACY_OFFICER,
    }
)


def require_pseudonymiser(actor: Actor) -> None:
    """Asking a key holder to evaluate: a certificate of one of ``PSEUDONYMISERS``."""
    if actor.role not in PSEUDONYMISERS:
        raise NotPermitted("this certificate's role does not pseudonymise")


def require_coordinator(actor: Actor) -> None:
    require_reporter(actor)
    if actor.role is not Role.COORDINATOR:
        raise NotPermitted("only the organisation's coordinator may do this")


def require_veilig_thuis(actor: Actor) -> None:
    """Consulting the index without a signal is for Veilig Thuis only (Jeugdwet 7.1.4.1)."""
    require_reporter(actor)
    if actor.organisation.category is not Category.VEILIG_THUIS:
        raise NotPermitted("only Veilig Thuis organisations may consult the index")


def require_feedback_giver(actor: Actor, consulted_by: str) -> None:
    """Feedback on a consultation (``match.safety_feedback``): Veilig Thuis, and only the
    organisation that made the consultation. Another organisation's consultation is
    NotFound, as one that does not exist: the answer never says that it does."""
    require_veilig_thuis(actor)
    if str(actor.organisation.oin) != consulted_by:
        raise NotFound("no such consultation of this organisation")


def directory_region(actor: Actor, asked: str | None) -> str:
    """The region whose connected organisations a professional may list: their own
    organisation's (``asked`` None or the same); another is OutsideRegion. Professionals
    are a reporting organisation's system or coordinator certificates."""
    require_reporter(actor)
    own = actor.organisation.region
    if asked is not None and asked != own:
        raise OutsideRegion("professionals see the organisations of their own region only")
    return own


@dataclass(frozen=True, slots=True)
class Scope:
    """The part of the index a privacy officer acts for: the signals and organisations of
    one region, or (``region`` None) of every region."""

    region: str | None

    @property
    def national(self) -> bool:
        return self.region is None

    def covers(self, region: str) -> bool:
        """Whether an organisation of ``region`` is within this scope."""
        return self.region is None or region == self.region

    def report_region(self, asked: str | None) -> str | None:
        """The region a report covers when ``asked`` for one (None: not asked): a regional
        officer always gets their own (named in any case), and asking for another is
        refused (OutsideRegion);
        the national officer gets what was asked, None being every region."""
        if self.region is None:
            return asked
        # Their own region however it is written (rotterdam for Rotterdam): the officer
        # has one region, so the name can only mean it.
        if asked is not None and asked.casefold() != self.region.casefold():
            raise OutsideRegion("a privacy officer sees the reports of their own region only")
        return self.region


NATIONAL = Scope(None)


def require_privacy_officer(actor: Actor) -> Scope:
    """A privacy officer's scope, or NotPermitted. A municipality's officer acts for the
    municipality's region; the index operator's (``national_privacy_officer``) for every
    region. The category is checked as well as the role: onboarding never gives these
    roles to another category (``certificate_roles``), and a row edited by hand must not
    turn a reporter's certificate into an officer's."""
    if actor.role is Role.PRIVACY_OFFICER and actor.organisation.category is Category.MUNICIPALITY:
        return Scope(actor.organisation.region)
    if (
        actor.role is Role.NATIONAL_PRIVACY_OFFICER
        and actor.organisation.category is Category.INDEX_OPERATOR
    ):
        return NATIONAL
    raise NotPermitted("only a privacy officer may do this")


def require_address_officer(actor: Actor) -> None:
    """Keeping the address exclusion list: a municipality's address officer."""
    if not (
        actor.role is Role.ADDRESS_OFFICER and actor.organisation.category is Category.MUNICIPALITY
    ):
        raise NotPermitted("only a municipality's address officer may do this")


def require_follow_up_officer(actor: Actor) -> str:
    """The region a municipality's follow-up officer checks (their municipality's), or
    NotPermitted. As for privacy officers, the category is checked as well as the role."""
    if not (
        actor.role is Role.FOLLOW_UP_OFFICER
        and actor.organisation.category is Category.MUNICIPALITY
    ):
        raise NotPermitted("only a municipality's follow-up officer may do this")
    return actor.organisation.region


def certificate_roles(category: Category) -> tuple[Role, ...]:
    """The roles a certificate of an organisation of ``category`` may carry; the first is
    the one a new organisation's first certificate gets."""
    if category is Category.MUNICIPALITY:
        return (Role.PRIVACY_OFFICER, Role.ADDRESS_OFFICER, Role.FOLLOW_UP_OFFICER)
    if category is Category.INDEX_OPERATOR:
        return (Role.NATIONAL_PRIVACY_OFFICER, Role.INDEX_SERVICE)
    return (Role.SYSTEM, Role.COORDINATOR)


def require_certificate_role(category: Category, role: Role) -> None:
    """InputError (field ``role``) unless ``certificate_roles(category)`` holds ``role``."""
    if role not in certificate_roles(category):
        allowed = ", ".join(r.value for r in certificate_roles(category))
        raise InputError("role", f"a certificate of a {category.value} may carry: {allowed}")
