"""The two timed halves of bench/lifecycle_bench.py, each run in a process of its own.

``python bench/lifecycle_child.py lifecycle URL [BATCH]``: vir's lifecycle, as ``vir
lifecycle run`` runs it (in batches of the design's own size unless BATCH is given),
with whichever ``vir`` comes first on the path (``PYTHONPATH``: the previous design's
checkout). ``python bench/lifecycle_child.py baseline FILE BATCH``: the same changes in
bare ``sqlite3``, in batches of BATCH. Each prints one JSON line. Imports nothing of the
bench (``harness`` imports this checkout's test support, hence its ``vir``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

GENESIS = b"\x00" * 32  # vir.audit.chain.GENESIS


def child_lifecycle(url: str, batch: int | None) -> dict[str, Any]:
    """In a process of its own, with the design's ``vir`` first on sys.path."""
    import vir
    from vir.domain.clock import utc_now
    from vir.services.lifecycle import BATCH, Lifecycle
    from vir.store.db import Database

    batch = batch or BATCH
    db = Database.connect(url)
    started = time.perf_counter()
    report = Lifecycle(db, utc_now, batch).run()
    seconds = time.perf_counter() - started
    with db.read() as session:
        from sqlalchemy import text

        entries = session.execute(text("SELECT count(*) FROM audit_entries")).scalar_one()
    db.dispose()
    return {
        "vir": str(Path(vir.__file__).parent),
        "seconds": round(seconds, 2),
        "batch": batch,
        "archived": report.archived,
        "erased": report.erased,
        "audit_entries": entries,
    }


def _event(action: str, oin: str, signal: str, now: str, extra: dict[str, str]) -> bytes:
    document = {
        "action": action,
        "actor": "lifecycle",
        "certificate": None,
        "event_id": str(uuid.uuid4()),
        "objects": dict(sorted({"signal": signal, **extra}.items())),
        "occurred_at": now,
        "organisation": oin,
        "outcome": "success",
        "reason": "remove_on",
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def child_baseline(path: Path, batch: int) -> dict[str, Any]:
    """The lifecycle's changes in bare sqlite3 (see bench/lifecycle_bench.py). Each batch
    is the next ``batch`` due in the order of an index on ``remove_on`` (no sort): vir
    orders them by ``remove_on, id`` (deterministic batches), an index range since
    migration 0014; before it SQLite sorted the rows due on a date for every batch
    ("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY"), a cost the baseline never had."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    today = dt.date.today()
    destroy = today.replace(year=today.year + 5).isoformat()
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    head = db.execute("SELECT seq, entry_hash FROM audit_entries ORDER BY seq DESC LIMIT 1")
    found = head.fetchone()
    seq, previous = (found[0], found[1]) if found else (0, GENESIS)
    archived = 0
    started = time.perf_counter()
    while True:
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(
            "SELECT id, oin, local_ref, person, professional_name, professional_email, "
            "professional_phone, professional_function, created_at, remove_on, informed_on, "
            "informed_who FROM signals WHERE remove_on <= ? ORDER BY remove_on LIMIT ?",
            (today.isoformat(), batch),
        ).fetchall()
        ids = [r[0] for r in rows]
        marks = ",".join("?" * len(ids))
        if ids:
            db.executemany(
                "INSERT INTO archived_signals (id, oin, local_ref, person, professional_name, "
                "professional_email, professional_phone, professional_function, "
                "registered_at, remove_on, informed_on, informed_who, archived_on, reason, "
                "destroy_on) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(*r, today.isoformat(), "expired", destroy) for r in rows],
            )
            db.execute(f"DELETE FROM match_members WHERE signal_id IN ({marks})", ids)
            db.execute(f"DELETE FROM signal_parents WHERE signal_id IN ({marks})", ids)
            db.execute(
                "DELETE FROM notifications WHERE id IN (SELECT notification_id FROM "
                f"notification_signals WHERE signal_id IN ({marks}))",
                ids,
            )
            db.execute(f"DELETE FROM signals WHERE id IN ({marks})", ids)
            entries, refs = [], []
            for r in rows:
                for action, extra in (
                    ("signal.expired", {"remove_on": r[9]}),
                    ("signal.archived", {"destroy_on": destroy}),
                ):
                    body = _event(action, r[1], r[0], stamp, extra)
                    digest = hashlib.sha256(previous + body).digest()
                    seq += 1
                    event_id = json.loads(body)["event_id"]
                    entries.append(
                        (seq, event_id, stamp, r[1], action, "success", body, previous, digest)
                    )
                    refs.append((r[0], seq))
                    previous = digest
            db.executemany(
                "INSERT INTO audit_entries (seq, event_id, occurred_at, organisation, action, "
                "outcome, body, prev_hash, entry_hash) VALUES (?,?,?,?,?,?,?,?,?)",
                entries,
            )
            db.executemany("INSERT INTO audit_refs (ref, seq) VALUES (?,?)", refs)
        db.execute("COMMIT")
        archived += len(ids)
        if len(ids) < batch:
            break
    seconds = time.perf_counter() - started
    db.close()
    return {"seconds": round(seconds, 2), "archived": archived, "audit_entries": seq}


def vm_hwm_mb() -> float:
    """This process's peak resident memory (its own, unlike ru_maxrss after exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


if __name__ == "__main__":
    what, where = sys.argv[1], sys.argv[2]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if what == "lifecycle":
        found = child_lifecycle(where, size)
    else:
        assert size is not None, "baseline FILE BATCH"
        found = child_baseline(Path(where), size)
    print(json.dumps({**found, "vm_hwm_mb": vm_hwm_mb()}))
