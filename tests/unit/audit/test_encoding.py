"""An audit entry's bytes never change: they are hashed into the chain and the Merkle
tree, so an entry written by any version must encode the same in every later one.
``AuditEvent.encode`` writes the canonical JSON itself for speed; it is checked here
against known answers and against the naive reference, ``json.dumps``."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from vir.audit.actions import Action
from vir.audit.chain import GENESIS, AuditEvent, chain_hash

REGISTERED = AuditEvent(
    event_id="0b6f1c1e-5d1f-4b8e-9a53-0c2a8f3c2d11",
    occurred_at="2026-12-02T09:30:00.000000Z",
    action="signal.registered",
    outcome="success",
    organisation="00000009000000000002",
    certificate="ab" * 32,
    objects={"signal": "5f0c2f7e-2a43-4c4b-8d0e-8b1a6c3e9f20", "remove_on": "2028-01-01"},
    role="system",
)
REFUSED = AuditEvent(
    event_id="e2",
    occurred_at="2026-12-02T09:30:01.000000Z",
    action="report.generated",
    outcome="refused",
    actor="admin",
    objects={"count": 3, "naam": 'Zoë "citaat" \\ \n\t\u2028 😀'},
    reason="rate_limited",
    purpose="care",
)


def test_known_entries_keep_their_bytes_and_chain_hashes() -> None:
    assert REGISTERED.encode() == (
        b'{"action":"signal.registered","actor":null,"certificate":"'
        + b"ab" * 32
        + b'","event_id":"0b6f1c1e-5d1f-4b8e-9a53-0c2a8f3c2d11","objects":{"remove_on":'
        b'"2028-01-01","signal":"5f0c2f7e-2a43-4c4b-8d0e-8b1a6c3e9f20"},"occurred_at":'
        b'"2026-12-02T09:30:00.000000Z","organisation":"00000009000000000002","outcome":'
        b'"success","reason":null,"role":"system"}'
    )
    assert REFUSED.encode() == (
        b'{"action":"report.generated","actor":"admin","certificate":null,"event_id":"e2",'
        b'"objects":{"count":3,"naam":"Zo\xc3\xab \\"citaat\\" \\\\ \\n\\t\xe2\x80\xa8 '
        b'\xf0\x9f\x98\x80"},"occurred_at":"2026-12-02T09:30:01.000000Z","organisation":null,'
        b'"outcome":"refused","purpose":"care","reason":"rate_limited"}'
    )
    first = chain_hash(GENESIS, REGISTERED.encode())
    assert first.hex() == "be83c1330d585e64ebe367d0491253ad0fc2177830da6c0ac1c0348394b8ae60"
    second = chain_hash(first, REFUSED.encode())
    assert second.hex() == "35724b2c656091e2a5d14a2ccf076d16b87afa66adccb6fa801f6c0946ea016a"


def _reference(event: AuditEvent) -> bytes:
    """The canonical form as specified: sorted keys, no spaces, UTF-8; role and purpose
    only when set."""
    document: dict[str, Any] = {
        "action": event.action,
        "actor": event.actor,
        "certificate": event.certificate,
        "event_id": event.event_id,
        "objects": dict(event.objects),
        "occurred_at": event.occurred_at,
        "organisation": event.organisation,
        "outcome": event.outcome,
        "reason": event.reason,
    }
    for name in ("role", "purpose"):
        if getattr(event, name) is not None:
            document[name] = getattr(event, name)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # no lone surrogates
_OPTIONAL = st.none() | _TEXT
_VALUE = _TEXT | st.integers() | st.booleans() | st.floats(allow_nan=False)


@given(
    st.builds(
        AuditEvent,
        event_id=_TEXT,
        occurred_at=_TEXT,
        action=_TEXT | st.sampled_from(Action),  # a StrEnum member encodes as its value
        outcome=_TEXT,
        organisation=_OPTIONAL,
        actor=_OPTIONAL,
        certificate=_OPTIONAL,
        objects=st.dictionaries(_TEXT, _VALUE, max_size=5),
        reason=_OPTIONAL,
        role=_OPTIONAL,
        purpose=_OPTIONAL,
    )
)
def test_encoding_equals_the_reference(event: AuditEvent) -> None:
    assert event.encode() == _reference(event)
    assert AuditEvent.decode(event.encode()) == event
