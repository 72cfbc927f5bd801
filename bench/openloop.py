"""Open-loop latency: registrations arriving at a fixed rate, vir next to the baseline.

Closed-loop runs (``harness.drive``) wait for an answer before sending the next
request, so a slow moment also slows the arrivals and hides itself (coordinated
omission). Here requests are due on a fixed schedule, at 50% and 80% of the
maximum throughput the closed-loop run measured, from a pool of 64 threads; each
latency runs from the request's due time to its answer (``harness.open_loop``).
The bare-insert baseline gets the same schedule (vir's rate, not its own maximum),
so both see the same load. Target: vir's p99 <= 3 x the baseline's p99. With the
ceiling's bare servers (bench/ceiling_app.py) the same client gets the same schedule
against them too: the p99 ratio of servers that do none of vir's own work.

``python bench/openloop.py [--seconds S] [--fractions 0.5,0.8] [--vir-root DIR]``
starts a service and the baseline, measures the maximum throughput closed-loop
(``--max-operations`` at concurrency 16), then the open-loop runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
from harness import (
    UNTHROTTLED,
    Ceiling,
    baseline_worker,
    design_env,
    drive,
    open_loop,
    service_processes,
    start_baseline,
    start_ceiling,
    vir_worker,
)
from support.service import RunningService, start_service

THREADS = 64


def run(
    service: RunningService,
    base_url: str,
    max_per_second: float,
    fractions: list[float],
    seconds: float,
    baseline_pid: int | None = None,
    ceiling: Ceiling | None = None,
) -> dict[str, Any]:
    watched = service_processes([service])
    if baseline_pid is not None:
        watched.add("baseline", baseline_pid)
    runs = []
    for fraction in fractions:
        rate = max_per_second * fraction
        vir = open_loop(vir_worker(service, "education"), rate, seconds, THREADS)
        base = open_loop(baseline_worker(base_url, service.ca), rate, seconds, THREADS)
        found: dict[str, Any] = {
            "fraction_of_max": fraction,
            "vir": vir,
            "baseline": base,
            "p99_ratio": round(vir["p99_ms"] / base["p99_ms"], 2),
            "peak_rss_mb": watched.peak_rss_mb(),
        }
        if ceiling is not None:
            bare = vir_worker(service, "education", servers=ceiling)
            found["ceiling"] = open_loop(bare, rate, seconds, THREADS)
            found["ceiling_p99_ratio"] = round(found["ceiling"]["p99_ms"] / base["p99_ms"], 2)
        runs.append(found)
        print(
            f"open loop at {fraction:.0%} of {max_per_second}/s ({rate:.1f}/s): vir p50 "
            f"{vir['p50_ms']} ms p99 {vir['p99_ms']} ms, baseline p50 {base['p50_ms']} ms "
            f"p99 {base['p99_ms']} ms",
            flush=True,
        )
    return {"max_per_second": max_per_second, "threads": THREADS, "runs": runs}


def summary(found: dict[str, Any]) -> list[str]:
    lines = [
        f"open loop: arrivals at a fixed rate, latency from each request's due time "
        f"({found['threads']} sender threads; max closed-loop {found['max_per_second']}/s)",
        f"{'load':>5} {'rate/s':>7} {'vir p50':>9} {'vir p99':>9} {'base p50':>9} "
        f"{'base p99':>9} {'p99 ratio':>9}  late  peak RSS MiB",
    ]
    for r in found["runs"]:
        vir, base, rss = r["vir"], r["baseline"], r["peak_rss_mb"]
        lines.append(
            f"{r['fraction_of_max']:>5.0%} {vir['rate_per_second']:>7} {vir['p50_ms']:>7}ms "
            f"{vir['p99_ms']:>7}ms {base['p50_ms']:>7}ms {base['p99_ms']:>7}ms "
            f"{r['p99_ratio']:>9}  {vir['late_sends']}/{base['late_sends']}  "
            f"vir {rss['vir_serve']}, key holder {rss['keyholder']}, "
            f"baseline {rss.get('baseline', '-')}, client {rss['client']}"
        )
    for r in found["runs"]:
        if "ceiling" in r:
            bare = r["ceiling"]
            lines.append(
                f"{r['fraction_of_max']:>5.0%} the ceiling (the same client, bare servers): "
                f"p50 {bare['p50_ms']}ms p99 {bare['p99_ms']}ms, p99 ratio "
                f"{r['ceiling_p99_ratio']}, late {bare['late_sends']}"
            )
    lines.append("target: vir p99 <= 3 x baseline p99 at the same rate")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fractions", default="0.5,0.8")
    parser.add_argument("--max-operations", type=int, default=600)
    parser.add_argument("--vir-root", type=Path, help="another checkout's vir (the old design)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vir-openloop-"))
    service = start_service(folder / "main", **UNTHROTTLED, **design_env(args.vir_root))
    baseline, base_url = start_baseline(folder, service.dev)
    ceiling = start_ceiling(folder / "ceiling", service)
    try:
        harness.check_design(service, args.vir_root)
        closed = drive(vir_worker(service, "education"), args.max_operations, 16)
        print(f"closed loop at concurrency 16: {closed['per_second']}/s", flush=True)
        with harness.HostShare() as host:
            found = run(
                service,
                base_url,
                closed["per_second"],
                [float(f) for f in args.fractions.split(",")],
                args.seconds,
                baseline.pid,
                ceiling,
            )
    finally:
        ceiling.terminate()
        baseline.terminate()
        service.stop()
        shutil.rmtree(folder, ignore_errors=True)
    found["closed_loop"] = closed
    found["design"] = harness.describe_design(args.vir_root)
    found["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    found["host"] = host.found
    print("\n".join(summary(found)) + harness.host_note(host.found))
    if args.out:
        args.out.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
