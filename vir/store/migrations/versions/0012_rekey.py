"""Rekeying stored pseudonyms: shadow columns, and content hashes without pseudonyms.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

A rekey (``vir keys rekey``, vir.store.rekey) multiplies every stored pseudonym by the
rekey factor δ while the index keeps serving. It writes δ·N into a shadow column next
to each pseudonym column, batch by batch, and moves the shadows into place in one
transaction at the end, so that the pseudonyms readers and matching see are always of
one epoch. The shadow columns (``*_next``) are NULL except while a rekey runs.

``signals.content_hash`` told an idempotent repeat from a conflicting one by hashing
the request, pseudonyms and epoch included: after a rekey no repeat would hash the
same. It now covers everything but the pseudonyms (which are compared as stored,
after conversion), and is recomputed here for the signals stored already. The old
hash covered the removal date *as requested*, which the row does not keep when none
was given; both readings are tried against the stored hash, and the one that matches
is kept (a row matching neither, as after the function-code migration 0009, is taken
with its stored date). Both hash definitions are written out here as they are at this
revision.
"""

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SHADOWS = (
    ("signals", "person_next"),
    ("signals", "address_next"),
    ("signal_parents", "parent_next"),
    ("archived_signals", "person_next"),
    ("excluded_addresses", "address_next"),
    ("matches", "key_next"),
)
BATCH = 1000

SIGNALS = sa.table(
    "signals",
    sa.column("id", sa.String),
    sa.column("epoch", sa.Integer),
    sa.column("person", sa.LargeBinary),
    sa.column("address", sa.LargeBinary),
    sa.column("remove_on", sa.Date),
    sa.column("archive_until", sa.Date),
    sa.column("professional_name", sa.String),
    sa.column("professional_email", sa.String),
    sa.column("professional_phone", sa.String),
    sa.column("professional_function", sa.String),
    sa.column("content_hash", sa.LargeBinary),
)
PARENTS = sa.table(
    "signal_parents", sa.column("signal_id", sa.String), sa.column("parent", sa.LargeBinary)
)


def _sha(document: dict[str, Any]) -> bytes:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()


def old_hash(row: Any, parents: list[bytes], remove_on: str | None) -> bytes:
    """The content hash up to this revision: pseudonyms and epoch included."""
    document: dict[str, Any] = {
        "epoch": row.epoch,
        "person": bytes(row.person).hex(),
        "parents": sorted(p.hex() for p in parents),
        "address": bytes(row.address).hex() if row.address else None,
        "remove_on": remove_on,
        "professional": _professional(row),
    }
    if row.archive_until is not None:
        document["archive_until"] = row.archive_until.isoformat()
    return _sha(document)


def new_hash(row: Any, parents: list[bytes], remove_on: str | None) -> bytes:
    """The content hash from this revision on: no pseudonym, no epoch."""
    document: dict[str, Any] = {
        "parents": len(parents),
        "address": row.address is not None,
        "remove_on": remove_on,
        "professional": _professional(row),
    }
    if row.archive_until is not None:
        document["archive_until"] = row.archive_until.isoformat()
    return _sha(document)


def _professional(row: Any) -> dict[str, Any]:
    return {
        "name": row.professional_name,
        "email": row.professional_email,
        "phone": row.professional_phone,
        "function": row.professional_function,
    }


def rehashed(row: Any, parents: list[bytes]) -> bytes:
    """The new hash of a stored signal, with the removal date as it was requested."""
    stored = row.remove_on.isoformat()
    requested = stored
    if bytes(row.content_hash) == old_hash(row, parents, None):
        requested = None
    return new_hash(row, parents, requested)


def _rehash_signals() -> None:
    bind = op.get_bind()
    last = ""
    while True:
        rows = bind.execute(
            sa.select(SIGNALS).where(SIGNALS.c.id > last).order_by(SIGNALS.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        parents: dict[str, list[bytes]] = {r.id: [] for r in rows}
        for signal_id, parent in bind.execute(
            sa.select(PARENTS.c.signal_id, PARENTS.c.parent).where(
                PARENTS.c.signal_id.in_(list(parents))
            )
        ):
            parents[signal_id].append(bytes(parent))
        for row in rows:
            bind.execute(
                SIGNALS.update()
                .where(SIGNALS.c.id == row.id)
                .values(content_hash=rehashed(row, parents[row.id]))
            )
        last = rows[-1].id


def upgrade() -> None:
    for table, column in SHADOWS:
        op.add_column(table, sa.Column(column, sa.LargeBinary(32), nullable=True))
    _rehash_signals()


def downgrade() -> None:
    """Drops the shadow columns; the content hashes stay in the new form (a repeat of a
    signal stored before this revision then conflicts instead of being recognised)."""
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch rebuild of ``matches``
    # would drop the table that match_members references.
    for table, column in reversed(SHADOWS):
        op.drop_column(table, column)
