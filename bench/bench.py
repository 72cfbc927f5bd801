"""``make bench``: registration through the real HTTPS + mTLS path, against a baseline.

1. Throughput and latency of end-to-end registration (the real client:
   blind → evaluate → unblind, then POST /v1/signals) at several concurrencies,
   next to a bare FastAPI endpoint inserting one row into SQLite, measured in the
   same run on the same machine.
2. Registration latency with 10,000 vs 1,000,000 signals already stored.

Writes bench/results/<time>.json and prints a summary.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import audit_bench  # noqa: E402
import keyholder_bench  # noqa: E402
from support import postgres  # noqa: E402
from support.service import free_port, start_service  # noqa: E402

from vir.client import VirClient, nl_bsn  # noqa: E402
from vir.client.canonical import is_valid_bsn  # noqa: E402

PROFESSIONAL = {"name": "Anna de Wit", "email": "anna@example.nl", "phone": "010-1234567"}
# The bench measures throughput, not the per-organisation rate limits, which are shared
# by the instances on one database: one organisation registers thousands of signals
# here within seconds, which the defaults (vir/settings.py) are there to stop.
UNTHROTTLED = {
    "VIR_KEYHOLDER_OPRF_RATE_PER_SECOND": "1000000",
    "VIR_KEYHOLDER_OPRF_BURST": "1000000",
    "VIR_KEYHOLDER_OPRF_PER_HOUR": "100000000",
    "VIR_REGISTER_PER_HOUR": "100000000",
    "VIR_REGISTER_BURST": "1000000",
}


class UniqueBsns:
    """Distinct 11-proof numbers for one run (random ones would collide: birthday bound)."""

    def __init__(self) -> None:
        self._next = secrets.randbelow(10**7) * 10
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            while True:
                self._next += 1
                candidate = f"{self._next % 10**9:09d}"
                if is_valid_bsn(candidate):
                    return candidate


made_up_bsn = UniqueBsns()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50_ms": round(pick(0.50), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
    }


def drive(
    make_worker: Callable[[], Callable[[int], None]], total: int, concurrency: int
) -> dict[str, Any]:
    """Run ``total`` operations over ``concurrency`` threads, each with its own connection."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))
    workers = [make_worker() for _ in range(concurrency)]
    for worker in workers:  # warm up each connection (TLS handshake) outside the timing
        worker(-1)

    def loop(worker: Callable[[int], None]) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            worker(i)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=loop, args=(w,)) for w in workers]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "operations": total,
        "per_second": round(total / wall, 1),
        **percentiles(latencies),
    }


def vir_worker(service: Any, category: str, batch: int = 1) -> Callable[[], Callable[[int], None]]:
    """One registration per call: a new child with one parent, pseudonymised by the
    real client. ``batch`` > 1 pseudonymises that many signals' identities in one
    evaluation (as a back-office syncing several cases does) and spreads its cost."""

    def make() -> Callable[[int], None]:
        org = service.org(category)
        client = VirClient(
            service.url,
            Path(service.ca),
            Path(org.cert),
            Path(org.key),
            keyholders=service.keyholder_urls,
        )
        prefix = secrets.token_hex(4)
        ready: list[tuple[int, str, str]] = []

        def register(i: int) -> None:
            if not ready:
                result = client.pseudonymise([nl_bsn(made_up_bsn()) for _ in range(2 * batch)])
                names = result.pseudonyms
                ready.extend((result.epoch, names[2 * k], names[2 * k + 1]) for k in range(batch))
            epoch, person, parent = ready.pop()
            client.register_signal(
                {
                    "local_ref": f"b-{prefix}-{i}",
                    "epoch": epoch,
                    "person": person,
                    "parents": [parent],
                    "professional": PROFESSIONAL,
                }
            )

        return register

    return make


def baseline_worker(url: str, ca: str) -> Callable[[], Callable[[int], None]]:
    def make() -> Callable[[int], None]:
        client = httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=ca))

        def insert(i: int) -> None:
            response = client.post(
                "/insert", json={"local_ref": f"b-{i}", "person": secrets.token_urlsafe(32)}
            )
            response.raise_for_status()

        return insert

    return make


