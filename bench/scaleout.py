"""PostgreSQL scale-out: 1, 2 and 4 ``vir serve`` processes on one durable database.

For each number of processes, a fresh deployment (``vir dev init``: PKI, keys, one
key holder) on a fresh database of one durable PostgreSQL server (fsync on, as
SQLite's ``synchronous=FULL``), all of them running side by side, and closed-loop
registration through the real client (pseudonymise at the key holder, then
``POST /v1/signals``) at each concurrency, the process counts taking turns (``run``:
``--rounds`` turns each, in rotation). Client connections are spread round-robin over
the processes, as a proxy balancing connections would. Reported per setting:
registrations per second (the median turn's, and each turn's) and latency, the CPU
milliseconds one registration costs in the ``vir serve`` processes, the key holder,
the PostgreSQL server (postmaster and every backend) and the load generator, and
their peak resident memory; then the ratios 2/1 and 4/1 (medians of the turns taken
side by side) at
each concurrency (target at 16: 2/1 >= 1.3 on 2 cores), and what bounds them: the cores
every process together kept busy, and how many 1.3 times one process's throughput would
take at one process's CPU a registration (``bound``; a second process can only add
throughput the machine has cores left for).

``python bench/scaleout.py [--processes 1,2,4] [--concurrency 4,16,32]
[--operations N] [--rounds N] [--vir-root DIR]``: ``--vir-root`` runs another checkout's ``vir``
(the previous design: ``git clone /work/main /tmp/vir-old && git -C /tmp/vir-old
checkout 36efe92``); the load generator stays this checkout's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
from harness import (
    UNTHROTTLED,
    Processes,
    combined,
    design_env,
    drive,
    service_processes,
    turn_order,
    vir_worker,
)
from support import postgres
from support.service import RunningService, start_service

# Turns each process count takes at each concurrency (``run``).
ROUNDS = 3


def run(
    folder: Path,
    processes: list[int],
    levels: list[int],
    operations: int,
    vir_root: Path | None = None,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """Every process count's deployment is started first, each on a database of its own;
    then, at each concurrency, the counts take turns ``rounds`` times (the order turned
    by one each round), each turn ``operations / rounds`` registrations. The host's speed
    drifts within a minute (docs/benchmarks.md): measured one after the other, the first
    count got one host and the last another; taking turns gives each count every part
    of the run, and a ratio is the median of the rounds' ratios, each of two turns
    measured side by side."""
    server = postgres.start_server(durable=True)
    env = {**UNTHROTTLED, **design_env(vir_root)}
    deployments: dict[int, list[RunningService]] = {}
    settings: list[dict[str, Any]] = []
    per_round = max(1, operations // rounds)
    try:
        for count in processes:
            url = server.create_database(f"vir_scale_{count}")
            services = deployments[count] = []
            first = start_service(folder / f"pg-{count}", VIR_DATABASE_URL=url, **env)
            services.append(first)
            harness.check_design(first, vir_root)
            for _ in range(count - 1):
                services.append(start_service(first.root, VIR_DATABASE_URL=url, **env))
        assert server.process is not None
        watched = {
            count: service_processes(services).add("postgres", server.process.pid)
            for count, services in deployments.items()
        }
        for level in levels:
            turns: dict[int, list[dict[str, Any]]] = {count: [] for count in processes}
            latencies: dict[int, list[float]] = {count: [] for count in processes}
            for turn in range(rounds):
                for count in turn_order(processes, turn):
                    turns[count].append(
                        _measure(
                            deployments[count],
                            watched[count],
                            count,
                            level,
                            per_round,
                            latencies[count],
                        )
                    )
            for count in processes:
                settings.append(combined(turns[count], latencies[count]))
                found = settings[-1]
                print(
                    f"PostgreSQL, {count} process(es), concurrency {level}: "
                    f"{found['per_second']}/s (turns {found['per_second_turns']}), "
                    f"p50 {found['p50_ms']} ms, p99 {found['p99_ms']} ms, CPU ms/registration "
                    f"{found['cpu_ms_per_operation']}",
                    flush=True,
                )
    finally:
        for services in deployments.values():
            for service in services:
                service.stop()
        server.stop()
    return {
        "rounds": rounds,
        "settings": settings,
        "ratios": ratios(settings),
        "never_falls": never_falls(settings),
        "bound": bound(settings, os.cpu_count() or 1),
    }


def _measure(
    services: list[RunningService],
    watched: Processes,
    count: int,
    level: int,
    operations: int,
    latencies: list[float],
) -> dict[str, Any]:
    turn = itertools.count()

    def make() -> Callable[[int], None]:
        return vir_worker(services[next(turn) % len(services)], "education")()

    found = drive(make, operations, level, snapshot=watched.cpu, samples=latencies)
    return {"processes": count, **found, "peak_rss_mb": watched.peak_rss_mb()}


def ratios(settings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per concurrency, throughput with n processes over throughput with one: the median
    of the ratios of the turns taken side by side (``per_second_turns``), or of the
    settings' throughputs when they were measured once."""
    one = {s["concurrency"]: s for s in settings if s["processes"] == 1}
    found: dict[str, dict[str, float]] = {}
    for s in settings:
        base = one.get(s["concurrency"])
        if s["processes"] == 1 or base is None:
            continue
        pairs = zip(
            s.get("per_second_turns", [s["per_second"]]),
            base.get("per_second_turns", [base["per_second"]]),
            strict=True,
        )
        found.setdefault(f"{s['processes']}/1", {})[str(s["concurrency"])] = round(
            statistics.median(n / m for n, m in pairs), 3
        )
    return found


