"""Audit-log figures for ``make bench``: verifying a 1,000,000-entry export, appends/s.

Reported next to this machine's raw SHA-256 throughput measured in the same run.
"""

from __future__ import annotations

import hashlib
import resource
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from sqlalchemy import event
from support.audit_export import synthetic_export

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.audit.export import verify
from vir.crypto.signing import CheckpointSigner, ed25519_verify
from vir.domain.clock import utc_now
from vir.store import audit_log
from vir.store.db import Database
from vir.store.migrate import upgrade


def sha256_throughput(count: int = 1_000_000) -> dict[str, float]:
    data = b"x" * 300
    started = time.perf_counter()
    for _ in range(count):
        hashlib.sha256(data).digest()
    seconds = time.perf_counter() - started
    return {
        "hashes_per_second": round(count / seconds),
        "bytes_per_hash": len(data),
        "mb_per_second": round(count * len(data) / seconds / 1e6, 1),
    }


def make_export(path: Path, count: int) -> CheckpointSigner:
    signer = CheckpointSigner.from_seed(
        hashlib.sha256(path.name.encode()).digest(), "bench/audit-log"
    )
    with path.open("wb") as out:
        out.writelines(synthetic_export(count, signer))
    return signer


def verify_export(count: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp(prefix="vir-audit-")) / "audit.export"
    signer = make_export(path, count)
    started = time.perf_counter()
    with path.open("rb") as handle:
        report = verify(handle, ed25519_verify, signer.verifier_key())
    seconds = time.perf_counter() - started
    assert report.ok and report.entries == count
    size = path.stat().st_size
    path.unlink()
    return {"entries": count, "seconds": round(seconds, 2), "file_mb": round(size / 1e6, 1)}


def append_rate(count: int = 20_000, per_transaction: int = 1, writers: int = 1) -> dict[str, Any]:
    """Appends through the service's own path: ``writers`` threads, each writing durable
    transactions of ``per_transaction`` entries (a registration writes several entries
    in one; concurrent writers share commits, see "Group commit" in vir/store/db.py).
    Writers stage entries; as in ``vir serve`` nothing integrates after each commit, and
    the integration of everything staged (vir.store.sequencer) ends the timed part."""
    folder = Path(tempfile.mkdtemp(prefix="vir-append-"))
    url = f"sqlite:///{folder / 'vir.db'}"
    upgrade(url)
    db = Database.connect(url)
    db.integrate_after_commit = False  # vir serve's integrator thread does it, not writers
    commits = [0]

    def counted(_connection: Any) -> None:
        commits[0] += 1

    event.listen(db.engine, "commit", counted)
    share = count // writers // per_transaction * per_transaction

    def work(w: int) -> None:
        for start in range(0, share, per_transaction):
            with db.write() as session:
                for i in range(start, start + per_transaction):
                    audit_log.append(
                        session,
                        audit_log.new_event(
                            Action.SIGNAL_REGISTERED,
                            Outcome.SUCCESS,
                            utc_now(),
                            # like a signal's entries: an id (indexed in audit_refs) and a count
                            objects={"signal": str(uuid.uuid4()), "i": i},
                        ),
                    )

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = share * writers
    integrated = 0
    while integrated < total:
        done = db.integrate()
        assert done is not None and done.entries > 0
        integrated += done.entries
    seconds = time.perf_counter() - started
    db.dispose()
    shutil.rmtree(folder)
    return {
        "entries": total,
        "per_transaction": per_transaction,
        "writers": writers,
        "commits": commits[0],
        "per_second": round(total / seconds),
    }


def append_baseline(count: int = 3_000) -> dict[str, Any]:
    """The same rows through the bare ``sqlite3`` module, one durable commit each (WAL,
    synchronous=FULL): what one fsync per entry allows on this machine."""
    folder = Path(tempfile.mkdtemp(prefix="vir-append-base-"))
    connection = sqlite3.connect(folder / "base.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY, body BLOB, hash BLOB)")
    body = b"x" * 300
    started = time.perf_counter()
    for seq in range(1, count + 1):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO entries VALUES (?, ?, ?)", (seq, body, body[:32]))
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    shutil.rmtree(folder)
    return {"entries": count, "per_second": round(count / seconds)}


# (entries per transaction, concurrent writers): one writer alone; 40 is the service's
# worker-thread pool (one writer per request being handled).
APPEND_CASES = ((1, 1), (1, 8), (1, 40), (5, 1), (20, 1))


def run(entries: int) -> dict[str, Any]:
    found: dict[str, Any] = {
        "sha256": sha256_throughput(),
        "verify_export": verify_export(entries),
        "append_baseline": append_baseline(),
        "append": [append_rate(per_transaction=k, writers=w) for k, w in APPEND_CASES],
    }
    # In this (the bench's) process, so with everything else it holds.
    found["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return found


if __name__ == "__main__":
    import json

    print(json.dumps(run(1_000_000), indent=2))
