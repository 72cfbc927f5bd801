"""The RFC 6962 Merkle tree agrees with a naive reference, published vectors, and refuses forgeries.

The reference below is the RFC's recursive definition written out as plainly
as possible (the way transparency-dev/merkle's ``reference_test.go`` does it):
it hashes entries itself with hashlib and shares no code with the module under
test. Two naive recursive verifiers undo PATH and PROOF; they are the oracle
for probes whose answer depends on the tree's shape (a proof for one size can
be a valid proof for another size whose tree has the same shape).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vir.audit.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

pytestmark = pytest.mark.sqlite_only("Merkle tree arithmetic in memory: no database")

# --- Naive reference: RFC 6962 §2.1, recursive, on entries -------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _ref_node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right)


def _split(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n])."""
    n = len(entries)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + entries[0])
    k = _split(n)
    return _ref_node(ref_mth(entries[:k]), ref_mth(entries[k:]))


def ref_path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]), leaf upward."""
    n = len(entries)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n])."""
    return ref_subproof(m, entries, True)


def ref_subproof(m: int, entries: Sequence[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(entries)
    if m == n:
        return [] if complete else [ref_mth(entries)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], complete), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def _ref_root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """Undo PATH(m, D[n]): its last element is the sibling at the top split."""
    if n == 1:
        return None if path else leaf
    if not path:
        return None
    *below, top = path
    k = _split(n)
    if m < k:
        sub = _ref_root_from_path(m, k, leaf, below)
        return None if sub is None else _ref_node(sub, top)
    sub = _ref_root_from_path(m - k, n - k, leaf, below)
    return None if sub is None else _ref_node(top, sub)


def ref_verify_inclusion(leaf: bytes, m: int, n: int, path: Sequence[bytes], root_: bytes) -> bool:
    return 0 <= m < n and _ref_root_from_path(m, n, leaf, list(path)) == root_


def _ref_roots_from_proof(
    m: int, n: int, complete: bool, proof: list[bytes], old_root: bytes
) -> tuple[bytes, bytes] | None:
    """Undo SUBPROOF(m, D[n], b): the (old, new) roots of this subtree."""
    if m == n:
        if complete:
            return None if proof else (old_root, old_root)
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    *below, top = proof
    k = _split(n)
    if m <= k:
        sub = _ref_roots_from_proof(m, k, complete, below, old_root)
        return None if sub is None else (sub[0], _ref_node(sub[1], top))
    sub = _ref_roots_from_proof(m - k, n - k, False, below, old_root)
    return None if sub is None else (_ref_node(top, sub[0]), _ref_node(top, sub[1]))


def ref_verify_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    if not 0 < m <= n:
        return False
    return _ref_roots_from_proof(m, n, True, list(proof), old_root) == (old_root, new_root)


# --- Test data ---------------------------------------------------------------

MAX_SIZE = 300
ENTRIES = [b"entry %d" % i for i in range(MAX_SIZE)]
LEAVES = [leaf_hash(e) for e in ENTRIES]
# The reference roots of every prefix, computed once: Hypothesis draws sizes
# many times and the naive recursion is the slow side.
REF_ROOTS = [ref_mth(ENTRIES[:n]) for n in range(MAX_SIZE + 1)]

EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

sizes = st.integers(min_value=1, max_value=MAX_SIZE)
bits = st.integers(min_value=0, max_value=8 * 32 - 1)
hashes = st.binary(min_size=32, max_size=32)
not_hashes = st.binary(max_size=64).filter(lambda b: len(b) != 32)


@st.composite
def tree_and_index(draw: st.DrawFn, min_size: int = 1) -> tuple[int, int]:
    size = draw(st.integers(min_value=min_size, max_value=MAX_SIZE))
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def old_and_new(draw: st.DrawFn) -> tuple[int, int]:
    """0 < old < new: the sizes between which a proof is not empty."""
    new = draw(st.integers(min_value=2, max_value=MAX_SIZE))
    return draw(st.integers(min_value=1, max_value=new - 1)), new


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- Agreement with the reference --------------------------------------------


@given(st.integers(min_value=0, max_value=MAX_SIZE))
def test_root_matches_the_reference(size: int) -> None:
    assert root(LEAVES[:size]) == REF_ROOTS[size]


@given(st.lists(st.binary(max_size=40), max_size=40))
def test_root_matches_the_reference_for_any_entries(entries: list[bytes]) -> None:
    assert root([leaf_hash(e) for e in entries]) == ref_mth(entries)


@given(tree_and_index())
def test_inclusion_proof_is_the_reference_path_and_verifies(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    assert proof == ref_path(index, ENTRIES[:size])
    assert verify_inclusion(LEAVES[index], index, size, proof, REF_ROOTS[size])


@given(sizes, st.data())
def test_consistency_proof_is_the_reference_proof_and_verifies(
    size: int, data: st.DataObject
) -> None:
    old = data.draw(st.integers(min_value=1, max_value=size))
    proof = consistency_proof(LEAVES[:size], old)
    assert proof == ref_proof(old, ENTRIES[:size])
    assert verify_consistency(old, size, REF_ROOTS[old], REF_ROOTS[size], proof)


def test_every_index_and_every_old_size_up_to_70() -> None:
    for size in range(1, 71):
        entries, leaves, tree_root = ENTRIES[:size], LEAVES[:size], REF_ROOTS[size]
        assert root(leaves) == tree_root
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert proof == ref_path(index, entries), (index, size)
            assert verify_inclusion(leaves[index], index, size, proof, tree_root), (index, size)
        for old in range(1, size + 1):
            proof = consistency_proof(leaves, old)
            assert proof == ref_proof(old, entries), (old, size)
            assert verify_consistency(old, size, REF_ROOTS[old], tree_root, proof), (old, size)


def test_compact_range_root_equals_root_at_every_size() -> None:
    tree = CompactRange()
    assert tree.size == 0
    assert tree.root() == REF_ROOTS[0]
    for size, leaf in enumerate(LEAVES, start=1):
        tree.append(leaf)
        assert tree.size == size
        assert len(tree.nodes) == size.bit_count()
        assert tree.root() == REF_ROOTS[size] == root(LEAVES[:size]), size


@given(tree_and_index())
def test_compact_range_resumes_from_its_stored_nodes(case: tuple[int, int]) -> None:
    size, stop = case
    first = CompactRange()
    for leaf in LEAVES[:stop]:
        first.append(leaf)
    resumed = CompactRange(first.size, first.nodes)
    for leaf in LEAVES[stop:size]:
        resumed.append(leaf)
    assert resumed.size == size
    assert resumed.root() == REF_ROOTS[size]


def test_compact_range_refuses_inconsistent_state() -> None:
    with pytest.raises(ValueError):
        CompactRange(3, [LEAVES[0]])  # size 3 needs two subtree roots
    with pytest.raises(ValueError):
        CompactRange(-1)
    with pytest.raises(ValueError):
        CompactRange(1, [b"short"])
    with pytest.raises(ValueError):
        CompactRange().append(b"not a hash")


# --- Producer refuses impossible requests -------------------------------------


@pytest.mark.parametrize(("size", "index"), [(0, 0), (1, 1), (5, 5), (5, -1)])
def test_inclusion_proof_refuses_an_index_outside_the_tree(size: int, index: int) -> None:
    with pytest.raises(ValueError):
        inclusion_proof(LEAVES[:size], index)


@pytest.mark.parametrize(("size", "old"), [(0, 0), (5, 0), (5, 6), (5, -1)])
def test_consistency_proof_refuses_sizes_outside_1_to_n(size: int, old: int) -> None:
    with pytest.raises(ValueError):
        consistency_proof(LEAVES[:size], old)


# --- Inclusion verification rejects forgeries ----------------------------------


@given(tree_and_index(min_size=2), st.data())
def test_inclusion_rejects_a_flipped_bit_anywhere(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    leaf, tree_root = LEAVES[index], REF_ROOTS[size]
    at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
    bit = data.draw(bits, label="bit")
    bad = [*proof]
    bad[at] = flip(bad[at], bit)
    assert not verify_inclusion(leaf, index, size, bad, tree_root)
    assert not verify_inclusion(flip(leaf, bit), index, size, proof, tree_root)
    assert not verify_inclusion(leaf, index, size, proof, flip(tree_root, bit))


@given(tree_and_index(min_size=2), st.data())
def test_inclusion_rejects_a_proof_with_one_element_removed_or_added(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    leaf, tree_root = LEAVES[index], REF_ROOTS[size]
    at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="removed")
    assert not verify_inclusion(leaf, index, size, proof[:at] + proof[at + 1 :], tree_root)
    at = data.draw(st.integers(min_value=0, max_value=len(proof)), label="inserted at")
    extra = data.draw(st.sampled_from([*proof, tree_root, leaf]) | hashes, label="extra")
    longer = [*proof[:at], extra, *proof[at:]]
    assert not verify_inclusion(leaf, index, size, longer, tree_root)


@given(tree_and_index(), st.data())
def test_inclusion_rejects_hashes_that_are_not_32_bytes(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    leaf, tree_root = LEAVES[index], REF_ROOTS[size]
    wrong = data.draw(not_hashes, label="wrong length value")
    assert not verify_inclusion(wrong, index, size, proof, tree_root)
    assert not verify_inclusion(leaf, index, size, proof, wrong)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
        bad = [*proof]
        bad[at] = wrong
        assert not verify_inclusion(leaf, index, size, bad, tree_root)


@given(tree_and_index(min_size=2), st.data())
def test_inclusion_rejects_a_wrong_index(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
    # Within one tree the path's shape pins the index, so no other index fits.
    assert not verify_inclusion(LEAVES[index], other, size, proof, REF_ROOTS[size])


@given(tree_and_index())
def test_inclusion_rejects_an_index_outside_the_tree(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    for bad_index, bad_size in [(size, size), (size + 7, size), (-1, size), (index, 0), (0, 0)]:
        assert not verify_inclusion(LEAVES[index], bad_index, bad_size, proof, REF_ROOTS[size])


@given(tree_and_index(), st.data())
def test_inclusion_under_a_wrong_size_agrees_with_the_reference(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size, index = case
    proof = inclusion_proof(LEAVES[:size], index)
    leaf, tree_root = LEAVES[index], REF_ROOTS[size]
    other = data.draw(st.integers(min_value=0, max_value=2 * MAX_SIZE).filter(lambda s: s != size))
    # A path can fit a different size when both trees have the same shape
    # along it (leaf 0 of 3 and of 4), so the reference decides, not "False".
    got = verify_inclusion(leaf, index, other, proof, tree_root)
    assert got == ref_verify_inclusion(leaf, index, other, proof, tree_root)


def test_a_size_with_the_same_shape_accepts_the_same_proof() -> None:
    # Why the wrong-size tests ask the reference: the verifier only sees the
    # shape, so sizes are bound to roots by the signed tree head, not by proofs.
    path = inclusion_proof(LEAVES[:3], 0)  # [leaf 1, leaf 2]: right, right
    assert verify_inclusion(LEAVES[0], 0, 4, path, REF_ROOTS[3])
    assert ref_verify_inclusion(LEAVES[0], 0, 4, path, REF_ROOTS[3])
    proof = consistency_proof(LEAVES[:3], 2)  # [leaf 2]: one node on the right
    assert verify_consistency(2, 4, REF_ROOTS[2], REF_ROOTS[3], proof)
    assert ref_verify_consistency(2, 4, REF_ROOTS[2], REF_ROOTS[3], proof)


def test_inclusion_rejects_the_transparency_dev_size_probes() -> None:
    # The wrong sizes transparency-dev/merkle probes (size * 2, size / 2) never
    # share a path shape with the right size: these must all be rejected.
    for size in range(1, 71):
        for index in range(size):
            proof = inclusion_proof(LEAVES[:size], index)
            for wrong in (size * 2, size // 2):
                assert not verify_inclusion(LEAVES[index], index, wrong, proof, REF_ROOTS[size])


def test_inclusion_single_leaf_tree() -> None:
    only = LEAVES[0]
    assert verify_inclusion(only, 0, 1, [], only)
    assert not verify_inclusion(only, 0, 1, [only], only)
    assert not verify_inclusion(only, 0, 1, [], LEAVES[1])
    assert not verify_inclusion(b"", 0, 1, [], b"")


@given(
    leaf=st.binary(max_size=40),
    index=st.integers(min_value=-(2**70), max_value=2**70),
    size=st.integers(min_value=-(2**70), max_value=2**70),
    proof=st.lists(st.binary(max_size=40) | hashes, max_size=80),
    root_=st.binary(max_size=40),
)
def test_inclusion_never_raises_on_garbage(
    leaf: bytes, index: int, size: int, proof: list[bytes], root_: bytes
) -> None:
    got = verify_inclusion(leaf, index, size, proof, root_)
    assert got is False or (len(leaf) == len(root_) == 32 and index == 0 and size == 1)


@pytest.mark.parametrize(
    "args",
    [
        (None, 0, 1, [], bytes(32)),
        (bytes(32), 0, 1, None, bytes(32)),
        (bytes(32), 0, 1, [None], bytes(32)),
        (bytes(32), 0, 2, ["x" * 32], bytes(32)),
        (bytes(32), 0.0, 1, [], bytes(32)),
        (bytes(32), 0, 1.5, [], bytes(32)),
        (bytes(32), "0", "1", [], bytes(32)),
        (bytes(32), 0, True, [], bytes(32)),
        (bytearray(32), 0, 1, [], bytes(32)),
    ],
)
def test_inclusion_returns_false_for_wrong_types(args: tuple[object, ...]) -> None:
    assert verify_inclusion(*args) is False  # type: ignore[arg-type]


# --- Consistency verification rejects forgeries -----------------------------------


@given(old_and_new(), st.data())
def test_consistency_rejects_a_flipped_bit_anywhere(
    case: tuple[int, int], data: st.DataObject
) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    old_root, new_root = REF_ROOTS[old], REF_ROOTS[new]
    at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")
    bit = data.draw(bits, label="bit")
    bad = [*proof]
    bad[at] = flip(bad[at], bit)
    assert not verify_consistency(old, new, old_root, new_root, bad)
    assert not verify_consistency(old, new, flip(old_root, bit), new_root, proof)
    assert not verify_consistency(old, new, old_root, flip(new_root, bit), proof)


@given(old_and_new(), st.data())
def test_consistency_rejects_a_truncated_or_extended_proof(
    case: tuple[int, int], data: st.DataObject
) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    old_root, new_root = REF_ROOTS[old], REF_ROOTS[new]
    assert not verify_consistency(old, new, old_root, new_root, [])
    assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
    at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="removed")
    assert not verify_consistency(old, new, old_root, new_root, proof[:at] + proof[at + 1 :])
    at = data.draw(st.integers(min_value=0, max_value=len(proof)), label="inserted at")
    extra = data.draw(st.sampled_from([*proof, old_root, new_root]) | hashes, label="extra")
    longer = [*proof[:at], extra, *proof[at:]]
    assert not verify_consistency(old, new, old_root, new_root, longer)


@given(old_and_new(), st.data())
def test_consistency_rejects_swapped_roots_and_reversed_sizes(
    case: tuple[int, int], data: st.DataObject
) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    old_root, new_root = REF_ROOTS[old], REF_ROOTS[new]
    assert not verify_consistency(old, new, new_root, old_root, proof)
    assert not verify_consistency(new, old, old_root, new_root, proof)
    assert not verify_consistency(new, old, new_root, old_root, proof)
    assert not verify_consistency(0, new, REF_ROOTS[0], new_root, proof)
    assert not verify_consistency(0, new, REF_ROOTS[0], new_root, [])
    wrong = data.draw(not_hashes, label="wrong length value")
    assert not verify_consistency(old, new, wrong, new_root, proof)
    assert not verify_consistency(old, new, old_root, wrong, proof)
    bad = [*proof]
    bad[data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="element")] = wrong
    assert not verify_consistency(old, new, old_root, new_root, bad)


@given(old_and_new(), st.data())
def test_consistency_under_wrong_sizes_agrees_with_the_reference(
    case: tuple[int, int], data: st.DataObject
) -> None:
    old, new = case
    proof = consistency_proof(LEAVES[:new], old)
    old_root, new_root = REF_ROOTS[old], REF_ROOTS[new]
    other_old = data.draw(st.integers(min_value=-1, max_value=2 * MAX_SIZE), label="old size")
    other_new = data.draw(st.integers(min_value=-1, max_value=2 * MAX_SIZE), label="new size")
    if (other_old, other_new) == (old, new):
        other_new += 1
    # As for inclusion, another pair of sizes can share the proof's shape
    # (2 → 3 and 2 → 4 both combine one node on the right), so the naive
    # reference verifier decides what the answer must be.
    got = verify_consistency(other_old, other_new, old_root, new_root, proof)
    assert got == ref_verify_consistency(other_old, other_new, old_root, new_root, proof)


def test_consistency_rejects_the_transparency_dev_size_probes() -> None:
    # transparency-dev/merkle's wrong-size probes; none shares the proof's shape.
    for new in range(2, 71):
        for old in range(1, new):
            proof = consistency_proof(LEAVES[:new], old)
            old_root, new_root = REF_ROOTS[old], REF_ROOTS[new]
            for bad_old, bad_new in [
                (old - 1, new),
                (old + 1, new),
                (old ^ 2, new),
                (old, new * 2),
                (old, new // 2),
            ]:
                assert not verify_consistency(bad_old, bad_new, old_root, new_root, proof), (
                    old,
                    new,
                    bad_old,
                    bad_new,
                )


@given(sizes)
def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots(size: int) -> None:
    tree_root = REF_ROOTS[size]
    assert consistency_proof(LEAVES[:size], size) == []
    assert verify_consistency(size, size, tree_root, tree_root, [])
    assert not verify_consistency(size, size, tree_root, tree_root, [tree_root])
    assert not verify_consistency(size, size, tree_root, REF_ROOTS[size - 1], [])
    assert not verify_consistency(0, 0, REF_ROOTS[0], REF_ROOTS[0], [])


@given(
    old=st.integers(min_value=-(2**70), max_value=2**70),
    new=st.integers(min_value=-(2**70), max_value=2**70),
    old_root=st.binary(max_size=40) | hashes,
    new_root=st.binary(max_size=40) | hashes,
    proof=st.lists(st.binary(max_size=40) | hashes, max_size=80),
)
def test_consistency_never_raises_on_garbage(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    got = verify_consistency(old, new, old_root, new_root, proof)
    assert got is False or (old == new and old_root == new_root and not proof)


@pytest.mark.parametrize(
    "args",
    [
        (1, 2, bytes(32), bytes(32), None),
        (1, 2, bytes(32), bytes(32), [None]),
        (1, 2, None, bytes(32), [bytes(32)]),
        (1.0, 2, bytes(32), bytes(32), [bytes(32)]),
        (1, "2", bytes(32), bytes(32), [bytes(32)]),
        (True, True, bytes(32), bytes(32), []),
    ],
)
def test_consistency_returns_false_for_wrong_types(args: tuple[object, ...]) -> None:
    assert verify_consistency(*args) is False  # type: ignore[arg-type]


# --- Known answers ----------------------------------------------------------------
#
# The eight Certificate Transparency test entries and their roots, audit paths
# and consistency proofs, from google/trillian merkle/log_verifier_test.go
# (commit 166e69e6) and transparency-dev/merkle proof/verify_test.go (commit
# 02194e9a). Both files number leaves from 1; the indices below are 0-based.

CT_ENTRIES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_LEAVES = [leaf_hash(e) for e in CT_ENTRIES]
CT_ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root([]).hex() == EMPTY_ROOT_HEX
    assert CompactRange().root().hex() == EMPTY_ROOT_HEX


def test_hasher_vectors() -> None:
    # transparency-dev/merkle rfc6962/rfc6962_test.go (commit 78493b07).
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_certificate_transparency_roots(size: int) -> None:
    assert root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]
    tree = CompactRange()
    for leaf in CT_LEAVES[:size]:
        tree.append(leaf)
    assert tree.root().hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_certificate_transparency_inclusion_proofs(
    index: int, size: int, expected: list[str]
) -> None:
    proof = inclusion_proof(CT_LEAVES[:size], index)
    assert [p.hex() for p in proof] == expected
    tree_root = bytes.fromhex(CT_ROOTS[size])
    assert verify_inclusion(CT_LEAVES[index], index, size, proof, tree_root)


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_certificate_transparency_consistency_proofs(
    old: int, new: int, expected: list[str]
) -> None:
    proof = consistency_proof(CT_LEAVES[:new], old)
    assert [p.hex() for p in proof] == expected
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, proof)
