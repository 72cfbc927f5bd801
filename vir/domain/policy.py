"""Who may do what: organisation categories and certificate roles (DESIGN.md §2-3)."""

from __future__ import annotations

from typing import Protocol

from vir.domain.errors import NotPermitted
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


def require_coordinator(actor: Actor) -> None:
    require_reporter(actor)
    if actor.role is not Role.COORDINATOR:
        raise NotPermitted("only the organisation's coordinator may do this")


def require_veilig_thuis(actor: Actor) -> None:
    """Consulting the index without a signal is for Veilig Thuis only (Jeugdwet 7.1.4.1)."""
    require_reporter(actor)
    if actor.organisation.category is not Category.VEILIG_THUIS:
        raise NotPermitted("only Veilig Thuis organisations may consult the index")


def require_privacy_officer(actor: Actor) -> None:
    if actor.role is not Role.PRIVACY_OFFICER:
        raise NotPermitted("only a privacy officer may do this")