def cpu_ms(setting: dict[str, Any]) -> float:
    """The CPU milliseconds one registration cost every measured process together."""
    return float(sum(setting["cpu_ms_per_operation"].values()))


def bound(settings: list[dict[str, Any]], cores: int, target: float = 1.3) -> dict[str, Any]:
    """Per concurrency with a one-process setting: the cores all processes kept busy with
    one process (registrations a second times CPU seconds a registration), the cores
    ``target`` times its throughput would keep busy at the same CPU a registration, and
    the CPU a registration each process count cost. More processes reach ``target`` only
    if that need is within the machine's ``cores`` and they cost no more a registration
    than one process does."""
    found: dict[str, Any] = {"cores": cores, "target": target, "by_concurrency": {}}
    for one in (s for s in settings if s["processes"] == 1):
        level = one["concurrency"]
        busy = one["per_second"] * cpu_ms(one) / 1000
        found["by_concurrency"][str(level)] = {
            "cores_busy_one_process": round(busy, 2),
            "cores_needed_for_target": round(target * busy, 2),
            "cpu_ms_per_registration": {
                str(s["processes"]): round(cpu_ms(s), 3)
                for s in settings
                if s["concurrency"] == level
            },
        }
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
    if "rounds" in found:
        lines[0] += (
            f"; each setting {found['rounds']} turns taken in rotation with the other "
            "process counts, reg/s the median turn's"
        )
    for s in found["settings"]:
        cpu = s["cpu_ms_per_operation"]
        rss = s["peak_rss_mb"]
        lines.append(
            f"{s['processes']:>5} {s['concurrency']:>5} {s['per_second']:>8} "
            f"{s['p50_ms']:>7}ms {s['p99_ms']:>7}ms   "
            f"{cpu['vir_serve']:>6} {cpu['keyholder']:>6} {cpu['postgres']:>6} "
            f"{cpu['client']:>6}   vir {rss['vir_serve']}, key holder {rss['keyholder']}, "
            f"postgres {rss['postgres']}, client {rss['client']}"
            + (f"   turns {s['per_second_turns']}" if "per_second_turns" in s else "")
        )
    for name, by_level in found["ratios"].items():
        shown = ", ".join(f"{v} at {k}" for k, v in by_level.items())
        target = " (target at 16: >= 1.3)" if name == "2/1" else ""
        if "rounds" in found:
            target += "; medians of the turns' ratios"
        lines.append(f"throughput ratio {name} processes: {shown}{target}")
    limits: dict[str, Any] = found.get("bound") or {}
    for level, b in limits.get("by_concurrency", {}).items():
        spent = ", ".join(f"{n}: {ms}" for n, ms in b["cpu_ms_per_registration"].items())
        lines.append(
            f"at {level}: one process kept {b['cores_busy_one_process']} of "
            f"{limits['cores']} cores busy; {limits['target']} x its throughput at its CPU a "
            f"registration needs {b['cores_needed_for_target']}; CPU ms a registration, all "
            f"processes, by vir serve processes: {spent}"
        )
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
    parser.add_argument("--operations", type=int, default=1200, help="per setting, all turns")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
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
                args.rounds,
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
