"""Baseline for the key-custody benchmarks: bare ristretto255 scalar multiplication.

An OPRF evaluation is one ``crypto_scalarmult_ristretto255`` per blinded element, and
a t-of-n threshold evaluation costs t of them plus the client's combination. The
key-holder figures are reported as ratios to this machine's bare libsodium rate,
measured in the same run: every core multiplying random valid elements by a random
scalar, called through pysodium as vir calls it (so the Python call overhead is in
the baseline too), with no HTTP, TLS, validation or key handling around it.

``python bench/baseline.py [--seconds S] [--processes P]`` prints the rate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import threading
import time
from multiprocessing.synchronize import Barrier

import pysodium

ELEMENTS = 64  # cycled through, so no single input is special
CHECK_EVERY = 64  # operations between clock reads


def _multiply_for(seconds: float, barrier: Barrier, results: multiprocessing.Queue[float]) -> None:
    scalar = pysodium.crypto_core_ristretto255_scalar_random()
    elements = [pysodium.crypto_core_ristretto255_random() for _ in range(ELEMENTS)]
    mult = pysodium.crypto_scalarmult_ristretto255
    barrier.wait()  # all processes start together, so the timed windows overlap
    operations = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for element in elements[:CHECK_EVERY]:
            mult(scalar, element)
        operations += CHECK_EVERY
        now = time.perf_counter()
        if now >= deadline:
            break
    results.put(operations / (now - start))


def bare_scalarmult_rate(seconds: float = 3.0, processes: int | None = None) -> float:
    """``crypto_scalarmult_ristretto255`` operations per second, summed over one
    process per core (``os.cpu_count()`` unless ``processes`` is given)."""
    count = processes or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results: multiprocessing.Queue[float] = context.Queue()
    workers = [
        context.Process(target=_multiply_for, args=(seconds, barrier, results))
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    rates = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a baseline process exited with {worker.exitcode}")
    return sum(rates)


class SpeedProbe:
    """Tracks this machine's speed through a run, as a thread of the (otherwise idle)
    bench process: every ``every`` seconds it times ``ops`` bare multiplications by its
    own CPU time (``time.thread_time``), so waiting for a core does not count but a
    slower core does. About 1% of one core at the defaults.

    This host's speed drifts by a third within minutes, so a bare rate measured before
    and after a two-minute run does not tell the rate during it; scaled by the probe's
    rate during the run against its rate during each bare measurement, it does
    (``tracked_bare_rate``)."""

    def __init__(self, every: float = 1.0, ops: int = 200) -> None:
        self._every = every
        self._ops = ops
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speed-probe", daemon=True)
        self._done = 0
        self._seconds = 0.0

    def __enter__(self) -> SpeedProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        scalar = pysodium.crypto_core_ristretto255_scalar_random()
        element = pysodium.crypto_core_ristretto255_random()
        mult = pysodium.crypto_scalarmult_ristretto255
        while True:
            began = time.thread_time()
            for _ in range(self._ops):
                mult(scalar, element)
            self._seconds += time.thread_time() - began
            self._done += self._ops
            if self._stop.wait(self._every):
                return

    @property
    def rate(self) -> float:
        """Multiplications per CPU-second of the probe over its life."""
        return self._done / self._seconds if self._seconds else 0.0


def tracked_bare_rate(bare: list[tuple[float, SpeedProbe]], during: SpeedProbe) -> float:
    """The bare rate during a run, from bare rates measured around it (each with the
    probe that ran beside it) scaled by the probe's rate during the run."""
    per_probe = [rate / probe.rate for rate, probe in bare if probe.rate]
    return sum(per_probe) / len(per_probe) * during.rate if per_probe else 0.0


def peak_rss_mb() -> float:
    """Peak resident memory in MiB: this process's plus that of its largest waited-for
    child (``getrusage`` reports the largest child's peak, not the children's total)."""
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    unit = 1 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) * unit / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--processes", type=int, default=None, help="default: one per core")
    args = parser.parse_args()
    processes = args.processes or os.cpu_count() or 1
    rate = bare_scalarmult_rate(args.seconds, processes)
    print(
        f"bare crypto_scalarmult_ristretto255: {rate:,.0f}/s on {processes} processes "
        f"({rate / processes:,.0f}/s each, {args.seconds} s); peak RSS {peak_rss_mb():.1f} MiB"
    )


if __name__ == "__main__":
    main()
