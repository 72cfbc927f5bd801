"""An audit log to test the Merkle tiles on, and edits made behind the service's back."""

from __future__ import annotations

from sqlalchemy import select, text
from support.instore import T0

from vir.audit import merkle
from vir.audit.actions import Action
from vir.store import audit_log
from vir.store.db import Database
from vir.store.tables import AuditEntryRow, AuditTileRow


def append_events(db: Database, n: int) -> None:
    with db.write() as session:
        for i in range(n):
            audit_log.append(
                session,
                audit_log.new_event(Action.REPORT_GENERATED, "success", T0, objects={"i": i}),
            )
    db.integrate()


def leaf_hashes(db: Database) -> list[bytes]:
    with db.read() as session:
        bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        return [merkle.leaf_hash(bytes(b)) for b in bodies]


def tile_blob(db: Database, level: int, idx: int) -> bytes:
    with db.read() as session:
        return bytes(
            session.scalar(
                select(AuditTileRow.hashes).where(
                    AuditTileRow.level == level, AuditTileRow.idx == idx
                )
            )
        )


def edit_entry(db: Database, seq: int) -> None:
    """Entry ``seq`` says "refused" where it said "success", behind the service's back."""
    with db.engine.begin() as connection:
        body = bytes(
            connection.execute(
                text("SELECT body FROM audit_entries WHERE seq = :s"), {"s": seq}
            ).scalar_one()
        )
        connection.execute(
            text("UPDATE audit_entries SET body = :body WHERE seq = :s"),
            {"body": body.replace(b"success", b"refused"), "s": seq},
        )


def store_tile(db: Database, level: int, idx: int, blob: bytes) -> None:
    with db.engine.begin() as connection:  # behind the service's back
        connection.execute(
            text("UPDATE audit_tiles SET hashes = :b WHERE level = :l AND idx = :i"),
            {"b": blob, "l": level, "i": idx},
        )
