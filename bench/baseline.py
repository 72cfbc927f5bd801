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
