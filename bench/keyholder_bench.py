"""The key holder under load, against libsodium's bare scalar multiplication measured in
the same run (bench/baseline.py), and threshold pseudonymisation latency.

1. Evaluation throughput: blinded elements per second at the key holder (32 elements a
   request, HTTPS + mTLS, a few concurrent clients), as a ratio of the bare
   ristretto255 scalar-multiplication rate on all cores. Target: >= 0.5.
2. End-to-end pseudonymisation latency of one identity (blind, evaluate, combine,
   unblind): single key versus a 2-of-3 threshold deployment (p50, p95).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
from baseline import bare_scalarmult_rate  # noqa: E402
from harness import service_processes  # noqa: E402
from support.service import RunningService, start_service  # noqa: E402

from vir.client import VirClient, nl_bsn  # noqa: E402
from vir.client.demo import made_up_bsn  # noqa: E402
from vir.crypto import oprf  # noqa: E402
from vir.domain.encoding import b64url_encode  # noqa: E402

ELEMENTS = 32


def _client(service: RunningService) -> VirClient:
    org = service.org("gp")
    return VirClient(
        service.url,
        Path(service.ca),
        Path(org.cert),
        Path(org.key),
        keyholders=service.keyholder_urls,
        threshold=len(service.keyholder_urls) if len(service.keyholder_urls) == 1 else 2,
    )


def evaluation_rate(service: RunningService, seconds: float, clients: int) -> float:
    """Elements per second evaluated at the key holder; each request carries 32."""
    body = {
        "blinded_elements": [
            b64url_encode(oprf.blind(f"bench-{i}".encode())[1]) for i in range(ELEMENTS)
        ]
    }
    done = [0] * clients
    stop = time.monotonic() + seconds

    def work(n: int) -> None:
        with _client(service) as client:
            holder = client._holders[0]
            while time.monotonic() < stop:
                client.request("POST", "/v1/oprf/evaluate", body, via=holder)
                done[n] += ELEMENTS

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def latency(service: RunningService, samples: int) -> dict[str, float]:
    times = []
    with _client(service) as client:
        client.pseudonymise([nl_bsn(made_up_bsn())])  # connections warm
        for _ in range(samples):
            began = time.perf_counter()
            client.pseudonymise([nl_bsn(made_up_bsn())])
            times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {
        "p50_ms": round(times[len(times) // 2], 2),
        "p95_ms": round(times[int(len(times) * 0.95)], 2),
    }


def run(folder: Path, env: dict[str, str], seconds: float = 10.0, samples: int = 200) -> Any:
    bare = bare_scalarmult_rate(3.0)
    single = start_service(folder / "kh-single", **env)
    try:
        rate = evaluation_rate(single, seconds, clients=4)
        single_latency = latency(single, samples)
        # Each process's own peak (VmHWM), read while it runs: the key holder's, and this
        # process's (the load generator). ru_maxrss would carry a parent's peak over.
        peaks = service_processes([single]).peak_rss_mb()
    finally:
        single.stop()
    shared = start_service(folder / "kh-threshold", threshold="2-of-3", **env)
    try:
        threshold_latency = latency(shared, samples)
    finally:
        shared.stop()
    result = {
        "bare_scalarmult_per_second": round(bare),
        "evaluated_elements_per_second": round(rate),
        "evaluation_ratio": round(rate / bare, 3),
        "pseudonymise_single_key": single_latency,
        "pseudonymise_threshold_2_of_3": threshold_latency,
        "threshold_p50_over_single": round(
            threshold_latency["p50_ms"] / single_latency["p50_ms"], 2
        ),
        "peak_rss_mb": {"keyholder": peaks["keyholder"], "load_generator": peaks["client"]},
    }
    print(
        f"key holder: {result['evaluated_elements_per_second']} elements/s evaluated "
        f"(32 a request) vs bare {result['bare_scalarmult_per_second']}/s: ratio "
        f"{result['evaluation_ratio']}; pseudonymise p50 single {single_latency['p50_ms']} ms, "
        f"2-of-3 {threshold_latency['p50_ms']} ms; peak RSS MiB: key holder "
        f"{peaks['keyholder']}, load generator {peaks['client']}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    UNTHROTTLED = {
        "VIR_KEYHOLDER_OPRF_RATE_PER_SECOND": "1000000",
        "VIR_KEYHOLDER_OPRF_BURST": "1000000",
        "VIR_KEYHOLDER_OPRF_PER_HOUR": "100000000",
    }
    run(Path(tempfile.mkdtemp(prefix="vir-khbench-")), UNTHROTTLED)
