"""The audit integrator: its throughput, and the delay it adds under load.

1. Throughput (``bench/integrator_child.py``, in a process of its own): ``--entries``
   audit events staged as writers stage them, then ``Database.integrate()`` timed
   until all are chained (sequence numbers, SHA-256 chain, ``audit_refs`` rows, staging
   rows deleted, durable commits); baseline: SHA-256 chaining of the same bodies in a
   bare loop. Entries per second and their ratio, and the process's peak RSS.
2. Delay under load: ``vir_audit_integration_delay_seconds`` (staging to integration)
   from the service's ``GET /metrics``, scraped before and after a closed-loop
   registration run at concurrency 16; its p99 is read from the histogram's buckets
   (the bound of the bucket holding the 99th percentile). Target: <= 1 s.

The previous design had no integrator (writers chained under one global lock).

``python bench/integrator_bench.py [--entries N] [--operations N]``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

import harness
import httpx
from harness import UNTHROTTLED, drive, run_child, service_processes, vir_worker
from support.service import RunningService, start_service

HISTOGRAM = "vir_audit_integration_delay_seconds"
_BUCKET = re.compile(HISTOGRAM + r'_bucket\{le="([^"]+)"\} ([0-9.e+]+)')
_TOTAL = re.compile(HISTOGRAM + r"_(sum|count) ([0-9.e+]+)")


def throughput(entries: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="vir-integrator-"))
    script = str(harness.ROOT / "bench" / "integrator_child.py")
    child = run_child(
        [sys.executable, script, str(entries), str(folder)],
        env=harness.child_env(None),
    )
    shutil.rmtree(folder, ignore_errors=True)
    return {**child.output, "peak_rss_mb": child.peak_rss_mb}


def scrape(service: RunningService) -> dict[str, float] | None:
    """The delay histogram's cumulative buckets (``le`` -> count), ``sum`` and ``count``;
    None when the service has no such histogram (the previous design)."""
    context = ssl.create_default_context(cafile=service.ca)
    text = httpx.get(f"{service.url}/metrics", verify=context, timeout=10).text
    found = {f"le={le}": float(count) for le, count in _BUCKET.findall(text)}
    if not found:
        return None
    found.update({name: float(value) for name, value in _TOTAL.findall(text)})
    return found


def delay_between(before: dict[str, float] | None, after: dict[str, float] | None) -> Any:
    """Percentiles of the delays observed between two scrapes, from the buckets: the
    upper bound of the bucket where each percentile falls (``inf``: beyond the last)."""
    if before is None or after is None:
        return None
    count = after["count"] - before["count"]
    if count <= 0:
        return {"entries": 0}
    buckets = sorted(
        ((float(k[3:]), after[k] - before.get(k, 0.0)) for k in after if k.startswith("le=")),
        key=lambda pair: pair[0],
    )

    def bound(q: float) -> float:
        return next((le for le, n in buckets if n >= q * count), float("inf"))

    return {
        "entries": int(count),
        "mean_s": round((after["sum"] - before["sum"]) / count, 4),
        "p50_s_at_most": bound(0.50),
        "p99_s_at_most": bound(0.99),
        "buckets": {str(le): int(n) for le, n in buckets},
    }


def under_load(service: RunningService, operations: int, concurrency: int = 16) -> dict[str, Any]:
    before = scrape(service)
    found = drive(vir_worker(service, "education"), operations, concurrency)
    after = scrape(service)
    return {
        "registration": found,
        "delay": delay_between(before, after),
        "peak_rss_mb": service_processes([service]).peak_rss_mb(),
    }


def summary(found: dict[str, Any]) -> list[str]:
    lines = []
    if "throughput" in found:
        t = found["throughput"]
        lines.append(
            f"audit integrator: {t['entries']:,} staged entries chained in "
            f"{t['integrate_seconds']} s ({t['integrated_per_second']:,}/s, "
            f"{t['integrate_transactions']} transactions; staging {t['staged_per_second']:,}/s); "
            f"bare SHA-256 chaining of the same bodies {t['sha256_per_second']:,}/s; ratio "
            f"{t['ratio_to_sha256']}; peak RSS {t['peak_rss_mb']} MiB"
        )
    load = found.get("under_load")
    if load is not None:
        delay = load["delay"]
        if delay is None:
            lines.append("integration delay: no histogram (previous design: no integrator)")
        else:
            reg = load["registration"]
            lines.append(
                f"integration delay under load ({reg['per_second']}/s registrations at "
                f"concurrency {reg['concurrency']}, {delay.get('entries', 0):,} entries): "
                f"p50 <= {delay.get('p50_s_at_most')} s, p99 <= {delay.get('p99_s_at_most')} s "
                f"(target <= 1 s), mean {delay.get('mean_s')} s"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--operations", type=int, default=1000, help="registrations under load")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    found: dict[str, Any] = {"throughput": throughput(args.entries)}
    folder = Path(tempfile.mkdtemp(prefix="vir-integrator-load-"))
    service = start_service(folder / "main", **UNTHROTTLED)
    try:
        found["under_load"] = under_load(service, args.operations)
    finally:
        service.stop()
        shutil.rmtree(folder, ignore_errors=True)
    found["design"] = harness.describe_design(None)
    print("\n".join(summary(found)))
    if args.out:
        args.out.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
