"""Recording refused requests in the audit log: who tried what, from where, why, how often.

Refusals are accountable but aggregated: an audit entry per key and minute, not per
request, so that whoever can reach the port cannot grow the hash-chained log at will.
The key is (reason, endpoint, claimed organisation and certificate fingerprint, peer
network). Counting happens in the database (``refusal_counts``), in a write
transaction of its own per refused request, committed before the refusal is answered:

* a key's first refusal in a minute is an entry at once, with ``count`` 1, so an
  isolated refusal (an expired certificate, a typo) is in the log immediately;
* its further refusals that minute are counted, and written as one more entry with
  their ``count`` once the minute is over (``flush``: every instance every
  ``VIR_REFUSAL_FLUSH_SECONDS``, and at start and at stop);
* at most ``(cap - 1) // 2`` keys a minute, all instances together, are itemised so;
  refusals past them are counted under the minute's overflow key (reason
  ``overflow``, no caller), written as one entry once the minute is over. Together
  at most ``cap`` entries a minute (``VIR_REFUSAL_ENTRIES_PER_MINUTE``).

No refusal is silently lost: each is in an entry's ``count`` or, should even that
fail (the database did not take the count), in the ``vir_refusals_overflow_total``
metric, which also counts every refusal past the cap. Counts are in the database
once the refusal is answered, so they survive a crash of the instance: any other
instance, or this one at its next start, writes them to the log.

Why in the database and not in each instance's memory: the cap then holds for all
instances together, and a crash loses nothing. Its price is a small write per
refused request (the same as before, when each was an audit entry); a refused
request still costs no work beyond that.

The peer is recorded as its network, the /24 of an IPv4 address or the /48 of an
IPv6 one, never the address. It is no data about a young person, but the audit log
is kept for years and cannot be edited, so it keeps what tells one source from
another (and what to give a hosting provider) and no more: an address may be a
person's. Whole networks also keep a source that rotates addresses within its
network to one key. Behind the reverse proxy every peer is the proxy; the
proxy's own access log has the client's address.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress

from sqlalchemy.exc import OperationalError

from vir.audit.actions import Action
from vir.audit.chain import AuditEvent, Outcome
from vir.domain.clock import Clock
from vir.domain.errors import VirError, WriteNotCommitted
from vir.services.identity import Presented
from vir.store import audit_log, locks
from vir.store import refusals as store
from vir.store.db import Database
from vir.store.locks import Lock
from vir.store.refusals import RefusalCount, RefusalKey

# The reason of the entry that sums a minute's refusals past the cap.
OVERFLOW = "overflow"
# Entries per key and minute: its first refusal, then the rest of the minute.
# Refusal counts of every minute, under one lock: the cap holds across instances.
_LOCK = Lock.named("refusals")
ENTRIES_PER_KEY = 2
_ENDPOINT_LENGTH = 128
_REASON_LENGTH = 64
UNKNOWN_PEER = "unknown"


class Recorded(enum.Enum):
    """Where a refusal is accounted for."""

    AUDITED = "audited"  # an audit entry of its own, now
    COUNTED = "counted"  # in its key's entry once the minute is over
    OVERFLOW = "overflow"  # past the cap: in the minute's overflow entry
    UNRECORDED = "unrecorded"  # in no entry (the database did not take it): the metric only


def reason_code(error: VirError | type[VirError]) -> str:
    """A fixed code for an error class (``CertificateRevoked`` → ``certificate_revoked``)."""
    name = (error if isinstance(error, type) else type(error)).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def minute_of(now: dt.datetime) -> str:
    """The minute ``now`` falls in, as ``2026-12-01T10:31Z`` (sorts in time order)."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def network_of(peer: str | None) -> str:
    """The peer's network: ``198.51.100.0/24``, ``2001:db8:1::/48``, or ``unknown``."""
    if not peer:
        return UNKNOWN_PEER
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:  # a Unix socket, or whatever a server put there
        return UNKNOWN_PEER
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def itemised_keys(cap: int) -> int:
    """Keys a minute that get entries of their own, so that with the overflow entry a
    minute never has more than ``cap`` refusal entries."""
    return max(1, (cap - 1) // ENTRIES_PER_KEY)


class RefusalRecorder:
    def __init__(self, db: Database, clock: Clock, entries_per_minute: int = 60) -> None:
        if entries_per_minute < 1 + ENTRIES_PER_KEY:
            raise ValueError("entries_per_minute must leave room for one key and the overflow")
        self._db = db
        self._clock = clock
        self._keys = itemised_keys(entries_per_minute)

    def record(
        self, claim: Presented, endpoint: str, reason: str, peer: str | None = None
    ) -> Recorded:
        """Count one refused request; returns where it is accounted for."""
        now = self._clock()
        key = RefusalKey(
            minute_of(now),
            reason[:_REASON_LENGTH],
            endpoint[:_ENDPOINT_LENGTH],
            claim.oin or "",
            claim.fingerprint or "",
            network_of(peer),
        )
        try:
            with self._db.write() as session:
                # Refusals count against a cap per minute across instances: one at a time.
                locks.take(session, [_LOCK])
                found = store.get(session, key)
                if found is None:
                    if store.keys_in(session, key.minute, besides=OVERFLOW) < self._keys:
                        store.insert_count(session, key, count=1, audited=1, entries=1)
                        audit_log.append(session, _entry(key, 1, now))
                        return Recorded.AUDITED
                elif found.entries < ENTRIES_PER_KEY:
                    store.add_one(session, key)
                    return Recorded.COUNTED
                overflow = _overflow_key(key.minute)
                counted = store.get(session, overflow)
                if counted is None:
                    store.insert_count(session, overflow, count=1, audited=0, entries=0)
                elif counted.entries == 0:
                    store.add_one(session, overflow)
                else:  # its minute was closed already (a clock behind the others')
                    return Recorded.UNRECORDED
                return Recorded.OVERFLOW
        except (WriteNotCommitted, OperationalError):
            # The database did not take the count: the request is refused all the same,
            # and the refusal counted in the metric.
            return Recorded.UNRECORDED

    def flush(self, *, final: bool = False) -> int:
        """Write the counts of minutes that are over to the audit log, one entry per key,
        and forget those minutes; returns the number of entries written. A minute whose
        counts were all written already (each key's one refusal, an entry at once) is
        forgotten too: its rows go at the first flush after it ends, also when nothing
        is due.

        ``final`` (an instance stopping) also writes what the current minute counted so
        far per key (not the overflow, which waits for its minute to end); a key written
        so has had its two entries, and its further refusals that minute go to the
        overflow.
        """
        now = self._clock()
        current = minute_of(now)
        open_minute = current if final else None
        with self._db.read() as session:
            if not store.any_due(session, current, open_minute, OVERFLOW) and not (
                store.any_before(session, current)
            ):
                return 0
        with self._db.write() as session:
            locks.take(session, [_LOCK])
            counts = store.due(session, current, open_minute, OVERFLOW)
            for count in counts:
                audit_log.append(session, _entry(count.key, _unaudited(count), now))
                store.mark_audited(session, count)
            store.delete_before(session, current)
        return len(counts)


def _unaudited(count: RefusalCount) -> int:
    return count.count - count.audited


def _overflow_key(minute: str) -> RefusalKey:
    return RefusalKey(minute, OVERFLOW, "*")


def _entry(key: RefusalKey, count: int, now: dt.datetime) -> AuditEvent:
    objects: dict[str, str | int] = {"endpoint": key.endpoint, "count": count, "minute": key.minute}
    if key.network:
        objects["peer"] = key.network
    return audit_log.new_event(
        Action.REQUEST_REFUSED,
        Outcome.REFUSED,
        now,
        organisation=key.organisation or None,
        certificate=key.certificate or None,
        objects=objects,
        reason=key.reason,
    )
