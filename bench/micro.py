"""CPU of vir's hot paths, in this process: what a change to one of them saves.

On a shared host the end-to-end figures move by more than a 5-10% change (see
docs/benchmarks.md, "A shared host"), and so does a process's CPU time from one run to
the next. A part here times one path by process CPU in rounds; with ``--against DIR``
(another checkout) it loads that checkout's version of the module the path lives in
beside this one's and alternates the two, round by round, so both see the same
machine: the median of the paired ratios (this / that) is the figure.

Parts (``python bench/micro.py PART [--against DIR] [--rounds N]``):

- ``client-crypto``: what the client spends per identity, 64 at a time: blind, check
  the key holder's answer, unblind (``vir/crypto/oprf.py``).
- ``names``: checking a professional's contact details, the same one each time as a
  back office sends them (``vir/domain/contact.py``).
- ``locks``: making, sorting and checking the locks of a batch of 32 signals
  (``vir/store/locks.py``).
- ``register``: ``SignalService.register`` and ``register_many`` (32 a batch) of fresh
  signals on SQLite, per signal; this checkout only (``--against`` does not apply:
  the path spans many modules, so compare two checkouts by running this part with
  ``PYTHONPATH`` on each, alternately).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

MODULES = {
    "client-crypto": "vir/crypto/oprf.py",
    "names": "vir/domain/contact.py",
    "locks": "vir/store/locks.py",
}


def _load(path: Path, name: str) -> ModuleType:
    """The module at ``path`` under ``name``: its own imports come from this checkout."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def _client_crypto(oprf: Any) -> Callable[[], float]:
    inputs = [f"nl-bsn:{100000000 + i:09d}".encode() for i in range(64)]
    key = oprf.random_scalar()
    evaluated = oprf.evaluate_batch(key, [oprf.blind(x)[1] for x in inputs])

    def one() -> float:
        started = time.process_time()
        blinded = [oprf.blind(x) for x in inputs]
        checked = [e for e in evaluated if oprf.is_valid_element(e)]
        oprf.unblind_batch([r for r, _e in blinded], checked)
        return (time.process_time() - started) / len(inputs)

    return one


def _names(contact: Any) -> Callable[[], float]:
    def one() -> float:
        started = time.process_time()
        for _ in range(100):
            contact.person_name("Anna de Wit")
            contact.email_address("anna@example.nl")
            contact.phone_number("010-1234567")
        return (time.process_time() - started) / 100

    return one


def _locks(locks: Any) -> Callable[[], float]:
    people = [os.urandom(32) for _ in range(64)]

    def one() -> float:
        started = time.process_time()
        for _ in range(20):
            made = [locks.Lock.named("00000001000000000001", f"REF-{i}") for i in range(32)]
            made += [locks.Lock.of(locks.Kind.PERSON, p) for p in people]
            made += [locks.Lock.of(locks.Kind.PARENT, p) for p in people]
            ordered = sorted(set(made))
            assert ordered[0] <= ordered[-1]
        return (time.process_time() - started) / 20 / 32  # a signal's share

    return one


PARTS: dict[str, Callable[[Any], Callable[[], float]]] = {
    "client-crypto": _client_crypto,
    "names": _names,
    "locks": _locks,
}


def paired(part: str, against: Path | None, rounds: int) -> dict[str, Any]:
    here = _load(ROOT / MODULES[part], f"micro_here_{part.replace('-', '_')}")
    one_here = PARTS[part](here)
    one_there = None
    if against is not None:
        there = _load(against / MODULES[part], f"micro_there_{part.replace('-', '_')}")
        one_there = PARTS[part](there)
    mine, theirs = [], []
    for _ in range(rounds):
        mine.append(one_here())
        if one_there is not None:
            theirs.append(one_there())
    found: dict[str, Any] = {"part": part, "rounds": rounds, "us": _us(mine)}
    if theirs:
        found["against"] = str(against)
        found["against_us"] = _us(theirs)
        ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
        found["paired_ratio"] = round(statistics.median(ratios), 3)
    return found


def _us(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1e6, 1)


def register(signals: int) -> dict[str, Any]:
    from support.world import UTRECHT_ORGS, person, world

    from vir.domain.signals import Professional
    from vir.services.signals import SignalRequest

    made = itertools.count()

    def request() -> SignalRequest:
        n = next(made)
        return SignalRequest(
            f"MICRO-{n:07d}",
            1,
            person(f"child-{n}"),
            (person(f"parent-{n}"),),
            None,
            None,
            Professional("Anna de Wit", "anna@example.nl", "010-1234567"),
            None,
        )

    with tempfile.TemporaryDirectory(prefix="vir-micro-") as folder, world(Path(folder)) as w:
        caller = w.caller(UTRECHT_ORGS[0])
        w.store.db.integrate_after_commit = False  # as in vir serve: a thread integrates
        for _ in range(50):
            w.signals.register(caller, request())
        singles = [request() for _ in range(signals)]
        started = time.process_time()
        for single in singles:
            w.signals.register(caller, single)
        one = (time.process_time() - started) / signals
        batches = [[request() for _ in range(32)] for _ in range(max(1, signals // 32))]
        started = time.process_time()
        for batch in batches:
            w.signals.register_many(caller, batch)
        many = (time.process_time() - started) / (32 * len(batches))
        started = time.process_time()
        w.store.db.integrate()
        integrated = (time.process_time() - started) / (signals + 32 * len(batches))
    return {
        "part": "register",
        "signals": signals,
        "register_us": round(one * 1e6, 1),
        "register_many_us": round(many * 1e6, 1),
        "integrate_us_per_entry": round(integrated * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=[*PARTS, "register"])
    parser.add_argument("--against", type=Path, help="another checkout (its root folder)")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--signals", type=int, default=320, help="for register")
    args = parser.parse_args()
    if args.part == "register":
        if args.against is not None:
            parser.error("register spans many modules: run it with PYTHONPATH on each checkout")
        found = register(args.signals)
        print(
            f"register: {found['register_us']} us CPU a signal alone, "
            f"{found['register_many_us']} us in batches of 32; integrating "
            f"{found['integrate_us_per_entry']} us an audit entry"
        )
        return
    found = paired(args.part, args.against, args.rounds)
    line = f"{args.part}: {found['us']} us CPU (median of {found['rounds']} rounds)"
    if "paired_ratio" in found:
        line += (
            f"; {found['against']}: {found['against_us']} us; this / that, paired: "
            f"{found['paired_ratio']}"
        )
    print(line)


if __name__ == "__main__":
    main()
