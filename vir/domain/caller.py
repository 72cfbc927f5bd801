"""Who is calling, once their client certificate is checked (``vir.services.identity``)."""

from __future__ import annotations

from dataclasses import dataclass

from vir.domain.organisations import Organisation, Role


@dataclass(frozen=True)
class Caller:
    """A registered organisation, the certificate it called with, and that one's role.

    ``person``: a person signed in to the portal (docs/portal.md), acting for their
    organisation by their stable pseudonymous id; they hold no certificate
    (``certificate`` is empty) and the audit log names them instead."""

    organisation: Organisation
    certificate: str  # SHA-256 fingerprint; "" for a person signed in to the portal
    role: Role = Role.SYSTEM
    person: str | None = None

    @property
    def oin(self) -> str:
        return str(self.organisation.oin)
