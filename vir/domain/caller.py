"""Who is calling, once their client certificate is checked (``vir.services.identity``)."""

from __future__ import annotations

from dataclasses import dataclass

from vir.domain.organisations import Organisation, Role


@dataclass(frozen=True)
class Caller:
    """A registered organisation, the certificate it called with, and that one's role."""

    organisation: Organisation
    certificate: str  # SHA-256 fingerprint
    role: Role = Role.SYSTEM

    @property
    def oin(self) -> str:
        return str(self.organisation.oin)
