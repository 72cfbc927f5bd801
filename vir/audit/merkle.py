"""RFC 6962 / RFC 9162 Merkle tree hashes, inclusion proofs and consistency proofs.

Plain functions on bytes, standard library only. Leaves are hashed as
``SHA-256(0x00 ‖ entry)`` and interior nodes as ``SHA-256(0x01 ‖ left ‖ right)``
(RFC 6962 §2.1); the distinct prefixes stop a leaf from being passed off as a
node. The empty tree's root is ``SHA-256("")``.

The producer side works on leaf hashes, not entries. ``inclusion_path`` and
``consistency_path`` follow the RFC's recursive definitions and ask a ``Subtrees``
source only for the roots of perfect subtrees, O(log² n) of them at most: the log
keeps those roots in tiles (``vir.store.tiles``) and never reads the whole tree for a
proof. ``root``, ``inclusion_proof`` and ``consistency_proof`` do the same over a
list of leaf hashes. The verifier side (``verify_inclusion``, ``verify_consistency``)
follows RFC 9162 §2.1.3.2 and §2.1.4.2; it checks sizes and hash lengths before
hashing anything and answers ``False`` to anything malformed rather than
raising, because its input comes from whoever hands us a proof.

``CompactRange`` keeps a growing tree's root in O(log n) memory for the log
itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

HASH_SIZE = 32

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 ‖ entry)``: the hash of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``: the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    """Hash a level's nodes pairwise; an unpaired last node moves up unchanged.

    Promoting the odd node (not duplicating it, as Bitcoin does) keeps the
    invariant that node ``j`` on level ``h`` is the RFC 6962 hash of leaves
    ``[j·2^h, min((j+1)·2^h, n))``. That is the same tree the RFC builds by
    splitting at the largest power of two, built bottom-up without recursion.
    """
    # This comprehension is the whole cost of root() on a large log: locals
    # and one concatenation per node, no Python function call per node.
    sha256, prefix = hashlib.sha256, _NODE_PREFIX
    # zip stops before an unpaired last node on purpose; it is handled below.
    pairs = zip(level[0::2], level[1::2], strict=False)
    parents = [sha256(prefix + a + b).digest() for a, b in pairs]
    if len(level) & 1:
        parents.append(level[-1])
    return parents


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash (RFC 6962 §2.1) of a list of leaf hashes."""
    if len(leaf_hashes) == 0:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


class Subtrees(Protocol):
    """Where a proof's hashes come from: the root of any perfect subtree of the tree."""

    def perfect(self, height: int, index: int) -> bytes:
        """The root of the ``2^height`` leaves from ``index·2^height`` on (all present)."""
        ...


