"""Audit-log figures for ``make bench``: verifying a 1,000,000-entry export, appends/s.

Reported next to this machine's raw SHA-256 throughput measured in the same run.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.audit_export import synthetic_export

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


def append_rate(count: int = 20_000, per_transaction: int = 1) -> dict[str, Any]:
    """Appends through the service's own path: durable write transactions of
    ``per_transaction`` entries (a registration writes several entries in one)."""
    folder = Path(tempfile.mkdtemp(prefix="vir-append-"))
    url = f"sqlite:///{folder / 'vir.db'}"
    upgrade(url)
    db = Database.connect(url)
    started = time.perf_counter()
    for start in range(0, count, per_transaction):
        with db.write() as session:
            for i in range(start, min(count, start + per_transaction)):
                audit_log.append(
                    session,
                    audit_log.new_event("bench.append", "success", utc_now(), objects={"i": i}),
                )
    seconds = time.perf_counter() - started
    db.dispose()
    return {
        "entries": count,
        "per_transaction": per_transaction,
        "per_second": round(count / seconds),
    }


def run(entries: int) -> dict[str, Any]:
    return {
        "sha256": sha256_throughput(),
        "verify_export": verify_export(entries),
        "append": [append_rate(per_transaction=k) for k in (1, 5, 20, 50)],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(1_000_000), indent=2))
