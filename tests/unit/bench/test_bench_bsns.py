"""The load generator's made-up BSNs (``bench/harness.py``, ``UniqueBsns``): each
passes the 11-proof that ``vir-client`` checks, and none repeats within a run (two
registrations on one made-up child would be a match the baseline never makes)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import harness

from vir.client.canonical import is_valid_bsn


def test_every_number_passes_the_11_proof_and_none_repeats() -> None:
    made = harness.UniqueBsns()
    numbers = [made() for _ in range(50_000)]
    assert all(is_valid_bsn(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


def test_the_count_wraps_around_without_an_all_zero_number() -> None:
    made = harness.UniqueBsns()
    made._next = 10**8 - 5  # the last prefixes, then 00000000 (whose BSN is refused)
    numbers = [made() for _ in range(10)]
    assert all(is_valid_bsn(n) for n in numbers)
    assert "000000000" not in numbers
    assert any(n.startswith("0000000") for n in numbers)  # wrapped around