class _Leaves:
    """Subtrees of a list of leaf hashes, each hashed from its leaves when asked for."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaves = leaf_hashes

    def perfect(self, height: int, index: int) -> bytes:
        return root(self._leaves[index << height : (index + 1) << height])


def _split(width: int) -> int:
    """The largest power of two below ``width`` (> 1): where RFC 6962 splits a tree."""
    return 1 << ((width - 1).bit_length() - 1)


def range_hash(tree: Subtrees, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range the RFC's splits produce: ``start`` is a multiple of
    the largest power of two not above the width. Its perfect subtrees, left (largest) to
    right, folded from the right: O(log n) subtree roots."""
    width = end - start
    if width <= 0:
        return EMPTY_ROOT
    if start % (1 << (width.bit_length() - 1)):
        raise ValueError(f"[{start}, {end}) is not a subtree of an RFC 6962 tree")
    roots: list[bytes] = []
    at = start
    for height in reversed(range(width.bit_length())):
        if width >> height & 1:
            roots.append(tree.perfect(height, at >> height))
            at += 1 << height
    result = roots[-1]
    for left in reversed(roots[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_path(tree: Subtrees, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) (RFC 6962 §2.1.1), from the leaf upward, from ``tree``'s
    subtree roots: O(log² n) of them at most, never the whole tree."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        half = _split(end - start)
        if index < start + half:
            path.append(range_hash(tree, start + half, end))
            end = start + half
        else:
            path.append(range_hash(tree, start, start + half))
            start += half
    path.reverse()
    return path


def consistency_path(tree: Subtrees, old_size: int, size: int) -> list[bytes]:
    """PROOF(old_size, D[size]) (RFC 6962 §2.1.2) from ``tree``'s subtree roots; empty
    when the sizes are equal. Raises ``ValueError`` unless ``0 < old_size <= size``."""
    if not 0 < old_size <= size:
        raise ValueError(f"old size {old_size} is outside 1..{size}")
    proof: list[bytes] = []
    start, end, old, whole = 0, size, old_size, True
    while old != end - start:
        half = _split(end - start)
        if old <= half:
            proof.append(range_hash(tree, start + half, end))
            end = start + half
        else:
            proof.append(range_hash(tree, start, start + half))
            start, old, whole = start + half, old - half, False
    if not whole:
        # SUBPROOF(m, D[m], false): the old tree's last subtree itself (the verifier holds
        # the whole old tree's root already when that subtree is all of it).
        proof.append(range_hash(tree, start, end))
    proof.reverse()
    return proof


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path PATH(index, D[n]) (RFC 6962 §2.1.1), ordered from the leaf upward.

    Raises ``ValueError`` unless ``0 <= index < len(leaf_hashes)``.
    """
    return inclusion_path(_Leaves(leaf_hashes), index, len(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The consistency proof PROOF(old_size, D[n]) (RFC 6962 §2.1.2, RFC 9162 §2.1.4.1).

    ``old_size == n`` gives an empty proof. Raises ``ValueError`` unless
    ``0 < old_size <= len(leaf_hashes)``: a proof from the empty tree proves
    nothing, and a proof to the past does not exist.
    """
    return consistency_path(_Leaves(leaf_hashes), old_size, len(leaf_hashes))


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    # bool is an int subclass; a True tree size is a caller bug, not size 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _inclusion_path_length(index: int, size: int) -> int:
    """How many hashes the audit path of ``index`` in a tree of ``size`` holds.

    Below the level where the paths to ``index`` and to the last leaf part
    (``(index ^ (size - 1)).bit_length()`` levels) every level has a sibling.
    Above it the node lies on the tree's right border and has a sibling only
    where it is a right child, i.e. where ``index`` has a one bit.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree ``(size, root_hash)``.

    RFC 9162 §2.1.3.2. Never raises: malformed input is ``False``.
    """
    if not (_is_count(index) and _is_count(size)) or not 0 <= index < size:
        return False
    if not (_is_hash(leaf) and _is_hash(root_hash)):
        return False
    if not isinstance(proof, Sequence) or len(proof) != _inclusion_path_length(index, size):
        return False
    if not all(_is_hash(p) for p in proof):
        return False

    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        # Unreachable after the length check above; kept because it is the
        # RFC's own guard against a path longer than the tree is tall.
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Climb past the levels where this node is an unpaired right-border
            # node: those levels have no element in the path.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes the proof between two sizes holds, for 0 < old_size < new_size."""
    # The audit path of the old tree's last leaf in the new tree, less the
    # lowest ``shift`` levels (inside the old tree's rightmost perfect subtree),
    # plus that subtree's own hash unless it is the whole old tree.
    shift = (old_size & -old_size).bit_length() - 1
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    seed = 0 if old_size >> shift == 1 else 1
    return seed + (inner - shift) + border


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 §2.1.4.2. ``old_size == 0`` is not provable here and gives
    ``False``; equal sizes need an empty proof and equal roots. Never raises:
    malformed input is ``False``.
    """
    if not (_is_count(old_size) and _is_count(new_size)) or not 0 < old_size <= new_size:
        return False
    if not (_is_hash(old_root) and _is_hash(new_root)):
        return False
    if not isinstance(proof, Sequence) or not all(_is_hash(c) for c in proof):
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if len(proof) != _consistency_proof_length(old_size, new_size):
        return False

    path = list(proof)
    # When the old tree is a perfect tree, its root is the seed the proof
    # starts from, so the producer leaves it out and the verifier puts it back.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)

    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # A node to the right of the old tree: it changes the new root only.
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class CompactRange:
    """A growing tree's root in O(log n) memory: the roots of its perfect subtrees.

    A tree of ``size`` leaves splits, left to right, into perfect subtrees of
    the sizes of ``size``'s one bits, largest first. Appending a leaf merges
    equal-sized subtrees like a binary counter carries; the root folds them
    from the right, which is the RFC's split at the largest power of two.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        """Start empty, or resume from a stored ``(size, nodes)`` pair."""
        if size < 0 or len(nodes) != size.bit_count():
            raise ValueError(f"a tree of size {size} has {size.bit_count()} subtree roots")
        if not all(_is_hash(n) for n in nodes):
            raise ValueError("every subtree root must be a 32-byte hash")
        self._size = size
        self._nodes = list(nodes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The perfect subtree roots, left (largest) to right; store these to resume."""
        return tuple(self._nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash at the right end of the tree."""
        if not _is_hash(leaf):
            raise ValueError("a leaf hash must be 32 bytes")
        nodes = self._nodes
        nodes.append(leaf)
        # Each trailing one bit of the old size is a subtree as large as the
        # one just completed; merge them until the sizes differ.
        carry = self._size
        while carry & 1:
            right = nodes.pop()
            nodes[-1] = node_hash(nodes[-1], right)
            carry >>= 1
        self._size += 1

    def root(self) -> bytes:
        """The Merkle Tree Hash of every leaf appended so far."""
        if not self._nodes:
            return EMPTY_ROOT
        result = self._nodes[-1]
        for left in reversed(self._nodes[:-1]):
            result = node_hash(left, result)
        return result
