"""The timed half of the integrator throughput figure, in a process of its own.

``python bench/integrator_child.py N FOLDER [URL]``: a fresh SQLite store in FOLDER, or
the empty database at URL (PostgreSQL: ``postgresql+psycopg://...``); N audit events
staged the way writers stage them (``audit_log.append`` inside ``Database.write()``, 100
a transaction, the integrator held off), then ``Database.integrate()`` timed until every
staged event is in the chain; then the baseline, SHA-256 chaining of the same bodies in
a loop (``hashlib.sha256(previous + body)``, as ``vir.audit.chain.chain_hash``), whose
last hash must equal the chain's head. Prints one JSON line. This checkout's ``vir``
only: the previous design had no integrator.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vir.audit.actions import Action
from vir.audit.chain import GENESIS, Outcome
from vir.domain.clock import utc_now
from vir.store import audit_log, sequencer
from vir.store.db import Database
from vir.store.migrate import upgrade
from vir.store.tables import AuditEntryRow

PER_TRANSACTION = 100
OIN = "00000009000000000002"
CERTIFICATE = hashlib.sha256(b"bench certificate").hexdigest()


def stage(db: Database, count: int) -> tuple[float, float]:
    """Stage ``count`` registration-like events; seconds it took, and CPU seconds."""
    cpu = time.process_time()
    started = time.perf_counter()
    for first in range(0, count, PER_TRANSACTION):
        with db.write() as session:
            now = utc_now()
            for _ in range(min(PER_TRANSACTION, count - first)):
                audit_log.append(
                    session,
                    audit_log.new_event(
                        Action.SIGNAL_REGISTERED,
                        Outcome.SUCCESS,
                        now,
                        organisation=OIN,
                        certificate=CERTIFICATE,
                        role="system",
                        objects={"signal": str(uuid.uuid4()), "remove_on": "2028-01-01"},
                    ),
                )
    return time.perf_counter() - started, time.process_time() - cpu


def measure(count: int, folder: Path, url: str | None = None) -> dict[str, Any]:
    url = url or f"sqlite:///{folder / 'vir.db'}"
    upgrade(url)
    db = Database.connect(url)
    db.integrate_after_commit = False  # staged only, as under a busy integrator
    staging, staging_cpu = stage(db, count)
    with db.engine.connect() as connection:
        staged, _ = sequencer.pending(connection)
    assert staged == count, (staged, count)
    integrated, calls = 0, 0
    cpu = time.process_time()
    started = time.perf_counter()
    while integrated < count:
        done = db.integrate()
        calls += 1
        assert done is not None and done.entries > 0
        integrated += done.entries
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    with db.read() as session:
        bodies = [bytes(b) for b in session.scalars(select(AuditEntryRow.body).order_by("seq"))]
        head = session.scalar(select(AuditEntryRow.entry_hash).order_by(AuditEntryRow.seq.desc()))
    with db.engine.connect() as connection:
        left, _ = sequencer.pending(connection)
    db.dispose()
    sha = hashlib.sha256
    started = time.perf_counter()
    previous = GENESIS
    for body in bodies:
        previous = sha(previous + body).digest()
    hashing = time.perf_counter() - started
    assert previous == bytes(head or b""), "the baseline's chain differs from the log's"
    assert left == 0
    return {
        "database": db.engine.dialect.name,
        "entries": count,
        "body_bytes_mean": round(sum(map(len, bodies)) / len(bodies)),
        "staging_seconds": round(staging, 2),
        "staged_per_second": round(count / staging),
        "staging_cpu_seconds": round(staging_cpu, 2),
        "integrate_seconds": round(seconds, 3),
        "integrate_transactions": calls,
        "integrated_per_second": round(count / seconds),
        # This process's CPU only: on PostgreSQL the server's work is not in it.
        "integrate_cpu_seconds": round(cpu, 3),
        "sha256_seconds": round(hashing, 3),
        "sha256_per_second": round(count / hashing),
        "ratio_to_sha256": round(hashing / seconds, 4),
    }


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


if __name__ == "__main__":
    found = measure(int(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:4])
    print(json.dumps({**found, "vm_hwm_mb": vm_hwm_mb()}))
