"""``vir-client match ...``: one match, its coordinator's handover and its follow-up
(docs/api.md, "Matchregie"); ``vir-client follow-up ...``: a municipality's follow-up
officer's overdue matches and reminders (docs/api.md, "Follow-up officer").

A match is named by the id its notifications carry; participating organisations by
their OIN, as the match shows them. Nothing sent carries text: an event is one of a
fixed list, checked here before anything is sent.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from vir.client.failures import FAILURES, failed
from vir.domain.coordination import FollowUp
from vir.domain.errors import InputError
from vir.domain.followup import MAX_DAYS

if TYPE_CHECKING:
    from vir.client.connection import VirClient

_MATCH_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")
_OIN = re.compile(r"[0-9]{20}")


def add_parsers(sub: Any) -> None:
    """``vir-client match show|handover|accept|decline|follow-up``."""
    match = sub.add_parser(
        "match", help="one match: its coordinator, handover and follow-up"
    ).add_subparsers(dest="match_command", required=True)
    for name, what in (
        ("show", "the match as your organisation sees it (JSON)"),
        ("accept", "take over the coordinator's role offered to you"),
        ("decline", "decline the coordinator's role offered to you"),
    ):
        match.add_parser(name, help=what).add_argument("match_id")
    handover = match.add_parser("handover", help="coordinator: offer the role to a participant")
    handover.add_argument("match_id")
    handover.add_argument("--to", required=True, help="the participating organisation's OIN")
    follow = match.add_parser("follow-up", help="record a content-free follow-up event")
    follow.add_argument("match_id")
    follow.add_argument("event", choices=[e.value for e in FollowUp])
    follow.add_argument(
        "--with",
        dest="contact_with",
        action="append",
        default=[],
        help="contact_made: a participating organisation's OIN (repeat for several)",
    )


def add_follow_up_parsers(sub: Any) -> None:
    """``vir-client follow-up overdue|remind`` (a municipality's follow-up officer)."""
    follow = sub.add_parser(
        "follow-up", help="follow-up officer: matches without confirmed contact, reminders"
    ).add_subparsers(dest="follow_up_command", required=True)
    overdue = follow.add_parser("overdue", help="the region's overdue matches, every page (JSON)")
    overdue.add_argument("--days", type=int, help="overdue after this many days (1-365)")
    remind = follow.add_parser("remind", help="remind the region's participants (match.reminder)")
    remind.add_argument("match_id")


def follow_up_command(
    args: argparse.Namespace,
    connect: Callable[[argparse.Namespace], AbstractContextManager[VirClient]],
) -> int:
    """Run a ``follow-up`` command; print the answer (every page of the list) as JSON.
    The match id and the period are checked before anything is sent."""
    try:
        if args.follow_up_command == "remind" and not _MATCH_ID.fullmatch(args.match_id):
            raise InputError("match_id", "the match id the overdue list carries")
        days = getattr(args, "days", None)
        if days is not None and not 1 <= days <= MAX_DAYS:
            raise InputError("days", f"give a number of days from 1 to {MAX_DAYS}")
        with connect(args) as client:
            if args.follow_up_command == "remind":
                path = f"/v1/follow-up/overdue/{args.match_id}/reminder"
                answer = client.request("POST", path, None).json()
            else:
                answer = _all_overdue(client, days)
    except FAILURES as error:
        return failed(error)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


def _all_overdue(client: VirClient, days: int | None) -> dict[str, Any]:
    query: dict[str, Any] = {"limit": 500}
    if days is not None:
        query["days"] = days
    items: list[Any] = []
    while True:
        page = client.request("GET", "/v1/follow-up/overdue", params=query).json()
        items += page["items"]
        if page["next"] is None:
            return {"region": page["region"], "days": page["days"], "items": items}
        query["after"] = page["next"]


def request_of(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """The method, path and body a ``match`` command sends; InputError before sending."""
    if not _MATCH_ID.fullmatch(args.match_id):
        raise InputError("match_id", "the match id a notification carries")
    path = f"/v1/matches/{args.match_id}"
    command = args.match_command
    if command == "show":
        return "GET", path, None
    if command in ("accept", "decline"):
        return "POST", f"{path}/handover/{command}", None
    if command == "handover":
        if not _OIN.fullmatch(args.to):
            raise InputError("to", "an OIN is exactly 20 digits")
        return "POST", f"{path}/handover", {"to": args.to}
    if any(not _OIN.fullmatch(oin) for oin in args.contact_with):
        raise InputError("contact_with", "an OIN is exactly 20 digits")
    body: dict[str, Any] = {"event": args.event}
    if args.contact_with:
        body["contact_with"] = args.contact_with
    return "POST", f"{path}/follow-up", body


def command(
    args: argparse.Namespace,
    connect: Callable[[argparse.Namespace], AbstractContextManager[VirClient]],
) -> int:
    """Run a ``match`` command; print the match as it now stands (JSON)."""
    try:
        method, path, body = request_of(args)
        with connect(args) as client:
            answer = client.request(method, path, body).json()
    except FAILURES as error:
        return failed(error)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0
