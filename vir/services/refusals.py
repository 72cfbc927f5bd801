"""Recording refused requests in the audit log: who tried what, and why it was refused."""

from __future__ import annotations

from vir.audit.chain import Outcome
from vir.domain.clock import Clock
from vir.domain.errors import VirError
from vir.services.identity import Presented
from vir.store import audit_log
from vir.store.db import Database

ACTION_REFUSED = "request.refused"


def reason_code(error: VirError | type[VirError]) -> str:
    """A fixed code for an error class (``CertificateRevoked`` → ``certificate_revoked``)."""
    name = (error if isinstance(error, type) else type(error)).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class RefusalRecorder:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def record(self, claim: Presented, endpoint: str, reason: str) -> None:
        with self._db.write() as session:
            audit_log.append(
                session,
                audit_log.new_event(
                    ACTION_REFUSED,
                    Outcome.REFUSED,
                    self._clock(),
                    organisation=claim.oin,
                    certificate=claim.fingerprint,
                    objects={"endpoint": endpoint},
                    reason=reason,
                ),
            )
