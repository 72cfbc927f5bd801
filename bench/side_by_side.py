"""Two key holders side by side: what a change costs or saves a served request.

On this shared host one run of a served figure against another minutes later
measures the host's drift as much as the code (docs/benchmarks.md, "A full
collection"). Here both codes serve at once: a key holder from this checkout and one
from ``--against DIR`` (another checkout), each with one worker process, started
alike (``PYTHONPATH`` on each checkout, so both are fresh interpreters). Rounds of
``--requests`` evaluations go to one and then the other, alternating which goes
first; each round's ratio is this checkout's CPU a request over the other's (the
key-holder processes' own CPU time, ``/proc``), and the figure is the median of the
rounds with its quartiles.

``python bench/side_by_side.py --against DIR [--elements 32] [--rounds 16]
[--requests 400] [--connections 8]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]
from harness import UNTHROTTLED, design_env, service_processes  # noqa: E402
from keyholder_bench import _Requester, evaluation_request  # noqa: E402
from support.service import RunningService, start_service  # noqa: E402


def cpu_us_per_request(
    service: RunningService, request: bytes, requests: int, connections: int
) -> float:
    """The key holder's CPU (us) a request over ``requests`` sent on ``connections``."""
    senders = [_Requester(service, request) for _ in range(connections)]
    try:
        for sender in senders:  # the handshake and the first answer outside the count
            sender.send()
        processes = service_processes([service])
        before = processes.cpu()["keyholder"]
        each = requests // connections

        def send_each(sender: _Requester) -> None:
            for _ in range(each):
                sender.send()

        threads = [threading.Thread(target=send_each, args=(s,)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return (processes.cpu()["keyholder"] - before) * 1e6 / (each * connections)
    finally:
        for sender in senders:
            sender.close()


def compare(against: Path, elements: int, rounds: int, requests: int, connections: int) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="vir-side-"))
    one = {"VIR_KEYHOLDER_WORKERS": "1", **UNTHROTTLED}
    here = start_service(folder / "here", **one, **design_env(ROOT))
    try:
        there = start_service(folder / "there", **one, **design_env(against))
        try:
            mine: list[float] = []
            theirs: list[float] = []
            sides = [
                (here, evaluation_request(here, elements), mine),
                (there, evaluation_request(there, elements), theirs),
            ]
            for n in range(rounds):
                for service, request, found in sides if n % 2 == 0 else reversed(sides):
                    found.append(cpu_us_per_request(service, request, requests, connections))
        finally:
            there.stop()
    finally:
        here.stop()
    ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
    quartiles = statistics.quantiles(ratios, n=4)
    return {
        "against": str(against),
        "elements": elements,
        "rounds": rounds,
        "requests_a_round": requests,
        "connections": connections,
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_quartiles": [round(quartiles[0], 3), round(quartiles[2], 3)],
        "cpu_us_a_request": {
            "here": round(statistics.median(mine)),
            "against": round(statistics.median(theirs)),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="another checkout")
    parser.add_argument("--elements", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not (args.against / "vir" / "__init__.py").is_file():
        parser.error(f"--against: {args.against} holds no vir/ checkout")
    if not 1 <= args.elements <= 64 or args.rounds < 2 or args.requests < args.connections:
        parser.error("--elements 1..64, --rounds >= 2, --requests >= --connections")
    found = compare(args.against, args.elements, args.rounds, args.requests, args.connections)
    print(json.dumps(found))
    print(
        f"key holder CPU a request, this checkout over {args.against}: median "
        f"{found['ratio_median']} of {args.rounds} rounds (quartiles "
        f"{found['ratio_quartiles'][0]}-{found['ratio_quartiles'][1]}); "
        f"{found['cpu_us_a_request']['here']} against {found['cpu_us_a_request']['against']} us"
    )


if __name__ == "__main__":
    main()
