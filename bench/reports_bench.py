"""The long jobs over a large audit log (the officers' reports, a checkpoint, an export):
time, memory, and what they do to writers.

For each log size (default 100,000 and 500,000 entries: registrations, matches and their
members, follow-ups, withdrawals and refusals of eight organisations over eleven months,
staged and integrated by vir's own integrator), each report (privacy, monitor,
participation) runs as ``vir report`` does over the whole period, then a checkpoint
(``vir audit checkpoint``: the whole chain and Merkle tree checked, a checkpoint signed)
and an export (``vir audit export``), and 200 inclusion and consistency proofs against
that checkpoint and the periodic checkpoint after 1,000 more entries, each in a child
process of its own (bench/report_child.py). Reported per job and size:

- seconds, and entries read per second;
- the child's peak resident memory: it must stay flat as the log grows;
- the longest a small write waited meanwhile (a probe appends one audit event every
  20 ms, as a registration would): a report must not hold the writers up;
- the baseline, measured in the same run: the same entries read with bare ``sqlite3``
  and decoded with ``json.loads`` (no report logic), and the ratio report / baseline.

``python bench/reports_bench.py [--sizes 100000,500000]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from sqlalchemy import insert  # noqa: E402

from vir.audit.actions import Action  # noqa: E402
from vir.audit.chain import Outcome  # noqa: E402
from vir.store import audit_log  # noqa: E402
from vir.store.db import Database  # noqa: E402
from vir.store.migrate import upgrade  # noqa: E402
from vir.store.tables import OrganisationRow  # noqa: E402

REPORTS = ("privacy", "monitor", "participation", "checkpoint", "export", "proofs")
START, END = dt.date(2026, 1, 1), dt.date(2026, 12, 1)
ORGS = [
    (f"000000090000000001{n:02d}", category)
    for n, category in enumerate(
        ("education", "gp", "youth_care", "police", "jgz", "ggz", "leerplicht_rmc", "halt")
    )
]
STAGE = 10_000  # events staged a transaction, then integrated
PROBE_SECONDS = 0.02


def _events(case: int, moment: dt.datetime) -> list[audit_log.AuditEvent]:
    """What one registration leaves in the log, with the matches some of them make."""
    oin, _ = ORGS[case % len(ORGS)]
    other, _ = ORGS[(case + 3) % len(ORGS)]
    signal = str(uuid.UUID(int=case + 1))
    made = [
        audit_log.new_event(
            Action.SIGNAL_REGISTERED,
            Outcome.SUCCESS,
            moment,
            organisation=oin,
            certificate="ab" * 32,
            objects={"signal": signal, "remove_on": "2027-06-01"},
        )
    ]
    if case % 3 == 0:
        match = str(uuid.UUID(int=2**64 + case))
        made.append(
            audit_log.new_event(
                Action.MATCH_CREATED,
                Outcome.SUCCESS,
                moment,
                actor="matching",
                objects={"match": match, "via": "person" if case % 2 else "address"},
            )
        )
        for member, owner in ((signal, oin), (str(uuid.UUID(int=2**65 + case)), other)):
            made.append(
                audit_log.new_event(
                    Action.MATCH_MEMBER_ADDED,
                    Outcome.SUCCESS,
                    moment,
                    organisation=owner,
                    actor="matching",
                    objects={"match": match, "signal": member},
                )
            )
        if case % 2 == 0:
            made.append(
                audit_log.new_event(
                    Action.MATCH_FOLLOW_UP_RECORDED,
                    Outcome.SUCCESS,
                    moment + dt.timedelta(days=3),
                    organisation=oin,
                    certificate="ab" * 32,
                    objects={"match": match, "event": "contact_made", "with": other},
                )
            )
    if case % 10 == 0:
        made.append(
            audit_log.new_event(
                Action.SIGNAL_WITHDRAWN,
                Outcome.SUCCESS,
                moment + dt.timedelta(minutes=5),
                organisation=oin,
                certificate="ab" * 32,
                objects={"signal": signal},
                reason="resolved",
            )
        )
    if case % 20 == 0:
        made.append(
            audit_log.new_event(
                Action.REQUEST_REFUSED,
                Outcome.REFUSED,
                moment,
                organisation=oin,
                objects={"endpoint": "/v1/signals", "count": 2},
                reason="rate_limited",
            )
        )
    return made


def fill(url: str, entries: int) -> float:
    """A fresh store with ``entries`` (about) audit entries; seconds taken."""
    began = time.monotonic()
    upgrade(url)
    db = Database.connect(url)
    try:
        with db.write() as session:
            session.execute(
                insert(OrganisationRow),
                [
                    {
                        "oin": oin,
                        "name": f"Organisation {category}",
                        "category": category,
                        "region": "Rotterdam",
                        "created_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                    }
                    for oin, category in ORGS
                ],
            )
        span = (END - START).total_seconds()
        per_case = 2.4  # entries one case leaves, on average (see _events)
        cases = int(entries / per_case)
        staged, case = 0, 0
        while case < cases:
            with db.write() as session:
                while staged < STAGE and case < cases:
                    moment = dt.datetime.combine(START, dt.time(), tzinfo=dt.UTC) + dt.timedelta(
                        seconds=span * case / cases
                    )
                    for event in _events(case, moment):
                        audit_log.append(session, event)
                        staged += 1
                    case += 1
            while db.integrate() is not None and staged:
                staged = 0
            print(f"  filled {case:,} of {cases:,} cases", file=sys.stderr, flush=True)
    finally:
        db.dispose()
    return time.monotonic() - began


def baseline(path: Path) -> dict[str, Any]:
    """The same entries read with bare sqlite3 and decoded, nothing else."""
    low = audit_log.rfc3339(dt.datetime.combine(START, dt.time(), tzinfo=dt.UTC))
    high = audit_log.rfc3339(dt.datetime.combine(END, dt.time(), tzinfo=dt.UTC))
    began = time.monotonic()
    connection = sqlite3.connect(path)
    actions: dict[str, int] = {}
    rows = connection.execute(
        "SELECT body FROM audit_entries WHERE occurred_at >= ? AND occurred_at < ? ORDER BY seq",
        (low, high),
    )
    count = 0
    for (body,) in rows:
        action = json.loads(body)["action"]
        actions[action] = actions.get(action, 0) + 1
        count += 1
    connection.close()
    return {"entries": count, "seconds": round(time.monotonic() - began, 2)}


class Probe:
    """Appends one audit event every 20 ms through vir's write path and keeps the
    longest wait: a stand-in for the registrations a report must not hold up."""

    def __init__(self, url: str) -> None:
        self._db = Database.connect(url)
        self._stop = threading.Event()
        self.longest = 0.0
        self.writes = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._db.dispose()

    def _run(self) -> None:
        while not self._stop.wait(PROBE_SECONDS):
            began = time.monotonic()
            try:
                with self._db.write() as session:
                    audit_log.append(
                        session,
                        audit_log.new_event(
                            Action.REPORT_GENERATED,
                            Outcome.SUCCESS,
                            dt.datetime.now(dt.UTC),
                            actor="admin",
                            objects={"report": "probe", "from": "-", "to": "-"},
                        ),
                    )
                self.writes += 1
            except Exception:  # refused after busy_timeout: what a registration would get
                self.refused += 1
            self.longest = max(self.longest, time.monotonic() - began)


def run_report(url: str, report: str) -> dict[str, Any]:
    child = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "report_child.py"),
            url,
            report,
            START.isoformat(),
            END.isoformat(),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"report {report} failed:\n{child.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return found


def run(folder: Path, sizes: list[int], jobs: tuple[str, ...] = REPORTS) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for size in sizes:
        path = folder / f"reports-{size}.db"
        url = f"sqlite:///{path}"
        print(f"reports: filling a log of about {size:,} entries", file=sys.stderr, flush=True)
        filled = fill(url, size)
        bare = baseline(path)
        for report in jobs:
            with Probe(url) as probe:
                found = run_report(url, report)
            row = {
                "entries": bare["entries"],
                "report": report,
                "seconds": found["seconds"],
                "entries_per_second": round(bare["entries"] / found["seconds"]),
                "peak_rss_mb": found["peak_rss_mb"],
                "baseline_seconds": bare["seconds"],
                "ratio_to_baseline": round(found["seconds"] / bare["seconds"], 2),
                "longest_write_wait_s": round(probe.longest, 3),
                "probe_writes": probe.writes,
                "probe_writes_refused": probe.refused,
                "fill_seconds": round(filled, 1),
            }
            for extra in ("per_proof_ms", "checkpoint_after_1000_s"):
                if extra in found:
                    row[extra] = found[extra]
            results.append(row)
            print(_line(row), file=sys.stderr, flush=True)
        for leftover in folder.glob(f"{path.name}*"):
            leftover.unlink()
    flat = {report: [r["peak_rss_mb"] for r in results if r["report"] == report] for report in jobs}
    return {"results": results, "peak_rss_mb_by_size": flat}


def _line(row: dict[str, Any]) -> str:
    return (
        f"  {row['report']:13} {row['entries']:>9,} entries  {row['seconds']:7.2f} s  "
        f"(bare read {row['baseline_seconds']:.2f} s, x{row['ratio_to_baseline']})  "
        f"peak RSS {row['peak_rss_mb']} MiB  longest write wait {row['longest_write_wait_s']} s"
        + (
            f"  ({row['per_proof_ms']} ms a proof; the periodic checkpoint after 1,000 more "
            f"entries {row['checkpoint_after_1000_s']} s)"
            if "per_proof_ms" in row
            else ""
        )
        + (f" ({n} writes refused)" if (n := row["probe_writes_refused"]) else "")
    )


def summary(found: dict[str, Any]) -> list[str]:
    """The lines ``make bench`` prints for the reports."""
    return [
        "reports over the audit log (SQLite; each in its own process; a writer appends "
        "every 20 ms meanwhile):",
        *(_line(row) for row in found["results"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,500000")
    parser.add_argument("--jobs", default=",".join(REPORTS), help="which of " + ", ".join(REPORTS))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    jobs = tuple(j for j in args.jobs.split(",") if j)
    if not set(jobs) <= set(REPORTS):
        parser.error("--jobs: " + ", ".join(sorted(set(jobs) - set(REPORTS))))
    with tempfile.TemporaryDirectory(prefix="vir-reports-") as folder:
        found = run(Path(folder), sizes, jobs)
    print("\n".join(summary(found)))


if __name__ == "__main__":
    main()
