"""Synthetic signed audit exports, for the export tests and ``make bench``."""

from __future__ import annotations

from collections.abc import Iterator

from vir.audit import merkle
from vir.audit.chain import GENESIS, AuditEvent, chain_hash
from vir.audit.checkpoint import Checkpoint
from vir.audit.export import ExportedEntry, render
from vir.crypto.signing import CheckpointSigner


def synthetic_export(count: int, signer: CheckpointSigner) -> Iterator[bytes]:
    """The lines of a valid export of ``count`` registration entries, signed by ``signer``."""
    previous, leaves, entries = GENESIS, [], []
    for i in range(1, count + 1):
        body = AuditEvent(
            event_id=f"{i:036d}",
            occurred_at="2026-11-22T10:00:00.000000Z",
            action="signal.registered",
            outcome="success",
            organisation="00000009000000000001",
            certificate="ab" * 32,
            objects={"signal": f"{i:036d}"},
        ).encode()
        previous = chain_hash(previous, body)
        entries.append(ExportedEntry(i, previous, body))
        leaves.append(merkle.leaf_hash(body))
    note = signer.sign(Checkpoint(signer.origin, count, merkle.root(leaves)))
    return render(signer.origin, signer.verifier_key(), note, entries)
