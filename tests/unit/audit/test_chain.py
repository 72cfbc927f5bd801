"""The audit hash chain detects any edit, deletion or reordering, naming the entry."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from vir.audit.chain import GENESIS, AuditEvent, StoredEntry, chain_hash, verify_chain


def _chain(n: int) -> list[StoredEntry]:
    entries, previous = [], GENESIS
    for i in range(1, n + 1):
        event = AuditEvent(
            event_id=f"e{i}",
            occurred_at=f"2026-01-01T00:00:{i:02d}.000000Z",
            action="oprf.evaluate",
            outcome="success",
            organisation="00000009000000000001",
            objects={"elements": i},
        )
        body = event.encode()
        digest = chain_hash(previous, body)
        entries.append(
            StoredEntry(
                i,
                body,
                previous,
                digest,
                {"action": event.action, "organisation": event.organisation},
            )
        )
        previous = digest
    return entries


@given(st.integers(min_value=0, max_value=30))
def test_intact_chain_verifies(n: int) -> None:
    report = verify_chain(_chain(n))
    assert report.intact and report.entries == n


@given(st.data())
def test_flipping_any_byte_is_detected_at_that_entry(data: st.DataObject) -> None:
    entries = _chain(data.draw(st.integers(min_value=1, max_value=20)))
    index = data.draw(st.integers(min_value=0, max_value=len(entries) - 1))
    body = bytearray(entries[index].body)
    position = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    body[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    entries[index] = dataclasses.replace(entries[index], body=bytes(body))
    assert verify_chain(entries).first_broken == index + 1


@given(st.data())
def test_deleting_an_entry_is_detected(data: st.DataObject) -> None:
    entries = _chain(data.draw(st.integers(min_value=2, max_value=20)))
    index = data.draw(st.integers(min_value=0, max_value=len(entries) - 2))
    del entries[index]
    assert verify_chain(entries).first_broken == index + 2


@given(st.data())
def test_swapping_two_entries_is_detected(data: st.DataObject) -> None:
    entries = _chain(data.draw(st.integers(min_value=2, max_value=20)))
    i = data.draw(st.integers(min_value=0, max_value=len(entries) - 2))
    entries[i], entries[i + 1] = entries[i + 1], entries[i]
    # The entry found out of place (originally number i + 2) is the one named.
    assert verify_chain(entries).first_broken == i + 2


@given(st.data())
def test_renumbered_reordering_is_detected(data: st.DataObject) -> None:
    entries = _chain(data.draw(st.integers(min_value=2, max_value=20)))
    i = data.draw(st.integers(min_value=0, max_value=len(entries) - 2))
    a, b = entries[i], entries[i + 1]
    entries[i] = dataclasses.replace(b, seq=a.seq)
    entries[i + 1] = dataclasses.replace(a, seq=b.seq)
    assert verify_chain(entries).first_broken == i + 1


def test_an_indexed_column_that_disagrees_with_the_body_is_detected() -> None:
    entries = _chain(3)
    entries[1] = dataclasses.replace(entries[1], columns={"action": "something.else"})
    report = verify_chain(entries)
    assert report.first_broken == 2 and "action" in (report.problem or "")


def test_encoding_round_trips() -> None:
    event = AuditEvent(
        event_id="x",
        occurred_at="t",
        action="a",
        outcome="o",
        objects={"b": 1, "a": "2"},
        reason="r",
    )
    assert AuditEvent.decode(event.encode()) == event
