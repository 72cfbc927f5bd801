"""Key epochs as the index knows them, and pseudonyms converted between them.

The index holds no OPRF key; it knows which epoch its stored pseudonyms are in
(``current``) from its own table (``key_epochs``, ``vir.store.epochs``). A rotation at
the key holder (k' = δ·k) reaches the index as a signed rekey token carrying δ
(``vir keys rekey``, ``vir.services.rekey``): from then on pseudonyms of both epochs
are accepted, and one of another accepted epoch is converted on arrival (δ·N up, δ⁻¹·N
down) to the epoch the stored ones are in at that moment, so that it matches them.

*At that moment* matters: a rekey ends by switching the stored pseudonyms and the
current epoch in one transaction, so a conversion decided before a write transaction
began may be stale inside it. Whatever stores or looks up pseudonyms therefore
converts inside its own write transaction, with ``in_transaction(session)``;
``EpochBook`` (cached, read outside any transaction) is for answering early that an
epoch is not accepted at all, and for conversions where a stale answer costs nothing.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from sqlalchemy.orm import Session

from vir.crypto import oprf
from vir.crypto.rekey import scalar_inverse, scalar_product
from vir.domain.intake import SignalRequest, epoch_refused
from vir.store import epochs as table
from vir.store.db import Database
from vir.store.epochs import EpochRecord, EpochState

__all__ = [
    "Arriving",
    "EpochBook",
    "EpochState",
    "Epochs",
    "in_transaction",
    "snapshot",
    "stored_in",
]


@dataclass(frozen=True)
class Epochs:
    """A snapshot of the table: the stored epoch and how each accepted one converts."""

    current: int
    # epoch -> the scalar that turns its pseudonyms into the current epoch's (None: as is)
    factors: Mapping[int, bytes | None]
    incoming: int | None = None
    retired: frozenset[int] = frozenset()  # no longer accepted: said so when refused

    def __repr__(self) -> str:  # the factors are δs: never shown
        return f"Epochs(current={self.current}, accepted={sorted(self.factors)})"

    def accepts(self, epoch: int) -> bool:
        return epoch in self.factors

    def convert(self, epoch: int, elements: Sequence[bytes]) -> list[bytes]:
        """``elements`` of ``epoch`` as pseudonyms of the current epoch; InputError
        naming ``epoch`` when this epoch is not accepted. Elements must be valid."""
        if epoch not in self.factors:
            raise epoch_refused(epoch, self.factors, self.retired)
        factor = self.factors[epoch]
        if factor is None:
            return list(elements)
        return [oprf.scalar_mult(factor, element) for element in elements]

    def convert_request(self, request: SignalRequest) -> SignalRequest:
        """The request with its pseudonyms in the current epoch, and that epoch."""
        address = [request.address] if request.address is not None else []
        person, *rest = self.convert(request.epoch, [request.person, *request.parents, *address])
        parents = tuple(rest[: len(request.parents)])
        converted = rest[len(request.parents)] if address else None
        return replace(
            request, epoch=self.current, person=person, parents=parents, address=converted
        )


def snapshot(records: Sequence[EpochRecord]) -> Epochs:
    """The conversions the table allows: the current epoch as is; the incoming one down
    by δ⁻¹; every previous one up by the product of the δs after it."""
    key = tuple((r.epoch, r.state, r.delta) for r in records)
    return _snapshot(key)


@functools.lru_cache(maxsize=16)
def _snapshot(key: tuple[tuple[int, EpochState, bytes | None], ...]) -> Epochs:
    """Cached per table content: a write transaction reads the table every time, and the
    scalar arithmetic needs doing only when it changed."""
    states = {epoch: state for epoch, state, _ in key}
    deltas = {epoch: delta for epoch, _, delta in key}
    (current,) = [epoch for epoch, state in states.items() if state == EpochState.CURRENT]
    factors: dict[int, bytes | None] = {current: None}
    incoming = next((e for e, s in states.items() if s == EpochState.INCOMING), None)
    incoming_delta = deltas.get(incoming) if incoming is not None else None
    if incoming is not None and incoming_delta is not None:
        factors[incoming] = scalar_inverse(incoming_delta)  # δ⁻¹·N' = N
    factor: bytes | None = None
    epoch = current
    # Walk down from the current epoch: epoch e - 1 converts by δₑ·(the factor of e).
    while states.get(epoch - 1) == EpochState.PREVIOUS:
        delta = deltas.get(epoch)
        if delta is None:  # erased: nothing older can be converted
            break
        factor = delta if factor is None else scalar_product(factor, delta)
        factors[epoch - 1] = factor
        epoch -= 1
    retired = frozenset(e for e, s in states.items() if s == EpochState.RETIRED)
    return Epochs(current, MappingProxyType(factors), incoming, retired)


def in_transaction(session: Session) -> Epochs:
    """The epochs as the transaction on ``session`` sees them. Inside a write
    transaction no rekey can switch until it ends: a conversion made with this answer
    stays right for everything the transaction stores and looks up."""
    return snapshot(table.load(session))


class EpochBook:
    """The index's epochs, read from its database at most once per ``ttl`` seconds (an
    epoch changes rarely, and every instance must see a change soon after it).

    Read outside any transaction, so possibly a moment behind: see the module
    docstring for what may rely on it."""

    def __init__(self, db: Database, ttl: float = 1.0) -> None:
        self._db = db
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, Epochs] | None = None

    def __repr__(self) -> str:
        return "EpochBook()"

    def epochs(self) -> Epochs:
        now = time.monotonic()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < self._ttl:
                return self._cached[1]
        with self._db.read() as session:
            found = in_transaction(session)
        with self._lock:
            self._cached = (now, found)
        return found

    def forget(self) -> None:
        """Read the table again on the next call (after a change made in this process)."""
        with self._lock:
            self._cached = None

    def for_epoch(self, epoch: int) -> Epochs:
        """The epochs, read again when the cached ones do not accept ``epoch``: an epoch
        that became accepted a moment ago is not refused for a stale cache."""
        found = self.epochs()
        if not found.accepts(epoch):
            self.forget()
            found = self.epochs()
        return found

    def current(self) -> int:
        return self.epochs().current

    def convert(self, epoch: int, elements: Sequence[bytes]) -> list[bytes]:
        return self.for_epoch(epoch).convert(epoch, elements)


@dataclass(frozen=True)
class Arriving:
    """A pseudonym as a caller sent it, with the epoch it was made under: converted to
    the stored epoch by ``stored_in`` inside the transaction that looks it up or stores
    it (a lookup converted before it could miss what a rekey switched meanwhile)."""

    epoch: int
    element: bytes

    def __repr__(self) -> str:  # never show a pseudonym
        return f"Arriving(epoch={self.epoch})"


def stored_in(session: Session, pseudonym: bytes | Arriving) -> bytes:
    """``pseudonym`` in the epoch of the stored ones as ``session``'s transaction sees
    them; bytes are taken to be in that epoch already (operators' tools, tests)."""
    if isinstance(pseudonym, bytes):
        return pseudonym
    (stored,) = in_transaction(session).convert(pseudonym.epoch, [pseudonym.element])
    return stored
