"""One officer's report, as ``vir report`` computes it, in a process of its own so that
its peak resident memory is its own (bench/reports_bench.py).

``python bench/report_child.py URL privacy|monitor|participation|checkpoint|export FROM
TO``: prints one JSON line: seconds and peak RSS in MiB (its own, VmHWM). ``checkpoint``
checks the whole log and signs a checkpoint (``vir audit checkpoint``); ``export`` does
that and writes the export to /dev/null (``vir audit export``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import time

from vir.crypto.signing import CheckpointSigner
from vir.domain.clock import utc_now
from vir.services import participation, reports
from vir.services.transparency import TransparencyLog
from vir.store.db import Database


def main() -> None:
    url, report = sys.argv[1], sys.argv[2]
    start, end = dt.date.fromisoformat(sys.argv[3]), dt.date.fromisoformat(sys.argv[4])
    db = Database.connect(url)
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
