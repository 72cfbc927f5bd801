"""``vir-client notifications``: read the organisation's notifications, page by page, from
a cursor; ``vir-client matches LOCAL_REF``: the matches of one of its own signals.

For a back office without its own integration, a scheduled ``vir-client notifications
--cursor-file F`` is the whole integration: each run prints what arrived since the last
one as JSON Lines (one notification per line, as ``GET /v1/notifications`` has it) and
keeps the cursor in ``F``. The cursor is written after the page it ends has been printed
and flushed, so a run cut short prints a page again rather than lose one: delivery to
stdout is at least once, and a notification's ``id`` tells a repeat.

The cursor is checked here before it is sent (it is opaque, but it has a shape), and the
file is written whole or not at all (a new file, synced, renamed over the old one).
Everything printed is JSON, so a control character in a name reaches a terminal escaped.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vir.client.failures import FAILURES, failed
from vir.client.files import write_private
from vir.domain.errors import InputError
from vir.domain.local_ref import is_local_ref

if TYPE_CHECKING:
    from vir.client.connection import VirClient

# A cursor as the index issues it (base64url of 9 bytes), or a legacy decimal sequence.
_CURSOR = re.compile(r"[A-Za-z0-9_-]{12}|[0-9]{1,18}")
_MAX_CURSOR_FILE = 256  # bytes: a cursor and a newline, with room to spare
PAGE = 100  # notifications asked for a page (the index allows 1..500)
MAX_PAGE = 500


def add_parsers(sub: Any) -> None:
    """``vir-client notifications`` and ``vir-client matches``."""
    read = sub.add_parser(
        "notifications",
        help="your organisation's notifications since a cursor (JSON Lines)",
        description="Print the notifications after a cursor, one JSON object per line; "
        "the cursor to continue from goes to the cursor file, or to stderr.",
    )
    start = read.add_mutually_exclusive_group()
    start.add_argument("--after", help="the cursor a previous read ended with")
    start.add_argument(
        "--cursor-file",
        type=Path,
        help="read the cursor from this file (none yet: from the start) and keep the new "
        "one there after each page",
    )
    read.add_argument(
        "--limit", type=int, default=PAGE, help=f"notifications per page, 1..{MAX_PAGE}"
    )
    read.add_argument(
        "--follow", action="store_true", help="keep reading; wait --interval between reads"
    )
    read.add_argument("--interval", type=float, default=30.0, help="seconds (1..3600)")
    matches = sub.add_parser("matches", help="the matches of one of your signals (JSON)")
    matches.add_argument("local_ref")


def check_cursor(text: str, field: str) -> str:
    """``text`` as a cursor, or InputError naming ``field`` (the text is not repeated)."""
    if not _CURSOR.fullmatch(text):
        raise InputError(field, "not a cursor the index issued")
    return text


def read_cursor_file(path: Path) -> str | None:
    """The cursor kept in ``path``; None when there is no file yet (start from the first)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_CURSOR_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputError("cursor_file", f"cannot be read ({type(error).__name__})") from None
    if len(data) > _MAX_CURSOR_FILE:
        raise InputError("cursor_file", "holds more than a cursor")
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise InputError("cursor_file", "not a cursor the index issued") from None
    return check_cursor(text, "cursor_file")


def write_cursor_file(path: Path, cursor: str) -> None:
    """Replace ``path`` with ``cursor`` as one step: a new file (0600), synced, renamed."""
    check_cursor(cursor, "next")
    write_private(path, (cursor + "\n").encode("ascii"))


def notifications_command(
    args: argparse.Namespace,
    connect: Callable[[argparse.Namespace], AbstractContextManager[VirClient]],
) -> int:
    try:
        if not 1 <= args.limit <= MAX_PAGE:
            raise InputError("limit", f"give 1..{MAX_PAGE}")
        if not 1 <= args.interval <= 3600:
            raise InputError("interval", "give 1..3600 seconds")
        after = check_cursor(args.after, "after") if args.after is not None else None
        if args.cursor_file is not None:
            after = read_cursor_file(args.cursor_file)
        with connect(args) as client:
            while True:
                after = _read_to_end(client, after, args.limit, args.cursor_file)
                if not args.follow:
                    break
                time.sleep(args.interval)
    except FAILURES as error:
        return failed(error)
    except KeyboardInterrupt:
        return 130
    if args.cursor_file is None and after is not None:
        print(f"vir-client: continue with --after {after}", file=sys.stderr)
    return 0


def _read_to_end(client: VirClient, after: str | None, limit: int, keep: Path | None) -> str | None:
    """Print every page after ``after``; the cursor after the last item printed."""
    while True:
        items, following = client.notifications(after, limit=limit)
        for item in items:
            sys.stdout.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
        sys.stdout.flush()
        if not items:
            return following or after
        after = check_cursor(following, "next")
        if keep is not None:
            write_cursor_file(keep, after)


def matches_command(
    args: argparse.Namespace,
    connect: Callable[[argparse.Namespace], AbstractContextManager[VirClient]],
) -> int:
    try:
        if not is_local_ref(args.local_ref):
            raise InputError("local_ref", "1..64 of A-Z a-z 0-9 . _ : -")
        with connect(args) as client:
            found = client.matches(args.local_ref)
    except FAILURES as error:
        return failed(error)
    print(json.dumps({"local_ref": args.local_ref, "matches": found}, indent=2, ensure_ascii=False))
    return 0
