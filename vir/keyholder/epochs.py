"""The key holder's epochs: which key evaluates, and rotation (k' = δ·k).

The keys are files in the holder's keys directory (wrapped by an HSM when one is
configured); which epoch is served is recorded in the holder's database
(``key_epochs``), so that every instance on it serves the same one and a rotation
made by ``vir keyholder`` reaches running instances within a second.

States: ``incoming`` (made by ``rotate``, not served yet: the index must first take
the rekey token), ``current`` (served), ``previous`` (replaced by ``activate``; its
key is kept for the grace period), ``retired`` (its key destroyed).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto import oprf
from vir.crypto.keys import (
    OprfKey,
    OprfKeyring,
    destroy_oprf_key,
    load_oprf_keyring,
    write_oprf_key,
)
from vir.domain.errors import ConfigurationError, Conflict, NotFound
from vir.store import audit_log
from vir.store.db import Database
from vir.store.epochs import EpochState
from vir.store.tables import KeyEpochRow


@dataclass(frozen=True)
class EpochInfo:
    """An epoch as ``vir keyholder epochs`` lists it; ``retire_after``: a previous
    epoch's key is destroyed after it, a retired one's was destroyed then."""

    epoch: int
    state: EpochState
    created_at: dt.datetime
    activated_at: dt.datetime | None
    retire_after: dt.datetime | None


def listing(db: Database) -> list[EpochInfo]:
    with db.read() as session:
        rows = session.scalars(select(KeyEpochRow).order_by(KeyEpochRow.epoch)).all()
        return [
            EpochInfo(r.epoch, EpochState(r.state), r.created_at, r.activated_at, r.retire_after)
            for r in rows
        ]


def restore_listing(session: Session, infos: Sequence[EpochInfo]) -> None:
    """Make this holder's epochs exactly ``infos``: a repaired holder takes its helpers'
    (``vir.keyholder.repair``), so that it serves the epoch they serve."""
    session.execute(delete(KeyEpochRow))
    session.add_all(
        KeyEpochRow(
            epoch=e.epoch,
            state=e.state.value,
            created_at=e.created_at,
            activated_at=e.activated_at,
            retire_after=e.retire_after,
        )
        for e in infos
    )


def _current_row(session: Session) -> KeyEpochRow:
    row = session.scalars(
        select(KeyEpochRow).where(KeyEpochRow.state == EpochState.CURRENT.value)
    ).one_or_none()
    if row is None:
        raise ConfigurationError("the key holder's database has no current key epoch")
    return row


class KeyStore:
    """The keys this holder loaded, and the epoch its database says to serve."""

    def __init__(
        self,
        keys_dir: Path,
        db: Database,
        load: Callable[[Path], OprfKeyring] = load_oprf_keyring,
        ttl: float = 1.0,
    ) -> None:
        self._keys_dir = keys_dir
        self._db = db
        self._load = load
        self._ttl = ttl
        self._lock = threading.Lock()
        self._keyring = load(keys_dir)
        self._served: tuple[float, OprfKey] | None = None
        self.current()  # refuse to start when the served epoch's key is not here

    def __repr__(self) -> str:
        return f"KeyStore(epochs={[k.epoch for k in self._keyring.keys]})"

    def current(self) -> OprfKey:
        """The key of the served epoch (the database is asked at most once per ttl)."""
        now = time.monotonic()
        with self._lock:
            if self._served is not None and now - self._served[0] < self._ttl:
                return self._served[1]
        with self._db.read() as session:
            epoch = _current_row(session).epoch
        with self._lock:
            key = self._keyring.get(epoch)
            if key is None:  # rotated and activated since this instance loaded its keys
                self._keyring = self._load(self._keys_dir)
                key = self._keyring.get(epoch)
            if key is None:
                raise ConfigurationError(
                    f"the key holder serves epoch {epoch}, but {self._keys_dir} has no key for it"
                )
            self._served = (now, key)
            return key


def _audit(session: Session, action: Action, epoch: int, now: dt.datetime) -> None:
    audit_log.append(
        session,
        audit_log.new_event(action, Outcome.SUCCESS, now, actor="admin", objects={"epoch": epoch}),
    )


@dataclass(frozen=True)
class Rotation:
    from_epoch: int
    to_epoch: int
    delta: bytes  # δ, with k' = δ·k; for the index's rekey token (it reveals neither key)

    def __repr__(self) -> str:
        return f"Rotation({self.from_epoch} -> {self.to_epoch})"


def rotate(
    db: Database,
    keys_dir: Path,
    now: dt.datetime,
    *,
    delta: bytes | None = None,
    write: Callable[..., Path] = write_oprf_key,
    load: Callable[[Path], OprfKeyring] = load_oprf_keyring,
) -> Rotation:
    """Make epoch e+1 with k' = δ·k (a share: k_i' = δ·k_i) as ``incoming``.

    ``delta``: given for the other holders of a threshold deployment, which must all
    multiply their share by the same δ (from the first holder's rekey token); None: a
    fresh random one. Refuses while another rotation is incoming (its token goes to
    the index, then it is activated).
    """
    if delta is not None and (not oprf.is_canonical_scalar(delta) or delta == bytes(32)):
        raise ConfigurationError("the rekey factor is not a canonical non-zero scalar")
    factor = delta if delta is not None else oprf.random_scalar()
    with db.write(exclusive=True) as session:
        incoming = session.scalars(
            select(KeyEpochRow).where(KeyEpochRow.state == EpochState.INCOMING.value)
        ).first()
        if incoming is not None:
            # Its token may not have reached the index yet: activating first would make
            # pseudonyms the index refuses. The order is rotate, rekey, activate.
            raise Conflict(
                f"epoch {incoming.epoch} is already incoming: give its rekey token to the "
                "index (vir keys rekey --token FILE), then run vir keyholder activate "
                "(its token lost or never written: vir keyholder token --out FILE)"
            )
        current = _current_row(session)
        key = load(keys_dir).get(current.epoch)
        if key is None:
            raise ConfigurationError(f"{keys_dir} has no key for the current epoch {current.epoch}")
        secret = oprf.scalar_product(factor, key.secret)
        new_epoch = current.epoch + 1
        # A key file without its row is a rotation that failed before it committed: it
        # was never served, and is made again.
        destroy_oprf_key(keys_dir, new_epoch)
        write(keys_dir, new_epoch, secret, share_index=key.share_index)
        session.add(KeyEpochRow(epoch=new_epoch, state=EpochState.INCOMING.value, created_at=now))
        _audit(session, Action.KEY_EPOCH_CREATED, new_epoch, now)
    return Rotation(current.epoch, new_epoch, factor)


def incoming(
    db: Database, keys_dir: Path, *, load: Callable[[Path], OprfKeyring] = load_oprf_keyring
) -> Rotation:
    """The rotation under way (the incoming epoch and the current one), with its δ as
    the two keys give it (δ = k'·k⁻¹; for a share k_i'·k_i⁻¹, the same δ): so that its
    rekey token can be written again when the first was lost, or never written."""
    with db.read() as session:
        row = session.scalars(
            select(KeyEpochRow).where(KeyEpochRow.state == EpochState.INCOMING.value)
        ).first()
        if row is None:
            raise NotFound("no incoming key epoch; run: vir keyholder rotate")
        current = _current_row(session)
    keyring = load(keys_dir)
    old, new = keyring.get(current.epoch), keyring.get(row.epoch)
    if old is None or new is None:
        missing = current.epoch if old is None else row.epoch
        raise ConfigurationError(f"{keys_dir} has no key for epoch {missing}")
    factor = oprf.scalar_product(new.secret, oprf.scalar_invert(old.secret))
    return Rotation(current.epoch, row.epoch, factor)


def activate(db: Database, now: dt.datetime, grace: dt.timedelta) -> int:
    """Serve the incoming epoch; the one it replaces is kept until ``now + grace``."""
    with db.write(exclusive=True) as session:
        incoming = session.scalars(
            select(KeyEpochRow).where(KeyEpochRow.state == EpochState.INCOMING.value)
        ).one_or_none()
        if incoming is None:
            raise NotFound("no incoming key epoch; run: vir keyholder rotate")
        current = _current_row(session)
        current.state, current.retire_after = EpochState.PREVIOUS.value, now + grace
        session.flush()
        incoming.state, incoming.activated_at = EpochState.CURRENT.value, now
        _audit(session, Action.KEY_EPOCH_ACTIVATED, incoming.epoch, now)
        return incoming.epoch


def retire(db: Database, keys_dir: Path, now: dt.datetime, *, force: bool = False) -> list[int]:
    """Destroy the keys of replaced epochs past their grace period (``force``: now)."""
    retired = []
    with db.write(exclusive=True) as session:
        rows = session.scalars(
            select(KeyEpochRow).where(KeyEpochRow.state == EpochState.PREVIOUS.value)
        ).all()
        for row in rows:
            if force or (row.retire_after is not None and row.retire_after <= now):
                destroy_oprf_key(keys_dir, row.epoch)
                # From now on the moment it was retired (``force``: maybe before its
                # grace ended), which the listing shows.
                row.state, row.retire_after = EpochState.RETIRED.value, now
                _audit(session, Action.KEY_EPOCH_RETIRED, row.epoch, now)
                retired.append(row.epoch)
    return retired
