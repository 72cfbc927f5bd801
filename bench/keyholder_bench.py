"""The key holder under load, against libsodium's bare scalar multiplication measured in
the same run (bench/baseline.py), and threshold pseudonymisation latency.

1. Evaluation throughput: blinded elements per second at the key holder (32 elements a
   request, HTTPS + mTLS, 16 requests in flight), as a ratio of the bare ristretto255
   scalar-multiplication rate on all cores, the two measured in alternating slices
   (``_throughput``). Target: >= 0.5. The key holder runs one
   process per core (``VIR_KEYHOLDER_WORKERS``), as the bare rate does; one process is
   measured beside it. CPU per request is reported for the key holder and for the
   load generator, which shares the cores (a lean one: ``_Requester``).
2. End-to-end pseudonymisation latency of one identity (blind, evaluate, combine,
   unblind): single key versus a 2-of-3 threshold deployment (p50, p95).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
from baseline import bare_scalarmult_rate  # noqa: E402
from harness import HostShare, host_note, service_processes  # noqa: E402
from support.service import RunningService, start_service  # noqa: E402

from vir.client import VirClient, nl_bsn  # noqa: E402
from vir.client.connection import tls_context  # noqa: E402
from vir.client.demo import made_up_bsn  # noqa: E402
from vir.crypto import oprf  # noqa: E402
from vir.domain.encoding import b64url_encode  # noqa: E402

ELEMENTS = 32
CLIENTS = 16  # requests in flight: enough to keep every core of the key holder busy


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


class _Requester:
    """One keep-alive HTTPS connection (the organisation's client certificate) that
    sends one prepared request again and again and reads each answer whole.

    The load generator shares the machine's cores with the key holder, so what it
    spends is taken from the figure measured: a request through ``VirClient`` (httpx)
    costs the client about 0.8 ms of CPU, this one a fraction of that. The answer is
    checked (status 200, 32 evaluated elements) on the first request, then by status.
    """

    def __init__(self, service: RunningService, request: bytes) -> None:
        org = service.org("gp")
        url = urlsplit(service.keyholder_urls[0])
        context = tls_context(Path(service.ca), Path(org.cert), Path(org.key))
        raw = socket.create_connection((url.hostname, url.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = context.wrap_socket(raw, server_hostname=url.hostname)
        self._request = request
        self._buffer = b""

    def send(self) -> bytes:
        self._socket.sendall(self._request)
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._read()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status = head[9:12]
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += self._read()
        body, self._buffer = rest[:length], rest[length:]
        if status != b"200":
            raise RuntimeError(f"the key holder answered {status.decode()}")
        return body

    def _read(self) -> bytes:
        chunk = self._socket.recv(65536)
        if not chunk:
            raise RuntimeError("the key holder closed the connection")
        return chunk

    def close(self) -> None:
        self._socket.close()


def evaluation_request(service: RunningService, elements: int = ELEMENTS) -> bytes:
    """A prepared ``POST /v1/oprf/evaluate`` of ``elements`` blinded elements."""
    blinded = [b64url_encode(oprf.blind(f"bench-{i}".encode())[1]) for i in range(elements)]
    body = json.dumps({"blinded_elements": blinded}).encode()
    host = urlsplit(service.keyholder_urls[0]).netloc
    return (
        f"POST /v1/oprf/evaluate HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def evaluation_rate(service: RunningService, seconds: float, clients: int) -> float:
    """Elements per second evaluated at the key holder; each request carries 32."""
    request = evaluation_request(service)
    requesters = [_Requester(service, request) for _ in range(clients)]
    answer = json.loads(requesters[0].send())
    if len(answer["evaluated_elements"]) != ELEMENTS:
        raise RuntimeError("the key holder answered the wrong number of elements")
    done = [0] * clients
    stop = time.monotonic() + seconds

    def work(n: int) -> None:
        while time.monotonic() < stop:
            requesters[n].send()
            done[n] += ELEMENTS

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for requester in requesters:
        requester.close()
    return sum(done) / elapsed


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


ROUNDS = 4  # bare and served slices, alternated


def _throughput(service: RunningService, seconds: float) -> dict[str, Any]:
    """Elements/s at the key holder against the bare rate measured beside it, and CPU ms
    per request of the key holder (all its processes) and of this process (the load
    generator).

    This host's speed drifts by a third within minutes, so a bare rate measured once
    before the load is not the rate the load met. The two are measured in ``ROUNDS``
    slices, alternated (bare, served, bare, served, ...): each round's ratio compares two
    rates measured seconds apart, not minutes, and the figure is the rounds' mean.
    """
    evaluation_rate(service, 2.0, CLIENTS)  # warm: connections, caches, every process
    processes = service_processes([service])
    spent = {"keyholder": 0.0, "client": 0.0}
    rounds = []
    for _ in range(ROUNDS):
        bare = bare_scalarmult_rate(min(3.0, seconds / ROUNDS))
        before = processes.cpu()
        rate = evaluation_rate(service, seconds / ROUNDS, CLIENTS)
        after = processes.cpu()
        for name in spent:
            spent[name] += after[name] - before[name]
        rounds.append(
            {"bare": round(bare), "evaluated": round(rate), "ratio": round(rate / bare, 3)}
        )
    requests = sum(r["evaluated"] for r in rounds) * (seconds / ROUNDS) / ELEMENTS
    return {
        "evaluated_elements_per_second": round(sum(r["evaluated"] for r in rounds) / ROUNDS),
        "bare_scalarmult_per_second": round(sum(r["bare"] for r in rounds) / ROUNDS),
        "evaluation_ratio": round(sum(r["ratio"] for r in rounds) / ROUNDS, 3),
        "rounds": rounds,
        "cpu_ms_per_request": {
            name: round(spent[name] * 1000 / requests, 2) for name in ("keyholder", "client")
        },
    }


def run(folder: Path, env: dict[str, str], seconds: float = 10.0, samples: int = 200) -> Any:
    cores = os.cpu_count() or 1
    # The figure: one key-holder process per core (VIR_KEYHOLDER_WORKERS), as the bare
    # rate runs one process per core. Beside it, one process.
    per_core = start_service(folder / "kh-per-core", VIR_KEYHOLDER_WORKERS=str(cores), **env)
    try:
        measured = _throughput(per_core, seconds)
        single_latency = latency(per_core, samples)
        # Each process's own peak (VmHWM), read while it runs: the key holder's, and this
        # process's (the load generator). ru_maxrss would carry a parent's peak over.
        peaks = service_processes([per_core]).peak_rss_mb()
    finally:
        per_core.stop()
    one = start_service(folder / "kh-one", VIR_KEYHOLDER_WORKERS="1", **env)
    try:
        one_measured = _throughput(one, seconds)
    finally:
        one.stop()
    shared = start_service(folder / "kh-threshold", threshold="2-of-3", **env)
    try:
        threshold_latency = latency(shared, samples)
    finally:
        shared.stop()
    result = {
        "keyholder_workers": cores,
        "concurrent_requests": CLIENTS,
        **measured,
        "one_process": one_measured,
        "pseudonymise_single_key": single_latency,
        "pseudonymise_threshold_2_of_3": threshold_latency,
        "threshold_p50_over_single": round(
            threshold_latency["p50_ms"] / single_latency["p50_ms"], 2
        ),
        "peak_rss_mb": {"keyholder": peaks["keyholder"], "load_generator": peaks["client"]},
    }
    rounds = ", ".join(f"{r['ratio']}" for r in measured["rounds"])
    print(
        f"key holder: {result['evaluated_elements_per_second']} elements/s evaluated "
        f"(32 a request, {cores} processes) vs bare {result['bare_scalarmult_per_second']}/s "
        f"measured beside it: ratio {result['evaluation_ratio']} (rounds {rounds}; one "
        f"process: {one_measured['evaluation_ratio']}); CPU ms/request key holder "
        f"{measured['cpu_ms_per_request']['keyholder']}, load generator "
        f"{measured['cpu_ms_per_request']['client']}; "
        f"pseudonymise p50 single {single_latency['p50_ms']} ms, "
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
    with HostShare() as host:
        run(Path(tempfile.mkdtemp(prefix="vir-khbench-")), UNTHROTTLED)
    print(f"the machine meanwhile: busy {host.found['busy_percent']}%{host_note(host.found)}")
