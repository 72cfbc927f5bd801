"""PostgreSQL scale-out: 1, 2 and 4 ``vir serve`` processes on one durable database.

For each number of processes, a fresh deployment (``vir dev init``: PKI, keys, one
key holder) on a fresh database of one durable PostgreSQL server (fsync on, as
SQLite's ``synchronous=FULL``), and closed-loop registration through the real
client (pseudonymise at the key holder, then ``POST /v1/signals``) at each
concurrency. Client connections are spread round-robin over the processes, as a
proxy balancing connections would. Reported per setting: registrations per second
and latency, the CPU milliseconds one registration costs in the ``vir serve``
processes, the key holder, the PostgreSQL server (postmaster and every backend) and
the load generator, and their peak resident memory; then the ratios 2/1 and 4/1 at
each concurrency (target at 16: 2/1 >= 1.3 on 2 cores).

``python bench/scaleout.py [--processes 1,2,4] [--concurrency 4,16,32]
[--operations N] [--vir-root DIR]``: ``--vir-root`` runs another checkout's ``vir``
(the previous design: ``git clone /work/main /tmp/vir-old && git -C /tmp/vir-old
checkout 36efe92``); the load generator stays this checkout's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
from harness import UNTHROTTLED, Processes, design_env, drive, service_processes, vir_worker
from support import postgres
from support.service import RunningService, start_service


def run(
    folder: Path,
    processes: list[int],
    levels: list[int],
    operations: int,
    vir_root: Path | None = None,
) -> dict[str, Any]:
    server = postgres.start_server(durable=True)
    env = {**UNTHROTTLED, **design_env(vir_root)}
    settings: list[dict[str, Any]] = []
    try:
        for count in processes:
            url = server.create_database(f"vir_scale_{count}")
            services: list[RunningService] = []
            try:
                first = start_service(folder / f"pg-{count}", VIR_DATABASE_URL=url, **env)
                services.append(first)
                harness.check_design(first, vir_root)
                for _ in range(count - 1):
                    services.append(start_service(first.root, VIR_DATABASE_URL=url, **env))
                assert server.process is not None
                watched = service_processes(services).add("postgres", server.process.pid)
                for level in levels:
                    settings.append(_measure(services, watched, count, level, operations))
                    found = settings[-1]
                    print(
                        f"PostgreSQL, {count} process(es), concurrency {level}: "
                        f"{found['per_second']}/s, p50 {found['p50_ms']} ms, "
                        f"p99 {found['p99_ms']} ms, CPU ms/registration "
                        f"{found['cpu_ms_per_operation']}",
                        flush=True,
                    )
            finally:
                for service in services:
                    service.stop()
    finally:
        server.stop()
    return {"settings": settings, "ratios": ratios(settings), "never_falls": never_falls(settings)}


def _measure(
    services: list[RunningService],
    watched: Processes,
    count: int,
    level: int,
    operations: int,
) -> dict[str, Any]:
    turn = itertools.count()

    def make() -> Callable[[int], None]:
        return vir_worker(services[next(turn) % len(services)], "education")()

    found = drive(make, operations, level, snapshot=watched.cpu)
    return {"processes": count, **found, "peak_rss_mb": watched.peak_rss_mb()}


def ratios(settings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per concurrency, throughput with n processes over throughput with one."""
    one = {s["concurrency"]: s["per_second"] for s in settings if s["processes"] == 1}
    found: dict[str, dict[str, float]] = {}
    for s in settings:
        if s["processes"] != 1 and s["concurrency"] in one:
            found.setdefault(f"{s['processes']}/1", {})[str(s["concurrency"])] = round(
                s["per_second"] / one[s["concurrency"]], 3
            )
    return found


def never_falls(settings: list[dict[str, Any]], slack: float = 0.05) -> dict[str, bool]:
    """Per process count: whether throughput stays within ``slack`` (5%, run-to-run noise)
    of its best at a lower concurrency as concurrency is added."""
    found: dict[str, bool] = {}
    for count in sorted({s["processes"] for s in settings}):
        rates = [
            s["per_second"]
            for s in sorted(settings, key=lambda s: s["concurrency"])
            if s["processes"] == count
        ]
        found[str(count)] = all(
            rate >= (1 - slack) * max(rates[:i]) for i, rate in enumerate(rates) if i
        )
    return found


def summary(found: dict[str, Any]) -> list[str]:
    lines = [
        "PostgreSQL (durable), 1/2/4 vir serve processes on one database, round-robin",
        f"{'procs':>5} {'conc':>5} {'reg/s':>8} {'p50':>9} {'p99':>9}   CPU ms/registration "
        "(vir serve, key holder, postgres, client)   peak RSS MiB (largest process)",
    ]
    for s in found["settings"]:
        cpu = s["cpu_ms_per_operation"]
        rss = s["peak_rss_mb"]
        lines.append(
            f"{s['processes']:>5} {s['concurrency']:>5} {s['per_second']:>8} "
            f"{s['p50_ms']:>7}ms {s['p99_ms']:>7}ms   "
            f"{cpu['vir_serve']:>6} {cpu['keyholder']:>6} {cpu['postgres']:>6} "
            f"{cpu['client']:>6}   vir {rss['vir_serve']}, key holder {rss['keyholder']}, "
            f"postgres {rss['postgres']}, client {rss['client']}"
        )
    for name, by_level in found["ratios"].items():
        shown = ", ".join(f"{v} at {k}" for k, v in by_level.items())
        target = " (target at 16: >= 1.3)" if name == "2/1" else ""
        lines.append(f"throughput ratio {name} processes: {shown}{target}")
    falls = found.get("never_falls", {})
    lines.append(
        "throughput never falls (by more than 5%) as concurrency is added: "
        + ", ".join(f"{n} process(es) {'yes' if ok else 'NO'}" for n, ok in falls.items())
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--concurrency", default="4,16,32")
    parser.add_argument("--operations", type=int, default=800)
    parser.add_argument("--vir-root", type=Path, help="another checkout's vir (the old design)")
    parser.add_argument("--out", type=Path, help="write the JSON here as well")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vir-scaleout-"))
    try:
        with harness.HostShare() as host:
            found = run(
                folder,
                [int(p) for p in args.processes.split(",")],
                [int(c) for c in args.concurrency.split(",")],
                args.operations,
                args.vir_root,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    found["design"] = harness.describe_design(args.vir_root)
    found["when"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    found["host"] = host.found
    print("\n".join(summary(found)) + harness.host_note(host.found))
    if args.out:
        args.out.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
