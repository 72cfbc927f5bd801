"""What the ``make bench`` modules share: load drivers, workers, the baseline app, and
what the processes under test cost (CPU seconds, peak resident memory).

Every module can measure the previous design too: ``design_env(vir_root)`` is the
environment that makes a ``vir`` subprocess (``vir serve``, ``vir keyholder serve``,
``vir dev init``, a child of a bench module) import the ``vir`` package of another
checkout. The interpreter and its packages stay this virtualenv's; ``PYTHONPATH``
comes before site-packages, where the editable install of this checkout is found, so
the checkout's own ``vir`` wins. The load generator (the client) stays this
checkout's: it speaks the same HTTP API to both.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import resource
import secrets
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
from support.service import RunningService, free_port  # noqa: E402

from vir.client import VirClient, nl_bsn  # noqa: E402
from vir.client.canonical import is_valid_bsn  # noqa: E402
from vir.client.transport import Connections  # noqa: E402


def check_own_vir(root: Path, imported: Path) -> None:
    """Refuse to run this checkout's bench with another checkout's ``vir``.

    A driver that puts a second checkout's ``bench`` (or ``tests``) first on its path
    to measure "before" still imports ``vir`` from the editable install, this one's, and
    so do the services it starts: both arms of the comparison run the same code. Run
    such a driver with ``PYTHONPATH`` on the checkout (``bench.py --vir-root`` does it
    for the services it starts; ``check_design`` checks them).
    """
    found = imported.resolve().parent.parent
    if found != root.resolve():
        raise SystemExit(
            f"this bench is {root}'s but imports vir from {found}: run it with PYTHONPATH={root}"
        )


check_own_vir(ROOT, Path(sys.modules["vir"].__file__ or ""))

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
TICK = os.sysconf("SC_CLK_TCK")


# --- Which design -------------------------------------------------------------------


def design_env(vir_root: Path | None) -> dict[str, str]:
    """Environment overrides that make ``vir`` subprocesses run ``vir_root``'s code
    (None: this checkout's)."""
    if vir_root is None:
        return {}
    return {"PYTHONPATH": str(vir_root.resolve())}


def describe_design(vir_root: Path | None) -> dict[str, Any]:
    """Which code ran: the checkout's folder and commit, and whether its tree had changes."""
    where = (vir_root or ROOT).resolve()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(where), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {
        "design": "previous" if vir_root is not None else "new",
        "vir_root": str(where),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "source_digest": source_digest(where),
    }


def source_digest(where: Path) -> str:
    """SHA-256 over the ``vir`` package's Python files (names and contents): the code a
    run measured, also when it is uncommitted, and whether it changed during the run."""
    digest = hashlib.sha256()
    for path in sorted((where / "vir").rglob("*.py")):
        digest.update(str(path.relative_to(where)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def check_design(service: RunningService, vir_root: Path | None) -> None:
    """Refuse to measure when a ``vir serve`` runs other code than asked (its log's first
    lines name no file, so ask the interpreter the way it was started)."""
    env = service.env
    found = subprocess.run(
        [sys.executable, "-c", "import vir, os; print(os.path.dirname(vir.__file__))"],
        cwd=service.root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    expected = str(((vir_root or ROOT) / "vir").resolve())
    if found != expected:
        raise RuntimeError(f"vir serve would import {found}, not {expected}")


# --- Identities ---------------------------------------------------------------------


class UniqueBsns:
    """Distinct 11-proof numbers for one run (random ones would collide: birthday bound).

    Eight digits counted up from a random start, the ninth the one the 11-proof asks
    for (weights 9..2 and -1: the weighted sum of the eight, modulo 11); a prefix whose
    check digit would be 10 has no BSN and is skipped. Testing consecutive numbers
    instead took eleven tries a BSN, a tenth of a millisecond of the load generator's
    CPU a registration that the baseline's load generator does not spend."""

    def __init__(self) -> None:
        self._next = secrets.randbelow(10**7)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            while True:
                self._next = (self._next + 1) % 10**8
                prefix = f"{self._next:08d}"
                check = sum(int(d) * w for d, w in zip(prefix, range(9, 1, -1), strict=True)) % 11
                if check < 10 and self._next:
                    bsn = f"{prefix}{check}"
                    assert is_valid_bsn(bsn)
                    return bsn


made_up_bsn = UniqueBsns()


# --- Load ---------------------------------------------------------------------------


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {
        "p50_ms": round(pick(0.50), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
    }


Snapshot = Callable[[], dict[str, float]]


def drive(
    make_worker: Callable[[], Callable[[int], None]],
    total: int,
    concurrency: int,
    snapshot: Snapshot | None = None,
    samples: list[float] | None = None,
) -> dict[str, Any]:
    """Run ``total`` operations over ``concurrency`` threads, each with its own connection
    (closed loop: a thread sends its next request when its last one is answered).
    ``snapshot``: CPU seconds by process group, taken before and after the timed part;
    the result then has their difference per operation. ``samples``: each operation's
    latency (seconds) is appended to it too, for percentiles over several runs."""
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
    before = snapshot() if snapshot else None
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if samples is not None:
        samples.extend(latencies)
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "operations": total,
        "per_second": round(total / wall, 1),
        **percentiles(latencies),
    }
    if snapshot is not None and before is not None:
        result["cpu_ms_per_operation"] = cpu_per_operation(before, snapshot(), total)
    return result


def turn_order(arms: Sequence[Any], turn: int) -> list[Any]:
    """``arms`` in the order of round ``turn``: turned by one each round, so that no arm
    is always measured first (or last) in a round."""
    shift = turn % len(arms)
    return [*arms[shift:], *arms[:shift]]


def combined(turns: Sequence[dict[str, Any]], latencies: Sequence[float]) -> dict[str, Any]:
    """One setting's turns (``drive`` results) as one figure: the median turn's
    throughput (each turn's kept), percentiles over every turn's operations, the CPU an
    operation over all of them (the turns are of equal size), the peak memory after the
    last. The host's speed drifts within a minute: settings that take turns, in
    rotation, each get every part of the run."""
    rates = [t["per_second"] for t in turns]
    found: dict[str, Any] = {
        **turns[0],
        "operations": sum(t["operations"] for t in turns),
        "per_second": statistics.median(rates),
        "per_second_turns": rates,
        **percentiles(latencies),
    }
    if "cpu_ms_per_operation" in turns[0]:
        found["cpu_ms_per_operation"] = {
            name: round(statistics.fmean(t["cpu_ms_per_operation"][name] for t in turns), 3)
            for name in turns[0]["cpu_ms_per_operation"]
        }
    if "peak_rss_mb" in turns[-1]:
        found["peak_rss_mb"] = turns[-1]["peak_rss_mb"]
    return found


def cpu_per_operation(
    before: dict[str, float], after: dict[str, float], operations: int
) -> dict[str, float]:
    return {k: round(1000 * (after[k] - before[k]) / operations, 3) for k in after}


def open_loop(
    make_worker: Callable[[], Callable[[int], None]],
    rate: float,
    seconds: float,
    threads: int = 64,
) -> dict[str, Any]:
    """Requests at a fixed arrival rate, whatever the answers do: request i is due at
    ``start + i / rate``, and its latency runs from that due time to its answer, so a
    request that could not even be sent on time (every thread busy, the service
    behind) counts its wait too (no coordinated omission). ``threads`` must exceed
    rate x latency, or the generator itself falls behind (``late_sends`` says)."""
    total = max(1, round(rate * seconds))
    workers = [make_worker() for _ in range(threads)]
    for worker in workers:
        worker(-1)  # TLS handshakes outside the schedule
    lock = threading.Lock()
    counter = iter(range(total))
    from_due: list[float] = []
    service: list[float] = []
    late = [0]
    failed = [0]
    start = time.perf_counter() + 0.2

    def loop(worker: Callable[[int], None]) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            try:
                worker(i)
            except Exception:  # counted, and its latency is still what it took
                with lock:
                    failed[0] += 1
            done = time.perf_counter()
            with lock:
                from_due.append(done - due)
                service.append(done - sent)
                late[0] += sent - due > 0.010

    pool = [threading.Thread(target=loop, args=(w,)) for w in workers]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    found = percentiles(from_due)
    return {
        "rate_per_second": round(rate, 1),
        "seconds": seconds,
        "requests": total,
        "achieved_per_second": round(total / wall, 1),
        "threads": threads,
        **found,
        "max_ms": round(max(from_due) * 1000, 2),
        "service_time": percentiles(service),
        "late_sends": late[0],
        "failed": failed[0],
    }


def vir_worker(
    service: Any, category: str, batch: int = 1, servers: Ceiling | None = None
) -> Callable[[], Callable[[int], None]]:
    """One registration per call: a new child with one parent, pseudonymised by the
    real client. ``batch`` > 1 pseudonymises that many signals' identities in one
    evaluation (as a back-office syncing several cases does) and spreads its cost: the
    signals pseudonymised together wait in one store for every worker this factory
    makes, and are registered by whichever thread comes next, so that a figure pays one
    evaluation a ``batch`` registrations however its registrations are split over
    threads and turns. A warm-up call (``i`` < 0) pseudonymises its own signal alone
    and leaves nothing in the store for the timed calls. ``servers``: the same client
    against the ceiling's bare servers instead of the service (with the service's
    certificates)."""
    ready: collections.deque[tuple[int, str, str]] = collections.deque()

    def make() -> Callable[[int], None]:
        org = service.org(category)
        client = VirClient(
            servers.index_url if servers else service.url,
            Path(service.ca),
            Path(org.cert),
            Path(org.key),
            keyholders=[servers.keyholder_url] if servers else service.keyholder_urls,
        )
        prefix = secrets.token_hex(4)

        def pseudonymised(count: int) -> list[tuple[int, str, str]]:
            result = client.pseudonymise([nl_bsn(made_up_bsn()) for _ in range(2 * count)])
            names = result.pseudonyms
            return [(result.epoch, names[2 * k], names[2 * k + 1]) for k in range(count)]

        def register(i: int) -> None:
            if i < 0:
                epoch, person, parent = pseudonymised(1)[0]
            else:
                try:
                    epoch, person, parent = ready.popleft()
                except IndexError:  # empty: this thread evaluates the next batch
                    (epoch, person, parent), *rest = pseudonymised(batch)
                    ready.extend(rest)
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
    """One bare insert per call, sent as ``VirClient`` sends (httpx makes the request,
    ``vir.client.transport`` sends it): the two load generators cost the same per
    request, and what differs is what the servers do."""

    def make() -> Callable[[int], None]:
        context = ssl.create_default_context(cafile=ca)
        client = httpx.Client(base_url=url, verify=context)
        sender = Connections(context, timeout=30.0)
        prefix = secrets.token_hex(4)

        def insert(i: int) -> None:
            body = {"local_ref": f"b-{prefix}-{i}", "person": secrets.token_urlsafe(32)}
            response = sender.send(client.build_request("POST", "/insert", json=body))
            response.raise_for_status()

        return insert

    return make


@dataclass
class Ceiling:
    """bench/ceiling_app.py's two bare servers: a key holder that only multiplies and an
    index that only inserts."""

    keyholder: subprocess.Popen[bytes]
    index: subprocess.Popen[bytes]
    keyholder_url: str
    index_url: str

    @property
    def pids(self) -> list[int]:
        return [self.keyholder.pid, self.index.pid]

    def terminate(self) -> None:
        for process in (self.keyholder, self.index):
            process.terminate()
        for process in (self.keyholder, self.index):
            process.wait()


def start_ceiling(folder: Path, service: RunningService) -> Ceiling:
    """bench/ceiling_app.py's key holder and index, each on a free port, with the
    service's certificate and its client CA."""
    dev = service.dev
    folder.mkdir(parents=True, exist_ok=True)

    def spawn(role: str, port: int) -> subprocess.Popen[bytes]:
        app = ROOT / "bench" / "ceiling_app.py"
        files = [dev / "server.crt", dev / "server.key", dev / "ca.crt"]
        database = folder / "ceiling.db"
        return subprocess.Popen(
            [sys.executable, str(app), role, str(database), str(port), *map(str, files)]
        )

    ports = free_port(), free_port()
    ceiling = Ceiling(
        spawn("keyholder", ports[0]),
        spawn("index", ports[1]),
        *(f"https://127.0.0.1:{port}" for port in ports),
    )
    try:
        org = service.org("education")
        context = ssl.create_default_context(cafile=str(dev / "ca.crt"))
        context.load_cert_chain(org.cert, org.key)
        for url in (ceiling.keyholder_url, ceiling.index_url):
            _await_tls(url, context)
    except BaseException:
        ceiling.terminate()
        raise
    return ceiling


def _await_tls(url: str, context: ssl.SSLContext) -> None:
    """Wait until the server at ``url`` answers (any status) over ``context``."""
    for _ in range(300):
        try:
            httpx.get(url, verify=context)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def start_baseline(folder: Path, dev: Path) -> tuple[subprocess.Popen[bytes], str]:
    """bench/baseline_app.py (a bare FastAPI endpoint inserting one row into SQLite) on
    a free port, with the service's certificate. Always this checkout's file: it
    imports nothing of vir."""
    folder.mkdir(parents=True, exist_ok=True)
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
    _await_tls(url, ssl.create_default_context(cafile=str(dev / "ca.crt")))
    return process, url


# --- What processes cost ------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += tree.get(current, [])
    return found


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid``, of its children that ended and were waited
    for (cutime, cstime: a PostgreSQL backend that exits), and of its live descendants."""
    ticks = 0
    for member in descendants(pid):
        fields = _stat(member)
        if fields is None:
            continue
        # After the name: state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
        ticks += sum(int(f) for f in fields[11:15])
    return ticks / TICK


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def own_peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- What the host took --------------------------------------------------------------

# /proc/stat's first line, after "cpu": user nice system idle iowait irq softirq steal.
_HOST_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
# A figure measured while the hypervisor gave more than this share of the machine's CPU
# time to other guests (steal) is said to be unreliable: the cores ran at a speed the
# baseline, measured before or after, did not see.
STEAL_WARNING_PERCENT = 5.0


def _host_ticks() -> list[int]:
    line = Path("/proc/stat").read_text().splitlines()[0]
    return [int(x) for x in line.split()[1 : 1 + len(_HOST_FIELDS)]]


class HostShare:
    """The machine's CPU time over a stretch of the bench, by kind (``/proc/stat``): how
    busy it was, and how much the hypervisor took for other guests (``steal``) while a
    figure was measured. ``with HostShare() as host: ...; host.found``."""

    def __init__(self) -> None:
        self.found: dict[str, float] = {}
        self._start: list[int] = []

    def __enter__(self) -> HostShare:
        self._start = _host_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        deltas = [b - a for a, b in zip(self._start, _host_ticks(), strict=True)]
        total = sum(deltas) or 1
        share = dict(zip(_HOST_FIELDS, deltas, strict=True))
        self.found = {
            "steal_percent": round(100 * share["steal"] / total, 1),
            "busy_percent": round(100 * (total - share["idle"] - share["iowait"]) / total, 1),
            "iowait_percent": round(100 * share["iowait"] / total, 1),
            "seconds": round(total / TICK / (os.cpu_count() or 1), 1),
        }


def host_note(found: dict[str, float] | None) -> str:
    """How a figure's host share reads in a summary line: the steal, and a warning
    when it is over STEAL_WARNING_PERCENT."""
    if not found:
        return ""
    steal = found["steal_percent"]
    if steal > STEAL_WARNING_PERCENT:
        return f" [host steal {steal}%: UNRELIABLE, run again]"
    return f" [host steal {steal}%]"


@dataclass
class Processes:
    """Named groups of processes whose CPU and peak memory a figure reports; each group
    is a list of root pids, counted with everything below them. ``client`` (this
    process: the load generator) is always there."""

    groups: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, *pids: int) -> Processes:
        self.groups.setdefault(name, []).extend(pids)
        return self

    def cpu(self) -> dict[str, float]:
        found = {
            name: sum(tree_cpu_seconds(pid) for pid in pids) for name, pids in self.groups.items()
        }
        found["client"] = own_cpu_seconds()
        return found

    def peak_rss_mb(self) -> dict[str, float]:
        """Per group, the largest peak (VmHWM) among its processes since they started
        (PostgreSQL's processes share its buffers: their peaks are not added up)."""
        found = {
            name: max((vm_hwm_mb(p) for pid in pids for p in descendants(pid)), default=0.0)
            for name, pids in self.groups.items()
        }
        found["client"] = own_peak_rss_mb()
        return found


def service_processes(services: Sequence[RunningService]) -> Processes:
    """The ``vir serve`` processes and the key holders they use."""
    found = Processes()
    found.add("vir_serve", *(s.process.pid for s in services))
    found.add("keyholder", *(k.pid for s in services for k in s.keyholders))
    return found


@dataclass
class ChildResult:
    """What a child process printed as JSON on its last line, and what it cost."""

    output: dict[str, Any]
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def run_child(
    args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> ChildResult:
    """Run ``args``; its CPU from ``wait4``, its peak RSS from its own VmHWM: what the
    child prints as ``vm_hwm_mb``, else the last of samples taken every 50 ms while it
    runs. (Not ``ru_maxrss``: Linux carries the spawning process's peak over into the
    child's across exec, so a small child of a big bench process would show the
    bench's size.)"""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(args), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=None, text=True
    )
    assert process.stdout is not None
    sampled = [0.0]
    running = threading.Event()

    def sample() -> None:
        while not running.wait(0.05):
            sampled[0] = max(sampled[0], vm_hwm_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = process.stdout.read()
    running.set()
    sampler.join()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {process.returncode}:\n{out}")
    lines = [line for line in out.splitlines() if line.strip()]
    output = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"stdout": out}
    peak = float(output.pop("vm_hwm_mb", 0.0)) or sampled[0]
    return ChildResult(output, round(wall, 3), round(usage.ru_utime + usage.ru_stime, 3), peak)


def child_env(vir_root: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIR_")}
    env.pop("PYTHONPATH", None)
    env.update(design_env(vir_root))
    env.update(extra)
    return env


def results_dir() -> Path:
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
