"""``vir demo``: the main job, end to end, against a running service.

A school and a GP each register a concern about the same child; youth care
registers one about the child's younger brother, whose mother is the same. Every
identity is pseudonymised by the client first: the service sees no BSN. Then
each demo organisation reads its notifications.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vir.client.canonical import is_valid_bsn, nl_bsn
from vir.client.connection import VirClient


def made_up_bsn() -> str:
    """A random number that passes the 11-proof, in the 9xxxxxxxx range (demo only)."""
    while True:
        candidate = "9" + "".join(secrets.choice("0123456789") for _ in range(8))
        if is_valid_bsn(candidate):
            return candidate


def _professional(name: str, email: str, phone: str, function: str) -> dict[str, str]:
    """Contact details as the service takes them: ``function`` is a code of the
    organisation's category (``GET /v1/functions``), never free text."""
    return {"name": name, "email": email, "phone": phone, "function": function}


SCENARIO = (
    (
        "education",
        "child",
        _professional(
            "Els Visser", "e.visser@regenboog.example", "010-1234567", "intern_begeleider"
        ),
    ),
    (
        "gp",
        "child",
        _professional(
            "Dr. Karim Bouali", "k.bouali@hakralingen.example", "010-7654321", "huisarts"
        ),
    ),
    (
        "youth_care",
        "sibling",
        _professional(
            "Sanne de Jong", "s.dejong@jzrijnmond.example", "06-12345678", "jeugdhulpverlener"
        ),
    ),
)


def _who(professional: dict[str, Any]) -> str:
    """Name, function label (when given) and how to reach them."""
    parts = [professional["name"], professional.get("function_label")]
    parts.append(professional["email"] or professional["phone"])
    return ", ".join(p for p in parts if p)


def _describe(item: dict[str, Any]) -> str:
    match = item["match"]
    who = (
        "; ".join(
            f"{p['organisation']['name']} ({_who(p['professional'])})"
            for p in match["participants"]
        )
        or "nobody any more"
    )
    return f"  {item['type']:<13} {match['kind']}/{match['via']:<7} on {item['local_ref']}: {who}"


# How long the demo waits for its notifications' webhooks and e-mails before it
# withdraws the signals (an e-mail digest window may hold them back far longer).
PUSH_WAIT_SECONDS = 15.0
_OPEN = frozenset(("pending", "retrying"))


def _pushed(clients: Mapping[str, VirClient], cursors: Mapping[str, str | None]) -> list[str]:
    """Wait until none of the demo's notifications has a delivery still open (or
    PUSH_WAIT_SECONDS passed); what was pushed, as lines (none without any channel)."""
    deadline = time.monotonic() + PUSH_WAIT_SECONDS
    while True:
        states = [
            (channel, state)
            for category, client in clients.items()
            for item in client.all_notifications(cursors[category])[0]
            for channel, state in (item.get("delivery") or {}).items()
        ]
        still = sum(state in _OPEN for _channel, state in states)
        if not still or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    if not states:
        return []
    done = Counter(channel for channel, state in states if state == "delivered")
    pushed = ", ".join(f"{n} by {channel}" for channel, n in sorted(done.items())) or "none"
    line = f"(pushed before the withdrawal: {pushed}"
    if still:
        line += f"; {still} still open after {PUSH_WAIT_SECONDS:.0f} s, withdrawn with them"
    return ["", line + ")"]


def run_demo(base_url: str, dev_dir: Path) -> str:
    orgs = json.loads((dev_dir / "orgs.json").read_text(encoding="utf-8"))
    clients = {o["category"]: VirClient.from_dev(o["oin"], dev_dir, base_url) for o in orgs}
    lines = []
    try:
        cursors = {c: clients[c].all_notifications()[1] for c in clients}
        run = secrets.token_hex(3)
        family = {"child": made_up_bsn(), "sibling": made_up_bsn(), "mother": made_up_bsn()}
        for category, who, professional in SCENARIO:
            client = clients[category]
            result = client.pseudonymise([nl_bsn(family[who]), nl_bsn(family["mother"])])
            person, mother = result.pseudonyms
            epoch = result.epoch
            local_ref = f"demo-{run}-{category}"
            answer = client.register_signal(
                {
                    "local_ref": local_ref,
                    "epoch": epoch,
                    "person": person,
                    "parents": [mother],
                    "remove_on": (dt.date.today() + dt.timedelta(days=365)).isoformat(),
                    "professional": professional,
                }
            )
            lines.append(
                f"{category}: registered {local_ref} "
                f"({len(answer['matches'])} match(es) right away)"
            )
        lines.append("")
        for org in orgs:
            items, _ = clients[org["category"]].all_notifications(cursors[org["category"]])
            lines.append(f"{org['name']} ({org['category']}): {len(items)} notification(s)")
            lines += [_describe(item) for item in items]
        # Withdrawing deletes the notifications and what is still to be pushed of them
        # (docs/matching.md, Retention): with webhooks or e-mail set up, wait for it first.
        lines += _pushed(clients, cursors)
        for category, _who, _p in SCENARIO:
            clients[category].withdraw_signal(f"demo-{run}-{category}", "unjustified")
        lines.append("")
        lines.append("(demo signals withdrawn again)")
    finally:
        for client in clients.values():
            client.close()
    return "\n".join(lines)
