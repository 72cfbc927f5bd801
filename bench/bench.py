"""``make bench``: vir against baselines measured in the same run on the same machine.

1. End-to-end registration (the real client: blind -> evaluate at the key holder ->
   unblind, then POST /v1/signals over HTTPS + mutual TLS), closed loop at several
   concurrencies, next to a bare FastAPI endpoint inserting one row into SQLite
   (bench/baseline_app.py). Target: best vir/baseline throughput >= 0.5. Beside
   them, the ceiling: the same client against two bare servers that do only the
   protocol's necessary work (bench/ceiling_app.py). At each concurrency they take
   turns, in rotation (``registration``).
2. Open-loop latency at 50% and 80% of that maximum, vir and the baseline at the same
   arrival rate (bench/openloop.py). Target: vir p99 <= 3 x baseline p99.
3. PostgreSQL scale-out: 1, 2 and 4 ``vir serve`` processes on one durable database,
   with the CPU one registration costs in each process, the process counts taking turns
   (bench/scaleout.py). Target: 2 processes / 1 >= 1.3 at concurrency 16.
4. Registration latency with 10,000 vs 1,000,000 signals stored. Target: <= 1.2.
5. Bulk import: ``vir-client import`` of 100,000 rows against the baseline's single-row
   rate at concurrency 1, measured before and after it (bench/bulk_import.py).
   Target: >= 3.
6. The lifecycle over 1,000,000 signals, 10% due, against the same changes in bare SQL
   (bench/lifecycle_bench.py). Target: <= 60 s.
7. The audit integrator against bare SHA-256 chaining, and its delay under the load of
   item 1 at concurrency 16 (bench/integrator_bench.py). Target: p99 <= 1 s.
8. The audit log (bench/audit_bench.py), the key holder (bench/keyholder_bench.py) and
   a rekey (bench/rekey.py).
9. The officers' reports, a checkpoint and an export over an audit log of 100,000 and
   500,000 entries: seconds, peak RSS (flat as the log grows), the longest a writer
   waited meanwhile, against a bare read of the same entries (bench/reports_bench.py).

``--vir-root DIR`` measures another checkout's ``vir`` (the previous design: its
``vir serve``, key holder and lifecycle; the load generator stays this one's): items
1-3 and 6, which that design has too. ``--skip`` leaves parts out; sizes have flags.
docs/benchmarks.md says what each figure is. Writes bench/results/<time>.json (and
the summary as <time>.txt) and prints the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import audit_bench
import bulk_import
import harness
import integrator_bench
import keyholder_bench
import lifecycle_bench
import openloop
import reports_bench
import scaleout
from harness import (
    ROOT,
    UNTHROTTLED,
    baseline_worker,
    design_env,
    drive,
    percentiles,
    service_processes,
    start_baseline,
    start_ceiling,
    vir_worker,
)
from store_fill import fill
from support.service import start_service

PARTS = (
    "openloop",
    "scaleout",
    "storesize",
    "import",
    "lifecycle",
    "integrator",
    "audit",
    "keyholder",
    "rekey",
    "reports",
)
# What the previous design has: the rest needs code it did not have (the batch endpoint
# and import command, the integrator) or runs this checkout's code in-process.
PREVIOUS_DESIGN_PARTS = frozenset({"openloop", "scaleout", "lifecycle"})


def store_size_latency(folder: Path, sizes: list[int], samples: int) -> list[dict[str, Any]]:
    """Registration latency on stores of different sizes, measured side by side.

    Both services run at once and requests alternate between them, so whatever
    else the machine does in the meantime falls on both alike.
    """
    services = []
    try:
        for size in sizes:
            service = start_service(folder / f"size-{size}", **UNTHROTTLED)
            service.stop()
            fill(service.root / "vir.db", size, service.org("gp").oin)
            services.append(start_service(service.root, **UNTHROTTLED))
        workers = [vir_worker(service, "education", batch=64)() for service in services]
        for worker in workers:
            for i in range(20):  # warm-up: connections, caches, statement compilation
                worker(-1 - i)
        timings: list[list[float]] = [[] for _ in services]
        for i in range(samples):
            for k, worker in enumerate(workers):
                t0 = time.perf_counter()
                worker(i)
                timings[k].append(time.perf_counter() - t0)
        return [
            {
                "stored_signals": size,
                "operations": samples,
                **percentiles(t),
                "peak_rss_mb": harness.vm_hwm_mb(service.process.pid),
            }
            for size, t, service in zip(sizes, timings, services, strict=True)
        ]
    finally:
        for service in services:
            service.stop()


def rekey_bench(signals: int) -> dict[str, Any]:
    """bench/rekey.py in its own process (it uses every core), its JSON result read back."""
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rekey.py"), "--signals", str(signals)], check=True
    )
    found: dict[str, Any] = json.loads((ROOT / "bench" / "results" / "rekey.json").read_text())
    return found


ROUNDS = 3  # turns each arm of figure 1 takes at each concurrency (``registration``)


def registration(
    folder: Path, levels: list[int], operations: int, vir_root: Path | None, report: dict[str, Any]
) -> tuple[Any, subprocess.Popen[bytes], str, harness.Ceiling]:
    """Closed-loop registration, the baseline and the ceiling at each concurrency, each
    ``operations`` in ``ROUNDS`` turns taken in rotation (``harness.combined``: the host
    drifts within a minute, and each arm gets every part of the level's run); the
    integration delay observed during vir's turns (plain and batched). Returns the
    service, the baseline and the ceiling, running."""
    service = start_service(folder / "main", **UNTHROTTLED, **design_env(vir_root))
    baseline, base_url = start_baseline(folder, service.dev)
    ceiling = start_ceiling(folder / "ceiling", service)
    watched = service_processes([service]).add("baseline", baseline.pid)
    watched.add("ceiling", *ceiling.pids)
    harness.check_design(service, vir_root)
    arms = {
        "baseline": baseline_worker(base_url, service.ca),
        "ceiling": vir_worker(service, "education", servers=ceiling),
        "registration": vir_worker(service, "education"),
        "registration_batched": vir_worker(service, "gp", batch=32),
    }
    per_turn = max(1, operations // ROUNDS)
    for level in levels:
        turns: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
        latencies: dict[str, list[float]] = {arm: [] for arm in arms}
        before = integrator_bench.scrape(service)
        for turn in range(ROUNDS):
            for arm in harness.turn_order(list(arms), turn):
                turns[arm].append(
                    drive(arms[arm], per_turn, level, watched.cpu, samples=latencies[arm])
                )
        delay = integrator_bench.delay_between(before, integrator_bench.scrape(service))
        report["integration_delay"][str(level)] = delay
        for arm in arms:
            report[arm].append(harness.combined(turns[arm], latencies[arm]))
        print(
            f"concurrency {level}: baseline {report['baseline'][-1]['per_second']}/s, "
            f"vir {report['registration'][-1]['per_second']}/s, batched "
            f"{report['registration_batched'][-1]['per_second']}/s",
            flush=True,
        )
    report["registration_peak_rss_mb"] = watched.peak_rss_mb()
    return service, baseline, base_url, ceiling


def check(value: float | None, target: str) -> bool | None:
    """Whether ``value`` meets ``target`` ('>= x' or '<= x'); None when not measured."""
    if value is None:
        return None
    bound = float(target.split()[1])
    return value >= bound if target.startswith(">=") else value <= bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--operations", type=int, default=900, help="figure 1: per arm and concurrency"
    )
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--vir-root", type=Path, help="another checkout's vir (previous design)")
    parser.add_argument("--skip", default="", help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("--open-loop-seconds", type=float, default=20.0)
    parser.add_argument("--open-loop-fractions", default="0.5,0.8")
    parser.add_argument("--scaleout-processes", default="1,2,4")
    parser.add_argument("--scaleout-concurrency", default="4,16,32")
    parser.add_argument("--scaleout-operations", type=int, default=1200)
    parser.add_argument("--scaleout-rounds", type=int, default=scaleout.ROUNDS)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--lifecycle-signals", type=int, default=1_000_000)
    parser.add_argument("--lifecycle-expiring-fraction", type=float, default=0.1)
    parser.add_argument("--integrator-entries", type=int, default=200_000)
    parser.add_argument("--audit-entries", type=int, default=1_000_000)
    parser.add_argument("--rekey-signals", type=int, default=1_000_000)
    parser.add_argument(
        "--report-entries", default="100000,500000", help="audit log sizes for the reports"
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if unknown := skip - set(PARTS):
        parser.error(f"--skip: unknown {', '.join(sorted(unknown))}")
    if args.no_postgres:
        skip.add("scaleout")
    if args.vir_root is not None:
        skip |= set(PARTS) - PREVIOUS_DESIGN_PARTS
    parts = [p for p in PARTS if p not in skip]
    folder = Path(tempfile.mkdtemp(prefix="vir-bench-"))
    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "design": harness.describe_design(args.vir_root),
        "parts": ["registration", *parts],
        "registration": [],
        "registration_batched": [],
        "baseline": [],
        "ceiling": [],
        "integration_delay": {},
    }
    host: dict[str, dict[str, float]] = {}
    report["host"] = host

    @contextlib.contextmanager
    def measuring(part: str) -> Iterator[None]:
        with harness.HostShare() as share:
            yield
        host[part] = share.found

    with measuring("registration"):
        service, baseline, base_url, ceiling = registration(
            folder, levels, args.operations, args.vir_root, report
        )
    try:
        if "openloop" in parts:
            best = max(r["per_second"] for r in report["registration"])
            with measuring("openloop"):
                report["open_loop"] = openloop.run(
                    service,
                    base_url,
                    best,
                    [float(f) for f in args.open_loop_fractions.split(",")],
                    args.open_loop_seconds,
                    baseline.pid,
                    ceiling,
                )
    finally:
        ceiling.terminate()
        baseline.terminate()
        service.stop()
    if "scaleout" in parts:
        with measuring("scaleout"):
            report["scaleout"] = scaleout.run(
                folder,
                [int(p) for p in args.scaleout_processes.split(",")],
                [int(c) for c in args.scaleout_concurrency.split(",")],
                args.scaleout_operations,
                args.vir_root,
                args.scaleout_rounds,
            )
    if "storesize" in parts:
        with measuring("storesize"):
            report["store_size"] = store_size_latency(folder, [10_000, args.large], args.samples)
    if "import" in parts:
        with measuring("import"):
            report["bulk_import"] = bulk_import.run(folder / "import", args.import_rows, 600)
    if "lifecycle" in parts:
        with measuring("lifecycle"):
            report["lifecycle"] = lifecycle_bench.run(
                folder / "lifecycle",
                args.lifecycle_signals,
                args.lifecycle_expiring_fraction,
                args.vir_root,
            )
    if "integrator" in parts:
        loaded = max(levels)
        with measuring("integrator"):
            report["integrator"] = {
                "throughput": integrator_bench.throughput(args.integrator_entries),
                "under_load": {
                    "registration": report["registration"][levels.index(loaded)],
                    "delay": report["integration_delay"][str(loaded)],
                    "peak_rss_mb": report["registration_peak_rss_mb"],
                },
            }
    if "audit" in parts:
        with measuring("audit"):
            report["audit"] = audit_bench.run(args.audit_entries)
    if "keyholder" in parts:
        with measuring("keyholder"):
            report["keyholder"] = keyholder_bench.run(folder, UNTHROTTLED)
    if "rekey" in parts:
        with measuring("rekey"):
            report["rekey"] = rekey_bench(args.rekey_signals)
    if "reports" in parts:
        with measuring("reports"):
            report["reports"] = reports_bench.run(
                folder, [int(s) for s in args.report_entries.split(",")]
            )
    report["targets"], report["targets_met"] = targets(report)
    report["source_digest_at_end"] = harness.source_digest((args.vir_root or ROOT).resolve())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    design = report["design"]
    name = stamp if args.vir_root is None else f"{stamp}-previous-{design['commit']}"
    out = harness.results_dir() / f"{name}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    lines = summary(report)
    lines.append(f"written: {out.relative_to(ROOT)} (and .txt)")
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    print()
    print("\n".join(lines))


def targets(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bool | None]]:
    """The figures that have targets (and a few without), and which targets are met."""
    registration, base = report["registration"], report["baseline"]
    best_vir = max(r["per_second"] for r in registration)
    best_batched = max(r["per_second"] for r in report["registration_batched"])
    best_base = max(r["per_second"] for r in base)
    found: dict[str, Any] = {
        "throughput_ratio_best": round(best_vir / best_base, 3),
        "throughput_ratio_best_batched": round(best_batched / best_base, 3),
        "throughput_ratio_by_concurrency": {
            str(v["concurrency"]): round(v["per_second"] / b["per_second"], 3)
            for v, b in zip(registration, base, strict=True)
        },
    }
    if report.get("ceiling"):
        best_ceiling = max(r["per_second"] for r in report["ceiling"])
        found["ceiling_ratio_best"] = round(best_ceiling / best_base, 3)
        found["vir_over_ceiling_best"] = round(best_vir / best_ceiling, 3)
    goals: dict[str, tuple[float | None, str]] = {
        "throughput_ratio_best": (found["throughput_ratio_best"], ">= 0.5"),
    }
    if "open_loop" in report:
        for run in report["open_loop"]["runs"]:
            key = f"open_loop_p99_ratio_at_{round(100 * run['fraction_of_max'])}pct"
            found[key] = run["p99_ratio"]
            goals[key] = (run["p99_ratio"], "<= 3")
            if "ceiling_p99_ratio" in run:
                found[key.replace("open_loop_", "open_loop_ceiling_")] = run["ceiling_p99_ratio"]
    if "scaleout" in report:
        ratios = report["scaleout"]["ratios"]
        found["scaleout_ratios"] = ratios
        for name in ("2/1", "4/1"):
            at16 = ratios.get(name, {}).get("16")
            found[f"scaleout_{name[0]}_over_1_at_16"] = at16
            if name == "2/1":
                goals["scaleout_2_over_1_at_16"] = (at16, ">= 1.3")
        found["scaleout_never_falls"] = report["scaleout"]["never_falls"]
    if "store_size" in report:
        small, large = report["store_size"]
        found["p50_large_over_small"] = round(large["p50_ms"] / small["p50_ms"], 3)
        goals["p50_large_over_small"] = (found["p50_large_over_small"], "<= 1.2")
    if "bulk_import" in report:
        found["import_ratio_to_single_row_baseline"] = report["bulk_import"]["ratio_to_baseline"]
        if "ceiling" in report["bulk_import"]:
            found["import_ceiling_ratio_to_single_row_baseline"] = report["bulk_import"]["ceiling"][
                "ratio_to_baseline"
            ]
        goals["import_ratio_to_single_row_baseline"] = (
            found["import_ratio_to_single_row_baseline"],
            ">= 3",
        )
    if "lifecycle" in report:
        found["lifecycle_seconds"] = report["lifecycle"]["vir"]["seconds"]
        found["lifecycle_ratio_to_bare_sql"] = report["lifecycle"]["ratio_to_baseline"]
        goals["lifecycle_seconds"] = (found["lifecycle_seconds"], "<= 60")
    if "integrator" in report:
        found["integrator_ratio_to_sha256"] = report["integrator"]["throughput"]["ratio_to_sha256"]
        delay = report["integrator"]["under_load"]["delay"] or {}
        found["integration_delay_p99_s_at_most"] = delay.get("p99_s_at_most")
        goals["integration_delay_p99_s_at_most"] = (delay.get("p99_s_at_most"), "<= 1")
    found["goals"] = {name: target for name, (_value, target) in goals.items()}
    met = {name: check(value, target) for name, (value, target) in goals.items()}
    return found, met


def summary(report: dict[str, Any]) -> list[str]:
    design = report["design"]
    lines = [
        f"vir bench, {design['design']} design: {design['vir_root']} at {design['commit']}"
        f"{' (with uncommitted changes)' if design['uncommitted_changes'] else ''}; "
        f"{report['machine']['cpus']} CPUs, {report['when']}; vir source digest "
        f"{design['source_digest']}"
        + (
            ""
            if report["source_digest_at_end"] == design["source_digest"]
            else f" at the start, {report['source_digest_at_end']} at the end (edited meanwhile)"
        ),
        "",
        "registration (real client: pseudonymise + POST /v1/signals, HTTPS + mTLS), SQLite",
        f"{'conc':>5} {'vir/s':>8} {'base/s':>8} {'ratio':>6} {'p50':>8} {'p95':>8} "
        f"{'p99':>8}   baseline p50/p99   CPU ms/reg (vir serve, key holder, client)",
    ]
    for v, b in zip(report["registration"], report["baseline"], strict=True):
        cpu = v.get("cpu_ms_per_operation", {})
        lines.append(
            f"{v['concurrency']:>5} {v['per_second']:>8} {b['per_second']:>8} "
            f"{v['per_second'] / b['per_second']:>6.2f} {v['p50_ms']:>7}ms {v['p95_ms']:>7}ms "
            f"{v['p99_ms']:>7}ms   {b['p50_ms']}ms/{b['p99_ms']}ms   "
            f"{cpu.get('vir_serve')}, {cpu.get('keyholder')}, {cpu.get('client')}"
        )
    lines.append("same, identities pseudonymised 32 signals at a time (one evaluation per 64)")
    for v, b in zip(report["registration_batched"], report["baseline"], strict=True):
        lines.append(
            f"{v['concurrency']:>5} {v['per_second']:>8} {b['per_second']:>8} "
            f"{v['per_second'] / b['per_second']:>6.2f} {v['p50_ms']:>7}ms {v['p95_ms']:>7}ms "
            f"{v['p99_ms']:>7}ms"
        )
    if report.get("ceiling"):
        lines.append(
            "the ceiling: the same client against two bare servers (bench/ceiling_app.py: a key "
            "holder that only multiplies, an index that only inserts)"
        )
        for c, v, b in zip(
            report["ceiling"], report["registration"], report["baseline"], strict=True
        ):
            cpu = c.get("cpu_ms_per_operation", {})
            lines.append(
                f"{c['concurrency']:>5} {c['per_second']:>8} {b['per_second']:>8} "
                f"{c['per_second'] / b['per_second']:>6.2f} {c['p50_ms']:>7}ms {c['p95_ms']:>7}ms "
                f"{c['p99_ms']:>7}ms   vir/ceiling {v['per_second'] / c['per_second']:.2f}   "
                f"CPU ms/reg: both servers {cpu.get('ceiling')}, client {cpu.get('client')}"
            )
    rss = report["registration_peak_rss_mb"]
    targets = report["targets"]
    lines += [
        f"peak RSS MiB: vir serve {rss['vir_serve']}, key holder {rss['keyholder']}, "
        f"baseline {rss['baseline']}, load generator {rss['client']}",
        f"best throughput ratio vir/baseline: {targets['throughput_ratio_best']} "
        f"per-signal pseudonymisation (target >= 0.5), "
        f"{targets['throughput_ratio_best_batched']} batched",
    ]
    if "ceiling_ratio_best" in targets:
        lines.append(
            f"best ratio of the ceiling to the baseline: {targets['ceiling_ratio_best']}; "
            f"vir's best is {targets['vir_over_ceiling_best']} of the ceiling's"
        )
    if "open_loop" in report:
        lines += ["", *openloop.summary(report["open_loop"])]
    if "scaleout" in report:
        lines += ["", *scaleout.summary(report["scaleout"])]
    if "store_size" in report:
        small, large = report["store_size"]
        lines += [
            "",
            f"store size: p50 {small['p50_ms']} ms at {small['stored_signals']:,} signals, "
            f"{large['p50_ms']} ms at {large['stored_signals']:,} "
            f"(ratio {targets['p50_large_over_small']}; target <= 1.2); peak RSS of vir serve "
            f"{small.get('peak_rss_mb')} / {large.get('peak_rss_mb')} MiB",
        ]
    if "bulk_import" in report:
        lines += ["", *bulk_import.summary(report["bulk_import"])]
    if "lifecycle" in report:
        lines += ["", *lifecycle_bench.summary(report["lifecycle"])]
    if "integrator" in report:
        lines += ["", *integrator_bench.summary(report["integrator"])]
    if "audit" in report:
        lines += ["", *audit_summary(report["audit"])]
    if "reports" in report:
        lines += ["", *reports_bench.summary(report["reports"])]
    if "keyholder" in report:
        held = report["keyholder"]
        lines += [
            "",
            f"key holder: {held['evaluated_elements_per_second']:,} elements/s evaluated "
            f"(32 a request, {held['keyholder_workers']} processes) vs bare scalar "
            f"multiplication {held['bare_scalarmult_per_second']:,}/s: ratio "
            f"{held['evaluation_ratio']} (target >= 0.5; one process "
            f"{held['one_process']['evaluation_ratio']}); CPU ms per request: key holder "
            f"{held['cpu_ms_per_request']['keyholder']}, load generator "
            f"{held['cpu_ms_per_request']['client']}; pseudonymise p50 single key "
            f"{held['pseudonymise_single_key']['p50_ms']} ms, 2-of-3 "
            f"{held['pseudonymise_threshold_2_of_3']['p50_ms']} ms; peak RSS MiB: key holder "
            f"{held['peak_rss_mb']['keyholder']}, load generator "
            f"{held['peak_rss_mb']['load_generator']}",
        ]
    if "rekey" in report:
        rekey = report["rekey"]
        lines += [
            "",
            f"rekey: {rekey.get('signals', 0):,} signals, {rekey.get('seconds')} s, "
            f"{rekey.get('pseudonyms_per_second')} pseudonyms/s, ratio to bare "
            f"{rekey.get('ratio_to_bare')} (target >= {rekey.get('target_ratio')}; against the "
            f"bare rate before and after: {rekey.get('ratio_range')}, against it tracked "
            f"through the run: {rekey.get('ratio_to_tracked_bare')}"
            f"{'' if rekey.get('steady', True) else ', UNSTEADY: run again'}); switch "
            f"{rekey.get('switch_seconds')} s; peak RSS {rekey.get('rekey_peak_rss_mb')} MiB",
        ]
    skipped = [p for p in PARTS if p not in report["parts"]]
    if skipped:
        lines += ["", f"not run: {', '.join(skipped)}"]
    if report.get("host"):
        lines += ["", "the machine while each part ran (/proc/stat: busy, and stolen by the host):"]
        lines += [
            f"  {part}: busy {found['busy_percent']}%{harness.host_note(found)}"
            for part, found in report["host"].items()
        ]
    lines += ["", "targets:"]
    for name, target in targets["goals"].items():
        met = report["targets_met"][name]
        value = targets.get(name)
        shown = "not measured" if met is None else ("met" if met else "NOT met")
        lines.append(f"  {name}: {value} (target {target}): {shown}")
    return lines


def audit_summary(audit: dict[str, Any]) -> list[str]:
    base = audit["append_baseline"]["per_second"]
    lines = [
        f"audit: verify export of {audit['verify_export']['entries']:,} entries "
        f"{audit['verify_export']['seconds']} s (target <= 10 s); raw SHA-256 "
        f"{audit['sha256']['hashes_per_second']:,}/s of {audit['sha256']['bytes_per_hash']} B "
        f"({audit['sha256']['mb_per_second']} MB/s); peak RSS of the bench process "
        f"{audit.get('peak_rss_mb')} MiB",
        f"audit appends (target >= 5,000/s); baseline: bare sqlite3, one durable commit "
        f"per entry, {base:,}/s",
        "  entries/tx  writers  appends/s  commits  ratio to baseline",
    ]
    for append in audit["append"]:
        lines.append(
            f"  {append['per_transaction']:>10}  {append['writers']:>7}  "
            f"{append['per_second']:>9,}  {append['commits']:>7,}  "
            f"{append['per_second'] / base:>6.2f}"
        )
    return lines


if __name__ == "__main__":
    main()
