"""Key rotation in tests: a local OPRF key and δ, signed rekey tokens, and a store
filled quickly with rows in every pseudonym column.

Pseudonyms are computed as the key holder and a client would: ``N = k·H(x)`` with
``H`` the OPRF's hash_to_group, and ``k' = δ·k`` for the next epoch, so a test can
check a rekeyed database against a direct computation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Table, insert, select, text
from support.instore import ORGS, T0

from vir.audit.checkpoint import format_verifier_key
from vir.crypto import oprf
from vir.crypto.rekey_token import make_token
from vir.store.db import Database
from vir.store.rekey import PLAN, row_key
from vir.store.tables import (
    ArchivedSignalRow,
    ExcludedAddressRow,
    MatchRow,
    SignalParentRow,
    SignalRow,
)

# The key holder's token-signing key, and its verifier key as the index is given it.
KEYHOLDER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYHOLDER_NAME = "keyholder.test"
VERIFIER_KEY = format_verifier_key(
    KEYHOLDER_NAME, KEYHOLDER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
)
# Another key holder's key: its tokens must be refused.
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))

# The OPRF key of epoch 1 and the rekey factor δ to epoch 2 (k₂ = δ·k₁), and δ₃ after.
K1 = oprf.scalar_from_int(0x5EED_0001 * 2**200 + 12345)
DELTA = oprf.scalar_from_int(0xDE17A * 2**180 + 987654321)
DELTA3 = oprf.scalar_from_int(0xDE17A3 * 2**190 + 55555)


def key(epoch: int) -> bytes:
    """k of ``epoch`` (1, 2 or 3): δ₃·δ·k₁ for 3."""
    k = K1
    if epoch >= 2:
        k = oprf.scalar_from_int(int.from_bytes(DELTA, "little") * int.from_bytes(k, "little"))
    if epoch >= 3:
        k = oprf.scalar_from_int(int.from_bytes(DELTA3, "little") * int.from_bytes(k, "little"))
    return k


def pseudonym(name: str, epoch: int = 1) -> bytes:
    """The pseudonym a client obtains for ``name`` under ``epoch``'s key."""
    return oprf.scalar_mult(key(epoch), oprf.hash_to_group(name.encode()))


def times(delta: bytes, element: bytes) -> bytes:
    return oprf.scalar_mult(delta, element)


def token(
    from_epoch: int = 1,
    delta: bytes = DELTA,
    *,
    signer: Ed25519PrivateKey = KEYHOLDER,
    created_at: dt.datetime = T0,
) -> bytes:
    """A rekey token from ``from_epoch`` to the next, signed by ``signer``."""
    verifier = format_verifier_key(
        KEYHOLDER_NAME, signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return make_token(signer.sign, verifier, from_epoch, from_epoch + 1, delta, created_at)


# --- a store with rows in every pseudonym column ---------------------------------------


def _id(kind: str, i: int) -> str:
    return str(uuid.UUID(int=(hash_of(kind) << 64) | i))


def hash_of(kind: str) -> int:
    return int.from_bytes(kind.encode().ljust(8, b".")[:8], "big")


def seed(db: Database, signals: int, *, epoch: int = 1, chunk: int = 500) -> None:
    """``signals`` active signals (a person, one parent, an address shared by two), a
    tenth as many archived signals and excluded addresses, a match per 20 signals on a
    person and an ended one: deterministic, so two stores seeded alike are equal."""
    tables = {
        "signals": SignalRow.__table__,
        "parents": SignalParentRow.__table__,
        "archived": ArchivedSignalRow.__table__,
        "excluded": ExcludedAddressRow.__table__,
        "matches": MatchRow.__table__,
    }
    for start in range(0, signals, chunk):
        rows = [_signal(i, epoch) for i in range(start, min(signals, start + chunk))]
        with db.write() as session:
            session.execute(insert(_t(tables["signals"])), [r for r, _ in rows])
            session.execute(insert(_t(tables["parents"])), [p for _, p in rows])
    extra = max(1, signals // 10)
    with db.write() as session:
        session.execute(insert(_t(tables["archived"])), [_archived(i, epoch) for i in range(extra)])
        session.execute(insert(_t(tables["excluded"])), [_excluded(i, epoch) for i in range(extra)])
        session.execute(insert(_t(tables["matches"])), list(_matches(signals, epoch)))


def _t(table: Any) -> Table:
    assert isinstance(table, Table)
    return table


def _signal(i: int, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
    signal_id = _id("signal", i)
    row = {
        "id": signal_id,
        "oin": str(ORGS[i % len(ORGS)].oin),
        "local_ref": f"seed-{i}",
        "epoch": epoch,
        "person": pseudonym(f"person:{i}", epoch),
        "address": pseudonym(f"address:{i // 2}", epoch) if i % 7 else None,
        "remove_on": dt.date(2028, 1, 1),
        "professional_name": "Anna de Vries",
        "professional_email": None,
        "professional_phone": None,
        "professional_function": None,
        "content_hash": bytes(32),
        "created_at": T0,
        "archive_until": None,
        "informed_on": None,
        "informed_who": None,
    }
    return row, {"signal_id": signal_id, "parent": pseudonym(f"parent:{i}", epoch)}


def _archived(i: int, epoch: int) -> dict[str, Any]:
    return {
        "id": _id("archived", i),
        "oin": str(ORGS[i % len(ORGS)].oin),
        "local_ref": f"archived-{i}",
        "person": pseudonym(f"archived:{i}", epoch),
        "professional_name": "Bram Bos",
        "professional_email": None,
        "professional_phone": None,
        "professional_function": None,
        "registered_at": T0,
        "remove_on": dt.date(2027, 1, 1),
        "informed_on": None,
        "informed_who": None,
        "archived_on": dt.date(2026, 12, 1),
        "reason": "risk_ended",
        "destroy_on": dt.date(2031, 12, 1),
    }


def _excluded(i: int, epoch: int) -> dict[str, Any]:
    return {"address": pseudonym(f"excluded:{i}", epoch), "label": "opvang", "created_at": T0}


def _matches(signals: int, epoch: int) -> Iterator[dict[str, Any]]:
    for i in range(0, signals, 20):
        yield {
            "id": _id("match", i),
            "via": "person",
            "key": pseudonym(f"person:{i}", epoch),
            "created_at": T0,
            "ended_at": None,
        }
        yield {
            "id": _id("ended", i),
            "via": "address",
            "key": None,
            "created_at": T0,
            "ended_at": T0,
        }


# --- reading every pseudonym column back ------------------------------------------------


def pseudonym_columns(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Per table, every row's primary key, pseudonyms and shadows, in key order."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    with db.read() as session:
        for part in PLAN:
            table = part.table
            keys = row_key(table)
            columns = [table.c[c] for c in (*part.live, *part.shadow)]
            rows = session.execute(select(*keys, *columns).order_by(*keys))
            found[part.name] = [tuple(_plain(v) for v in row) for row in rows]
    return found


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def epoch_states(db: Database) -> list[tuple[int, str, bool]]:
    """(epoch, state, whether δ is stored) per epoch."""
    with db.read() as session:
        rows = session.execute(text("SELECT epoch, state, delta FROM key_epochs ORDER BY epoch"))
        return [(e, s, d is not None) for e, s, d in rows]
