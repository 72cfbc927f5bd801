"""One officer's report, as ``vir report`` computes it, in a process of its own so that
its peak resident memory is its own (bench/reports_bench.py).

``python bench/report_child.py URL privacy|monitor|participation|checkpoint|export|proofs
FROM TO``: prints one JSON line: seconds and peak RSS in MiB (its own, VmHWM).
``checkpoint`` checks the whole log and signs a checkpoint (``vir audit checkpoint``);
``export`` does that and writes the export to /dev/null (``vir audit export``);
``proofs`` makes sure of a checkpoint (untimed), then times 100 inclusion proofs and 100
consistency proofs at random places against it (``GET /v1/audit/proof/...``), and then
the periodic checkpoint after 1,000 more entries.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import resource
import sys
import time

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto.signing import CheckpointSigner
from vir.domain.clock import utc_now
from vir.services import participation, reports
from vir.services.transparency import TransparencyLog
from vir.store import audit_log
from vir.store.db import Database


def main() -> None:
    url, report = sys.argv[1], sys.argv[2]
    start, end = dt.date.fromisoformat(sys.argv[3]), dt.date.fromisoformat(sys.argv[4])
    db = Database.connect(url)
    if report == "proofs":
        _proofs(db)
        return
    began = time.monotonic()
    if report == "privacy":
        reports.privacy_report(db, utc_now, None, start, end)
    elif report == "monitor":
        reports.monitor_report(db, utc_now, None, start, end)
    elif report in ("checkpoint", "export"):
        log = TransparencyLog(db, CheckpointSigner.from_seed(os.urandom(32), "bench/log"), utc_now)
        if report == "checkpoint":
            log.checkpoint()
        else:
            with open(os.devnull, "wb") as sink:
                for line in log.export():
                    sink.write(line)
    else:
        participation.participation_report(db, utc_now, None, start, end)
    seconds = time.monotonic() - began
    db.dispose()
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(_peak_mb(), 1)}))


def _proofs(db: Database) -> None:
    log = TransparencyLog(db, CheckpointSigner.from_seed(os.urandom(32), "bench/log"), utc_now)
    size = log.checkpoint().size
    rng = random.Random(1)
    began = time.monotonic()
    for _ in range(PROOFS):
        log.inclusion(rng.randint(1, size))
        log.consistency(rng.randint(1, size))
    seconds = time.monotonic() - began
    # The periodic checkpoint after 1,000 more entries (a few minutes of a busy service).
    with db.write() as session:
        for i in range(1000):
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.REPORT_GENERATED, Outcome.SUCCESS, utc_now(), objects={"i": i}
                ),
            )
    db.integrate()
    began = time.monotonic()
    log.checkpoint()
    periodic = time.monotonic() - began
    db.dispose()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "per_proof_ms": round(seconds / (2 * PROOFS) * 1000, 2),
                "checkpoint_after_1000_s": round(periodic, 3),
                "peak_rss_mb": round(_peak_mb(), 1),
            }
        )
    )


PROOFS = int(os.environ.get("VIR_BENCH_PROOFS", "100"))  # of each kind (fewer: the old design)


def _peak_mb() -> float:
    """This process's own peak: VmHWM, the high-water mark of the address space exec made.
    (``ru_maxrss`` would do on a fresh process, but Linux carries the parent's peak over
    into it across fork and exec: the bench process's, after filling the store.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


if __name__ == "__main__":
    main()