def start_baseline(folder: Path, dev: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "baseline_app.py"),
            str(folder / "base.db"),
            str(port),
            str(dev / "server.crt"),
            str(dev / "server.key"),
        ]
    )
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(dev / "ca.crt"))
    for _ in range(300):
        try:
            httpx.post(f"{url}/insert", json={"local_ref": "warm", "person": "x"}, verify=context)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("baseline did not start")


def fill(db_path: Path, count: int, oin: str) -> None:
    """Put ``count`` filler signals straight into the store (random, unlinked pseudonyms)."""
    db = sqlite3.connect(db_path)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    remove_on = (dt.date.today() + dt.timedelta(days=700)).isoformat()
    batch = 20_000
    with db:
        for start in range(0, count, batch):
            rows = []
            parents = []
            for _ in range(min(batch, count - start)):
                sid = str(uuid.uuid4())
                rows.append(
                    (
                        sid,
                        oin,
                        f"fill-{sid}",
                        1,
                        os.urandom(32),
                        os.urandom(32),
                        remove_on,
                        "Filler",
                        "f@example.nl",
                        None,
                        None,
                        os.urandom(32),
                        now,
                    )
                )
                parents.append((sid, os.urandom(32)))
            db.executemany(
                "INSERT INTO signals (id, oin, local_ref, epoch, person, address, remove_on, "
                "professional_name, professional_email, professional_phone, "
                "professional_function, content_hash, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.executemany("INSERT INTO signal_parents VALUES (?,?)", parents)
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


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
            {"stored_signals": size, "operations": samples, **percentiles(t)}
            for size, t in zip(sizes, timings, strict=True)
        ]
    finally:
        for service in services:
            service.stop()


def postgres_two_processes(
    folder: Path, levels: list[int], operations: int
) -> list[dict[str, Any]]:
    """Registration with two ``vir serve`` processes on one durable PostgreSQL database,
    the load spread over both (as a proxy would), connections alternating."""
    server = postgres.start_server(durable=True)
    url = server.create_database("vir_bench")
    first = start_service(folder / "pg", VIR_DATABASE_URL=url, **UNTHROTTLED)
    second = start_service(first.root, VIR_DATABASE_URL=url, **UNTHROTTLED)
    services = [first, second]
    try:
        results = []
        for level in levels:
            turn = iter(range(10**9))

            def make(turn: Any = turn) -> Callable[[int], None]:
                service = services[next(turn) % 2]
                return vir_worker(service, "education")()

            results.append(drive(make, operations, level))
            print(f"concurrency {level}: PostgreSQL x2 {results[-1]['per_second']}/s", flush=True)
        return results
    finally:
        for service in services:
            service.stop()
        server.stop()


