"""Merkle tiles: the audit log's tree hashes, kept so that a proof reads O(log n) of them.

The layout is C2SP tlog-tiles': tile (level L, index i) holds the hashes of the nodes
at height 8·L with indices 256·i, 256·i + 1, ..., concatenated, at most 256 of them.
Level 0 holds leaf hashes, SHA-256(0x00 ‖ body). A tile holds only complete nodes (every
leaf under them is tiled), so a stored hash never changes: a tile grows until it is full
and is final then. Level L + 1 holds the roots of level L's full tiles. The tiles cover
the first ``covered`` leaves, as many as level 0 holds hashes.

``extend`` grows the tiles from the entries in batches, each batch in a short write
transaction of its own (memory stays flat, writers are held up for one batch at most);
signing a checkpoint calls it, so a signed tree is covered. ``StoredTree`` answers a
proof's subtree roots: a perfect subtree of height h is the root of at most 128 nodes
of one tile at height 8·⌊h/8⌋.

Tiles are derived data. A checkpoint's check still walks the entries themselves, and
``vir.services.transparency`` verifies each proof against the signed root before it
answers it: a tile edited in the database gives an error, never a false proof.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from vir.audit import merkle
from vir.domain.errors import LogInconsistent
from vir.domain.progress import Progress
from vir.store.audit_log import as_bytes
from vir.store.db import Database
from vir.store.tables import AuditEntryRow, AuditTileRow

HEIGHT = 8
WIDTH = 1 << HEIGHT
_SIZE = merkle.HASH_SIZE
# Leaves hashed and tiled per write transaction: a few MiB of entry bodies read, 256 KiB
# of hashes written.
BATCH = 32 * WIDTH

_T = AuditTileRow.__table__.c


def covered(session: Session) -> int:
    """How many leaves the tiles cover (level 0's hashes)."""
    row = session.execute(
        select(_T.idx, func.length(_T.hashes)).where(_T.level == 0).order_by(_T.idx.desc()).limit(1)
    ).first()
    return 0 if row is None else int(row[0]) * WIDTH + int(row[1]) // _SIZE


def extend(db: Database, size: int, progress: Progress | None = None) -> int:
    """Tile the integrated entries up to ``size``; answers the leaves covered then.

    Resumable and safe beside another process extending: each batch checks, under the
    write lock, that the tiles still end where it started reading. ``progress`` is told
    (leaves tiled, leaves to tile) after each batch: after an upgrade, the whole log."""
    first: int | None = None
    while True:
        with db.read() as session:
            start = covered(session)
            if first is None:
                first = min(start, size)
            if progress is not None:
                progress(min(start, size) - first, size - first)
            if start >= size:
                return start
            end = min(size, start + BATCH)
            bodies = session.scalars(
                select(AuditEntryRow.body)
                .where(AuditEntryRow.seq > start, AuditEntryRow.seq <= end)
                .order_by(AuditEntryRow.seq)
            )
            leaves = [merkle.leaf_hash(as_bytes(body)) for body in bodies]
        if len(leaves) != end - start:
            raise LogInconsistent(
                f"audit entries {start + 1}..{end} are not all stored; cannot build the tree"
            )
        with db.write(exclusive=True) as session:
            if covered(session) == start:  # else tiled by another process meanwhile
                _grow(session, 0, start, leaves)


def _grow(session: Session, level: int, first: int, nodes: list[bytes]) -> None:
    """Append ``nodes`` (height 8·level, indices ``first``...) to the level's tiles, and
    the roots of the tiles they fill to the level above."""
    filled: list[bytes] = []
    done = 0
    while done < len(nodes):
        idx, offset = divmod(first + done, WIDTH)
        part = b"".join(nodes[done : done + WIDTH - offset])
        if offset:
            stored = session.scalar(
                select(AuditTileRow.hashes).where(_T.level == level, _T.idx == idx)
            )
            if stored is None or len(stored) != offset * _SIZE:
                raise LogInconsistent(f"Merkle tile {level}/{idx} is not as it was written")
            blob = as_bytes(stored) + part
            session.execute(
                update(AuditTileRow).where(_T.level == level, _T.idx == idx).values(hashes=blob)
            )
        else:
            blob = part
            session.execute(insert(AuditTileRow).values(level=level, idx=idx, hashes=blob))
        if len(blob) == WIDTH * _SIZE:
            filled.append(merkle.root(_hashes(blob)))
        done += len(part) // _SIZE
    if filled:
        # The full tiles of a level come first, so the level above has one node per full
        # tile before ``first``'s: those filled now continue it.
        _grow(session, level + 1, first // WIDTH, filled)


def _hashes(blob: bytes) -> list[bytes]:
    return [blob[i : i + _SIZE] for i in range(0, len(blob), _SIZE)]


class StoredTree:
    """The perfect subtree roots (``merkle.Subtrees``) of the first ``size`` leaves, read
    in ``session``: from the tiles, and from the entries for leaves past them. Keeps the
    tiles it read."""

    def __init__(self, session: Session, size: int) -> None:
        self._session = session
        self._size = size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def perfect(self, height: int, index: int) -> bytes:
        if height < 0 or index < 0 or (index + 1) << height > self._size:
            raise ValueError(f"no perfect subtree {height}/{index} in a tree of {self._size}")
        level, rest = divmod(height, HEIGHT)
        return merkle.root(self._nodes(level, index << rest, 1 << rest))

    def leaf(self, index: int) -> bytes:
        """The leaf hash of entry ``index + 1``, from its body (not from a tile)."""
        return self._leaves(index, 1)[0]

    def _nodes(self, level: int, first: int, count: int) -> list[bytes]:
        """The nodes at height 8·level with indices ``first``..``first + count - 1``, all in
        one tile: those it holds, and the rest computed from the level below."""
        idx, offset = divmod(first, WIDTH)
        found = self._tile(level, idx)[offset : offset + count]
        missing = range(first + len(found), first + count)
        if not missing:
            return found
        if level == 0:
            return found + self._leaves(missing.start, len(missing))
        return found + [merkle.root(self._nodes(level - 1, j * WIDTH, WIDTH)) for j in missing]

    def _tile(self, level: int, idx: int) -> list[bytes]:
        key = (level, idx)
        if key not in self._tiles:
            blob = self._session.scalar(
                select(AuditTileRow.hashes).where(_T.level == level, _T.idx == idx)
            )
            self._tiles[key] = _hashes(as_bytes(blob)) if blob is not None else []
        return self._tiles[key]

    def _leaves(self, first: int, count: int) -> list[bytes]:
        bodies = self._session.scalars(
            select(AuditEntryRow.body)
            .where(AuditEntryRow.seq > first, AuditEntryRow.seq <= first + count)
            .order_by(AuditEntryRow.seq)
        )
        leaves = [merkle.leaf_hash(as_bytes(body)) for body in bodies]
        if len(leaves) != count:
            raise LogInconsistent(f"audit entries {first + 1}..{first + count} are not all stored")
        return leaves


class Check:
    """The stored tiles against the entries, streaming: ``add`` each entry's leaf hash in
    sequence order, then ``problem()``. Keeps at most 256 hashes a level (O(log n)
    memory); reads each stored tile once, as its nodes are complete.

    The service may go on integrating and tiling meanwhile, and PostgreSQL reads each
    statement at its own moment: a tile may be read holding more or fewer nodes than
    the entries streamed so far give. So a tile is compared as far as both go, may not
    hold more than 256 nodes, and may not hold more than the entries stored when the
    check ends give (read again then)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._levels: list[list[bytes]] = []  # per level: the nodes of its open tile
        self._full: list[int] = []  # per level: tiles completed so far
        self._longest: dict[tuple[int, int], int] = {}  # tiles read longer than walked
        self._first_wrong: str | None = None
        self.covered = 0

    def add(self, leaf: bytes) -> None:
        self._push(0, leaf)

    def _push(self, level: int, node: bytes) -> None:
        if level == len(self._levels):
            self._levels.append([])
            self._full.append(0)
        nodes = self._levels[level]
        nodes.append(node)
        if len(nodes) == WIDTH:
            self._compare(level, self._full[level], nodes)
            self._full[level] += 1
            self._levels[level] = []
            self._push(level + 1, merkle.root(nodes))

    def _compare(self, level: int, idx: int, nodes: list[bytes]) -> None:
        if self._first_wrong is not None:
            return
        blob = self._session.scalar(
            select(AuditTileRow.hashes).where(_T.level == level, _T.idx == idx)
        )
        stored = _hashes(as_bytes(blob)) if blob is not None else []
        both = min(len(stored), len(nodes))
        if len(stored) > WIDTH or any(len(h) != _SIZE for h in stored):
            self._first_wrong = f"Merkle tile {level}/{idx} is not a tile"
        elif stored[:both] != nodes[:both]:
            self._first_wrong = f"Merkle tile {level}/{idx} differs from the entries"
        elif len(stored) > len(nodes):
            self._longest[(level, idx)] = len(stored)

    def problem(self, entries_now: int) -> str | None:
        """The first tile that differs from the entries, or that holds nodes the
        ``entries_now`` stored entries (counted when the walk ended) do not make; None
        when the tiles agree with the entries."""
        for level, nodes in enumerate(self._levels):
            if nodes:
                self._compare(level, self._full[level], nodes)
        if self._first_wrong is not None:
            return self._first_wrong
        self.covered = covered(self._session)
        if self.covered > entries_now:
            return f"the Merkle tiles cover {self.covered} entries, the log holds {entries_now}"
        for (level, idx), length in sorted(self._longest.items()):
            if idx * WIDTH + length > entries_now >> (HEIGHT * level):
                return f"Merkle tile {level}/{idx} holds more than the entries make"
        return None
