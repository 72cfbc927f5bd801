"""Share repair's arithmetic (``vir.crypto.threshold``) and sealed boxes
(``vir.crypto.sealedbox``): the two rounds give exactly the lost holder's f(j), a
helper's parts look random whatever its term is, and the public-share check catches a
wrong sum. No servers, no files but a box key's."""

from __future__ import annotations

import itertools
import random
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vir.crypto import oprf, sealedbox, threshold
from vir.domain.errors import ConfigurationError, CryptoError

pytestmark = pytest.mark.sqlite_only("share repair arithmetic in memory: no database")

SETUPS = [(2, 3), (3, 5)]


def _seeded(seed: int) -> Callable[[], bytes]:
    rng = random.Random(seed)
    return lambda: oprf.scalar_from_int(rng.randrange(oprf.GROUP_ORDER))


def _two_rounds(
    shares: Sequence[threshold.Share], target: int, rng: Callable[[], bytes] = oprf.random_scalar
) -> tuple[bytes, dict[int, list[bytes]], dict[int, bytes]]:
    """The repair as the helpers run it, without the files: each helper's parts (by
    dealer), each helper's sum, and what the new holder adds up."""
    helpers = [s.index for s in shares]
    parts = {
        s.index: threshold.split_additive(
            threshold.repair_term(s, helpers, target), len(helpers), rng
        )
        for s in shares
    }
    sums = {
        m: threshold.add_scalars([parts[i][position] for i in helpers])
        for position, m in enumerate(helpers)
    }
    return threshold.add_scalars(list(sums.values())), parts, sums


def _cases(t: int, n: int) -> list[tuple[tuple[int, ...], int]]:
    return [
        (helpers, j)
        for helpers in itertools.combinations(range(1, n + 1), t)
        for j in range(1, n + 1)
        if j not in helpers
    ]


@pytest.mark.parametrize(("t", "n"), SETUPS)
def test_every_helper_set_repairs_every_other_holder_exactly(t: int, n: int) -> None:
    key = oprf.random_scalar()
    shares = threshold.split(key, t, n, rng=_seeded(t * 100 + n))
    for helpers, j in _cases(t, n):
        chosen = [shares[i - 1] for i in helpers]
        repaired, _parts, _sums = _two_rounds(chosen, j)
        assert repaired == shares[j - 1].secret, (helpers, j)
        assert threshold.repair(chosen, j) == shares[j - 1]
        # The same polynomial: the repaired share with any t-1 others gives k back.
        others = [s for s in shares if s.index != j][: t - 1]
        assert threshold.reconstruct([threshold.Share(j, repaired), *others]) == key


@given(
    setup=st.sampled_from(SETUPS),
    seed=st.integers(min_value=0, max_value=2**32),
    choice=st.integers(min_value=0, max_value=10_000),
)
def test_repair_gives_f_of_j_for_any_key(setup: tuple[int, int], seed: int, choice: int) -> None:
    t, n = setup
    key = _seeded(seed)()
    if key == bytes(32):
        return
    shares = threshold.split(key, t, n, rng=_seeded(seed + 1))
    helpers, j = _cases(t, n)[choice % len(_cases(t, n))]
    repaired, _parts, _sums = _two_rounds([shares[i - 1] for i in helpers], j, _seeded(seed + 2))
    assert repaired == shares[j - 1].secret


def test_lagrange_at_generalises_lagrange_at_zero() -> None:
    for indices in ([1, 2], [1, 3], [2, 4, 5], [1, 2, 3, 4, 5]):
        assert threshold.lagrange_at(indices, 0) == threshold.lagrange_at_zero(indices)
        # At one of the indices, the coefficients pick that share alone.
        for x in indices:
            ones = {i: oprf.scalar_from_int(1 if i == x else 0) for i in indices}
            assert threshold.lagrange_at(indices, x) == ones
    with pytest.raises(ValueError, match="distinct"):
        threshold.lagrange_at([1, 1], 2)
    with pytest.raises(ValueError, match="point"):
        threshold.lagrange_at([1, 2], -1)