def rekey_bench(signals: int) -> dict[str, Any]:
    """bench/rekey.py in its own process (it uses every core), its JSON result read back."""
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rekey.py"), "--signals", str(signals)], check=True
    )
    found: dict[str, Any] = json.loads((ROOT / "bench" / "results" / "rekey.json").read_text())
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--operations", type=int, default=600)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--audit-entries", type=int, default=1_000_000)
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("--rekey-signals", type=int, default=1_000_000)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="vir-bench-"))
    report: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "registration": [],
        "registration_batched": [],
        "baseline": [],
    }
    service = start_service(folder / "main", **UNTHROTTLED)
    baseline, base_url = start_baseline(folder, service.dev)
    try:
        for level in levels:
            report["baseline"].append(
                drive(baseline_worker(base_url, service.ca), args.operations, level)
            )
            report["registration"].append(
                drive(vir_worker(service, "education"), args.operations, level)
            )
            report["registration_batched"].append(
                drive(vir_worker(service, "gp", batch=32), args.operations, level)
            )
            print(
                f"concurrency {level}: baseline {report['baseline'][-1]['per_second']}/s, "
                f"vir {report['registration'][-1]['per_second']}/s, batched "
                f"{report['registration_batched'][-1]['per_second']}/s",
                flush=True,
            )
    finally:
        baseline.terminate()
        service.stop()
    if not args.no_postgres:
        report["registration_postgres_2proc"] = postgres_two_processes(
            folder, levels, args.operations
        )
    small, large = store_size_latency(folder, [10_000, args.large], args.samples)
    report["store_size"] = [small, large]
    best_vir = max(r["per_second"] for r in report["registration"])
    best_batched = max(r["per_second"] for r in report["registration_batched"])
    best_base = max(r["per_second"] for r in report["baseline"])
    report["targets"] = {
        "throughput_ratio_best": round(best_vir / best_base, 3),
        "throughput_ratio_best_batched": round(best_batched / best_base, 3),
        "throughput_ratio_by_concurrency": {
            str(v["concurrency"]): round(v["per_second"] / b["per_second"], 3)
            for v, b in zip(report["registration"], report["baseline"], strict=True)
        },
        "p50_large_over_small": round(large["p50_ms"] / small["p50_ms"], 3),
    }
    report["audit"] = audit_bench.run(args.audit_entries)
    report["keyholder"] = keyholder_bench.run(folder, UNTHROTTLED)
    report["rekey"] = rekey_bench(args.rekey_signals)
    out = ROOT / "bench" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print("registration (real client: pseudonymise + POST /v1/signals, HTTPS + mTLS)")
    print(
        f"{'conc':>5} {'vir/s':>8} {'base/s':>8} {'ratio':>6} {'p50':>8} {'p95':>8} "
        f"{'p99':>8}   baseline p50/p99"
    )
    for v, b in zip(report["registration"], report["baseline"], strict=True):
        print(
            f"{v['concurrency']:>5} {v['per_second']:>8} {b['per_second']:>8} "
            f"{v['per_second'] / b['per_second']:>6.2f} {v['p50_ms']:>7}ms {v['p95_ms']:>7}ms "
            f"{v['p99_ms']:>7}ms   {b['p50_ms']}ms/{b['p99_ms']}ms"
        )
    if "registration_postgres_2proc" in report:
        print("same, PostgreSQL (durable) with two app processes, load spread over both")
        for v, b in zip(report["registration_postgres_2proc"], report["baseline"], strict=True):
            print(
                f"{v['concurrency']:>5} {v['per_second']:>8} {b['per_second']:>8} "
                f"{v['per_second'] / b['per_second']:>6.2f} {v['p50_ms']:>7}ms "
                f"{v['p95_ms']:>7}ms {v['p99_ms']:>7}ms"
            )
    print("same, identities pseudonymised 32 signals at a time (one evaluation per 64)")
    for v, b in zip(report["registration_batched"], report["baseline"], strict=True):
        print(
            f"{v['concurrency']:>5} {v['per_second']:>8} {b['per_second']:>8} "
            f"{v['per_second'] / b['per_second']:>6.2f} {v['p50_ms']:>7}ms {v['p95_ms']:>7}ms "
            f"{v['p99_ms']:>7}ms"
        )
    print(
        f"store size: p50 {small['p50_ms']} ms at {small['stored_signals']:,} signals, "
        f"{large['p50_ms']} ms at {large['stored_signals']:,} "
        f"(ratio {report['targets']['p50_large_over_small']}; target <= 1.2)"
    )
    print(
        f"best throughput ratio vir/baseline: {report['targets']['throughput_ratio_best']} "
        f"per-signal pseudonymisation, "
        f"{report['targets']['throughput_ratio_best_batched']} batched (target >= 0.5)"
    )
    audit = report["audit"]
    print(
        f"audit: verify export of {audit['verify_export']['entries']:,} entries "
        f"{audit['verify_export']['seconds']} s (target <= 10 s); raw SHA-256 "
        f"{audit['sha256']['hashes_per_second']:,}/s of {audit['sha256']['bytes_per_hash']} B "
        f"({audit['sha256']['mb_per_second']} MB/s)"
    )
    base = audit["append_baseline"]["per_second"]
    print(
        f"audit appends (target >= 5,000/s); baseline: bare sqlite3, one durable commit "
        f"per entry, {base:,}/s"
    )
    print("  entries/tx  writers  appends/s  commits  ratio to baseline")
    for append in audit["append"]:
        print(
            f"  {append['per_transaction']:>10}  {append['writers']:>7}  "
            f"{append['per_second']:>9,}  {append['commits']:>7,}  "
            f"{append['per_second'] / base:>6.2f}"
        )
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
