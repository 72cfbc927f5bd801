"""The audit integrator: its throughput, and the delay it adds under load.

1. Throughput (``bench/integrator_child.py``, in a process of its own): ``--entries``
   audit events staged as writers stage them, then ``Database.integrate()`` timed
   until all are chained (sequence numbers, SHA-256 chain, ``audit_refs`` rows, staging
   rows deleted, durable commits); baseline: SHA-256 chaining of the same bodies in a
   bare loop. Entries per second and their ratio, the CPU seconds of staging and of
   integrating (the child process's own: on PostgreSQL the server's work is not in
   them), and the process's peak RSS.
2. Delay under load: ``vir_audit_integration_delay_seconds`` (staging to integration)
   from the service's ``GET /metrics``, scraped before and after a closed-loop
   registration run at concurrency 16; its p99 is read from the histogram's buckets
   (the bound of the bucket holding the 99th percentile). Target: <= 1 s.

Both on SQLite (a file in a temporary folder, ``synchronous=FULL``) or, with
``--database postgresql``, on a throwaway PostgreSQL server with durable commits
(``tests/support/postgres.py``, as ``bench/scaleout.py``). The previous design had no
integrator (writers chained under one global lock).

``python bench/integrator_bench.py [--entries N] [--operations N] [--database NAME]``;
``--operations 0`` measures the throughput only.
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
from support import postgres
from support.service import RunningService, start_service

HISTOGRAM = "vir_audit_integration_delay_seconds"
_BUCKET = re.compile(HISTOGRAM + r'_bucket\{le="([^"]+)"\} ([0-9.e+]+)')
_TOTAL = re.compile(HISTOGRAM + r"_(sum|count) ([0-9.e+]+)")


def throughput(entries: int, url: str | None = None) -> dict[str, Any]:
    """The child's figures on a fresh SQLite file, or on the empty database at ``url``."""
    folder = Path(tempfile.mkdtemp(prefix="vir-integrator-"))
    script = str(harness.ROOT / "bench" / "integrator_child.py")
    child = run_child(
        [sys.executable, script, str(entries), str(folder), *([url] if url else [])],
        env=harness.child_env(None),
    )
    shutil.rmtree(folder, ignore_errors=True)
    return {**child.output, "peak_rss_mb": child.peak_rss_mb}


def scrape(service: RunningService) -> dict[str, float] | None:
    """The delay histogram's cumulative buckets (``le`` -> count), ``sum`` and ``count``;
    None when the service has no such histogram (the previous design)."""
    context = ssl.create_default_context(cafile=service.ca)
    context.load_cert_chain(*service.monitor())  # /metrics is mutual TLS too
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


def load_run(operations: int, server: postgres.Server | None) -> dict[str, Any]:
    """``under_load`` on a fresh service: on a SQLite file, or on a new database of
    ``server``."""
    folder = Path(tempfile.mkdtemp(prefix="vir-integrator-load-"))
    env = dict(UNTHROTTLED)
    if server is not None:
        env["VIR_DATABASE_URL"] = server.create_database("vir_integrator_load")
    service = start_service(folder / "main", **env)
    try:
        return under_load(service, operations)
    finally:
        service.stop()
        shutil.rmtree(folder, ignore_errors=True)


def summary(found: dict[str, Any]) -> list[str]:
    lines = []
    if "throughput" in found:
        t = found["throughput"]
        lines.append(
            f"audit integrator ({t['database']}): {t['entries']:,} staged entries chained in "
            f"{t['integrate_seconds']} s ({t['integrated_per_second']:,}/s, "
            f"{t['integrate_transactions']} transactions, {t['integrate_cpu_seconds']} s CPU; "
            f"staging {t['staged_per_second']:,}/s, {t['staging_cpu_seconds']} s CPU); "
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
    parser.add_argument(
        "--operations", type=int, default=1000, help="registrations under load (0: none)"
    )
    parser.add_argument("--database", choices=postgres.BACKENDS, default="sqlite")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    found: dict[str, Any] = {"database": args.database}
    server = postgres.start_server(durable=True) if args.database == "postgresql" else None
    try:
        url = server.create_database("vir_integrator") if server else None
        found["throughput"] = throughput(args.entries, url)
        if args.operations > 0:
            found["under_load"] = load_run(args.operations, server)
    finally:
        if server is not None:
            server.stop()
    found["design"] = harness.describe_design(None)
    print("\n".join(summary(found)))
    if args.out:
        args.out.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
