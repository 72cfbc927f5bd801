"""Bulk import: ``vir-client import FILE.csv`` of 100,000 signals against a running service.

The file is made up here in the format of docs/import.md: one row per signal, a
young person's BSN and one parent's (distinct made-up numbers that pass the
11-proof, ``harness.UniqueBsns``), and the professional's contact details.
The command runs as a back office would run it (its own process, the real client:
identities pseudonymised at the key holder 64 at a time, ``POST /v1/signals/batch``,
the state file written after each batch), against ``vir serve`` on SQLite with the
rate limits raised (``harness.UNTHROTTLED``: the default burst is 10,000).

Figure: rows per second over the command's whole run (process start to exit), as a
ratio to the bare-insert baseline's single-row rate at concurrency 1 measured in
the same run (target >= 3). Also the CPU a row costs in each process and their peak
resident memory. The previous design had no batch endpoint and no import command.

``python bench/bulk_import.py [--rows N] [--baseline-operations N]``
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
from harness import (
    UNTHROTTLED,
    ChildResult,
    baseline_worker,
    drive,
    run_child,
    service_processes,
    start_baseline,
    start_ceiling,
)
from support.service import start_service

COLUMNS = (
    "local_ref",
    "bsn",
    "parent1_bsn",
    "professional_name",
    "professional_email",
    "professional_phone",
)


def write_csv(path: Path, rows: int) -> None:
    """``rows`` signals, every BSN in the file distinct (a young person and a parent)."""
    fresh = harness.UniqueBsns()  # distinct by construction

    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS)
        for i in range(rows):
            out.writerow(
                (f"IMP-{i:07d}", fresh(), fresh(), "Anna de Wit", "anna@example.nl", "010-1234567")
            )


def _import(path: Path, index_url: str, keyholder_url: str, service: Any) -> ChildResult:
    """``vir-client import path`` against an index and a key holder, in its own process."""
    org = service.org("education")
    return run_child(
        [
            str(Path(sys.executable).parent / "vir-client"),
            "--url",
            index_url,
            "--keyholder",
            keyholder_url,
            "--ca",
            service.ca,
            "--cert",
            org.cert,
            "--key",
            org.key,
            "import",
            str(path),
            "--quiet",
        ],
        env=harness.child_env(None),
    )


def _registered(child: ChildResult) -> int:
    out = str(child.output.get("stdout", ""))
    return next(
        (int(line.split(":")[1]) for line in out.splitlines() if line.startswith("registered:")),
        0,
    )


def run(folder: Path, rows: int, baseline_operations: int) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    path = folder / "signalen.csv"
    write_csv(path, rows)
    print(f"import: {rows:,} rows written in {time.perf_counter() - started:.1f} s", flush=True)
    service = start_service(folder / "main", **UNTHROTTLED)
    baseline, base_url = start_baseline(folder, service.dev)
    ceiling = start_ceiling(folder / "ceiling", service)
    try:
        harness.check_design(service, None)
        base = drive(baseline_worker(base_url, service.ca), baseline_operations, 1)
        watched = service_processes([service]).add("ceiling", *ceiling.pids)
        before = watched.cpu()
        child = _import(path, service.url, service.keyholder_url, service)
        after = watched.cpu()
        # The same file into the ceiling's bare servers (bench/ceiling_app.py): the most
        # the client's pipeline reaches when the servers do nothing of their own.
        bare = _import(path, ceiling.index_url, ceiling.keyholder_url, service)
        after_bare = watched.cpu()
        # The host's speed drifts within minutes: the baseline again, after the imports
        # (its process idle meanwhile), and the ratio against the two readings' mean.
        base_after = drive(baseline_worker(base_url, service.ca), baseline_operations, 1)
        stored = service.sql("SELECT count(*) FROM signals")[0][0]
        peak = watched.peak_rss_mb()
    finally:
        ceiling.terminate()
        baseline.terminate()
        service.stop()
    registered = _registered(child)
    if registered != rows or stored != rows or _registered(bare) != rows:
        raise RuntimeError(
            f"import registered {registered}, stored {stored}, the ceiling "
            f"{_registered(bare)} of {rows}:\n{child.output.get('stdout', '')}"
        )
    per_second = rows / child.wall_seconds
    readings = [base["per_second"], base_after["per_second"]]
    mean = sum(readings) / 2
    cpu = {k: round(1000 * (after[k] - before[k]) / rows, 3) for k in ("vir_serve", "keyholder")}
    cpu["vir_client"] = round(1000 * child.cpu_seconds / rows, 3)
    return {
        "rows": rows,
        "seconds": child.wall_seconds,
        "rows_per_second": round(per_second, 1),
        "baseline_single_row": base,  # before the import
        "baseline_single_row_after": base_after,
        "baseline_per_second_mean": round(mean, 1),
        "ratio_to_baseline": round(per_second / mean, 2),
        "ratio_range": [round(per_second / max(readings), 2), round(per_second / min(readings), 2)],
        # as bench/rekey.py: two baseline readings more than 10% apart measured a
        # machine that changed speed during the run
        "steady": abs(readings[0] - readings[1]) <= 0.1 * mean,
        "cpu_ms_per_row": cpu,
        "ceiling": {
            "seconds": bare.wall_seconds,
            "rows_per_second": round(rows / bare.wall_seconds, 1),
            "ratio_to_baseline": round(rows / bare.wall_seconds / mean, 2),
            "cpu_ms_per_row": {
                "servers": round(1000 * (after_bare["ceiling"] - after["ceiling"]) / rows, 3),
                "vir_client": round(1000 * bare.cpu_seconds / rows, 3),
            },
        },
        "peak_rss_mb": {
            "vir_serve": peak["vir_serve"],
            "keyholder": peak["keyholder"],
            "vir_client": child.peak_rss_mb,
        },
    }


def summary(found: dict[str, Any]) -> list[str]:
    cpu, rss = found["cpu_ms_per_row"], found["peak_rss_mb"]
    before, after = found["baseline_single_row"], found["baseline_single_row_after"]
    readings = [before["per_second"], after["per_second"]]
    low, high = found["ratio_range"]
    steady = "" if found["steady"] else " UNSTEADY: the baseline moved >10%, run again"
    lines = [
        f"bulk import (vir-client import, {found['rows']:,} rows, SQLite): "
        f"{found['seconds']} s, {found['rows_per_second']} rows/s; baseline single-row "
        f"inserts at concurrency 1 {' / '.join(str(r) for r in readings)}/s (before / "
        f"after); ratio {found['ratio_to_baseline']} ({low}-{high} against each reading; "
        f"target >= 3){steady}",
        f"  CPU ms/row: vir serve {cpu['vir_serve']}, key holder {cpu['keyholder']}, "
        f"vir-client {cpu['vir_client']}; peak RSS MiB: vir serve {rss['vir_serve']}, "
        f"key holder {rss['keyholder']}, vir-client {rss['vir_client']}",
    ]
    if "ceiling" in found:
        bare = found["ceiling"]
        lines.append(
            f"  the ceiling (the same file and client, bench/ceiling_app.py's bare servers): "
            f"{bare['seconds']} s, {bare['rows_per_second']} rows/s, ratio "
            f"{bare['ratio_to_baseline']}; CPU ms/row servers {bare['cpu_ms_per_row']['servers']}, "
            f"vir-client {bare['cpu_ms_per_row']['vir_client']}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline-operations", type=int, default=600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vir-import-"))
    try:
        with harness.HostShare() as host:
            found = run(folder, args.rows, args.baseline_operations)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    found["design"] = harness.describe_design(None)
    found["host"] = host.found
    print("\n".join(summary(found)) + harness.host_note(host.found))
    if args.out:
        args.out.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