def test_parts_add_up_and_any_but_one_are_the_rng_s_draws() -> None:
    value = oprf.random_scalar()
    draws = [oprf.random_scalar() for _ in range(2)]
    feed = iter(draws)
    parts = threshold.split_additive(value, 3, lambda: next(feed))
    assert threshold.add_scalars(parts) == value
    # The first t-1 parts are the uniform draws themselves, whatever the value is: they
    # carry nothing of it; only with the last one does the value appear.
    assert parts[:2] == draws
    assert threshold.split_additive(value, 1) == [value]


@pytest.mark.parametrize(("t", "n"), SETUPS)
def test_parts_and_sums_are_fresh_and_never_a_term_or_a_share(t: int, n: int) -> None:
    shares = threshold.split(oprf.random_scalar(), t, n)
    chosen, j = shares[:t], t + 1
    helpers = [s.index for s in chosen]
    first, parts, sums = _two_rounds(chosen, j)
    second, parts_again, sums_again = _two_rounds(chosen, j)
    assert first == second == shares[j - 1].secret
    secrets = {s.secret for s in shares} | {threshold.repair_term(s, helpers, j) for s in chosen}
    for i in helpers:
        assert not set(parts[i]) & set(parts_again[i]), "two runs drew the same part"
        assert not set(parts[i]) & secrets
    assert not set(sums.values()) & set(sums_again.values())
    assert not set(sums.values()) & secrets


def test_the_public_share_check_catches_a_corrupted_sum() -> None:
    shares = threshold.split(oprf.random_scalar(), 2, 3)
    chosen, j = [shares[0], shares[2]], 2
    publics = [(s.index, threshold.public_share(s.secret)) for s in chosen]
    repaired, _parts, sums = _two_rounds(chosen, j)
    assert threshold.check_repaired(threshold.Share(j, repaired), publics)
    corrupted = threshold.add_scalars([sums[1], oprf.scalar_from_int(1), sums[3]])
    assert not threshold.check_repaired(threshold.Share(j, corrupted), publics)
    # A public share of another holder (files mixed up) is caught too.
    wrong = [(1, publics[0][1]), (3, threshold.public_share(shares[1].secret))]
    assert not threshold.check_repaired(threshold.Share(j, repaired), wrong)
    assert threshold.public_share(repaired) == threshold.expected_public_share(publics, j)


def test_repair_refuses_a_helper_set_that_cannot_repair() -> None:
    shares = threshold.split(oprf.random_scalar(), 2, 3)
    with pytest.raises(ValueError, match="cannot be one of the helpers"):
        threshold.repair(shares[:2], 2)
    with pytest.raises(ValueError, match="distinct"):
        threshold.repair([shares[0], shares[0]], 3)
    with pytest.raises(ValueError, match="not one of the helpers"):
        threshold.repair_term(shares[2], [1, 2], 3)
    assert "secret=<hidden>" in repr(threshold.repair(shares[:2], 3))


def test_a_sealed_box_opens_only_with_its_key_and_unaltered(tmp_path: Path) -> None:
    mine, other = sealedbox.new_keypair(), sealedbox.new_keypair()
    box = sealedbox.seal(b"part", mine.public)
    assert sealedbox.open_sealed(box, mine) == b"part"
    with pytest.raises(CryptoError):
        sealedbox.open_sealed(box, other)
    altered = box[:-1] + bytes([box[-1] ^ 1])
    with pytest.raises(CryptoError):
        sealedbox.open_sealed(altered, mine)
    assert mine.secret.hex() not in repr(mine)

    path = tmp_path / "repair-x.box"
    sealedbox.write_keypair(path, mine)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sealedbox.read_keypair(path) == mine
    with pytest.raises(ConfigurationError, match="already exists"):
        sealedbox.write_keypair(path, other)
    assert sealedbox.destroy_keypair(path) and not path.exists()
    with pytest.raises(ConfigurationError, match="no box key"):
        sealedbox.read_keypair(path)
