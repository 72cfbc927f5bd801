"""The lifecycle over a large index: ``vir lifecycle run`` on 1,000,000 signals, 10% due.

A SQLite database is made with the design's own migrations (``vir db upgrade``) and
filled straight through ``sqlite3`` (``store_fill.fill``, as ``bench.py`` fills its
large store): ``--signals`` signals of one organisation, each with one parent, random
unlinked pseudonyms (no matches), the same rows for every design (seeded); every tenth
one has a removal date in the past. The file is then copied, and:

- vir: ``Lifecycle(db, utc_now, batch).run()`` in a process of its own (what ``vir
  lifecycle run`` does: batches of the design's ``BATCH`` signals unless ``--batch``
  says otherwise, each batch one durable write transaction that locks, re-reads and
  archives its signals, settles their groups and appends two audit entries per
  signal, integrated into the hash chain). Target: <= 60 s.
- baseline: the same changes in bare ``sqlite3`` on the copy, in batches of the size
  vir used, one durable commit each (WAL, ``synchronous=FULL``, as vir): select the
  next batch due (in the order of the index on ``remove_on``, which needs no sort),
  copy them into ``archived_signals`` (destroyed five years on), delete their rows in
  ``match_members``, ``signal_parents``, ``notification_signals``/``notifications``
  (none here) and ``signals``, and append the two audit entries per signal the
  lifecycle appends (the same fields, JSON, SHA-256 chained) with their
  ``audit_refs`` rows. What vir does beyond that is its own checking: the group
  snapshots and re-reads matching needs, the lock order, the records, and its
  batches in ``remove_on, id`` order (an index range since migration 0014; before
  it, a sort of a due date's rows per batch).

Reported: seconds of each (the run itself; the child process's wall time with its
start-up beside it), their ratio, and each process's peak RSS (own ``VmHWM``).

``python bench/lifecycle_bench.py [--signals N] [--expiring-fraction F] [--batch N]
[--vir-root DIR]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
from harness import child_env, run_child
from store_fill import fill

OIN = "00000009000000000002"


# --- The run ------------------------------------------------------------------------


def run(
    folder: Path,
    signals: int,
    expiring_fraction: float,
    vir_root: Path | None = None,
    batch: int | None = None,
) -> dict[str, Any]:
    """``batch``: signals per transaction, for vir and the baseline alike (None: the
    design's own ``vir.services.lifecycle.BATCH``)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    expiring = round(signals * expiring_fraction)
    path = folder / "vir.db"
    url = f"sqlite:///{path}"
    env = child_env(vir_root, VIR_DATABASE_URL=url)
    subprocess.run(
        [sys.executable, "-m", "vir.cli", "db", "upgrade"],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    started = time.perf_counter()
    fill(path, signals, OIN, expiring=expiring, organisation="Bench GP")
    print(
        f"lifecycle: {signals:,} signals ({expiring:,} due) filled in "
        f"{time.perf_counter() - started:.0f} s, {path.stat().st_size / 1e6:.0f} MB",
        flush=True,
    )
    copy = folder / "base.db"
    shutil.copyfile(path, copy)
    me = str(Path(__file__).resolve().with_name("lifecycle_child.py"))
    sized = [] if batch is None else [str(batch)]
    vir = run_child([sys.executable, me, "lifecycle", url, *sized], env=env, cwd=folder)
    expected = str(((vir_root or harness.ROOT) / "vir").resolve())
    if vir.output["vir"] != expected:
        raise RuntimeError(f"the lifecycle ran {vir.output['vir']}, not {expected}")
    if vir.output["archived"] != expiring:
        raise RuntimeError(f"the lifecycle archived {vir.output['archived']} of {expiring}")
    print(f"lifecycle: vir {vir.output['seconds']} s, batches of {vir.output['batch']}", flush=True)
    base = run_child(
        [sys.executable, me, "baseline", str(copy), str(vir.output["batch"])], env=env, cwd=folder
    )
    if base.output["archived"] != expiring:
        raise RuntimeError(f"the baseline archived {base.output['archived']} of {expiring}")
    print(f"lifecycle: bare SQL {base.output['seconds']} s", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "signals": signals,
        "due": expiring,
        "database": "sqlite",
        "batch": vir.output["batch"],
        "vir": {
            **vir.output,
            "process_wall_seconds": vir.wall_seconds,
            "cpu_seconds": vir.cpu_seconds,
            "peak_rss_mb": vir.peak_rss_mb,
        },
        "baseline": {
            **base.output,
            "process_wall_seconds": base.wall_seconds,
            "cpu_seconds": base.cpu_seconds,
            "peak_rss_mb": base.peak_rss_mb,
        },
        "ratio_to_baseline": round(vir.output["seconds"] / base.output["seconds"], 2),
    }


def summary(found: dict[str, Any]) -> list[str]:
    vir, base = found["vir"], found["baseline"]
    return [
        f"lifecycle over {found['signals']:,} signals, {found['due']:,} due (SQLite, batches "
        f"of {found.get('batch', 50):,}): vir "
        f"{vir['seconds']} s (target <= 60 s; process {vir['process_wall_seconds']} s, "
        f"peak RSS {vir['peak_rss_mb']} MiB, {vir['audit_entries']:,} audit entries), "
        f"bare SQL {base['seconds']} s (peak RSS {base['peak_rss_mb']} MiB); "
        f"vir/bare SQL time {found['ratio_to_baseline']}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=1_000_000)
    parser.add_argument("--expiring-fraction", type=float, default=0.1)
    parser.add_argument("--batch", type=int, help="signals per transaction (default: vir's)")
    parser.add_argument("--vir-root", type=Path, help="another checkout's vir (the old design)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vir-lifecycle-"))
    with harness.HostShare() as host:
        found = run(folder, args.signals, args.expiring_fraction, args.vir_root, args.batch)
    found["design"] = harness.describe_design(args.vir_root)
    found["host"] = host.found
    print("\n".join(summary(found)) + harness.host_note(host.found))
    if args.out:
        args.out.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
