"""``vir-client report participation``: the participation monitor (docs/api.md,
``GET /v1/privacy/reports/participation``) for a municipality's privacy officer or
follow-up officer (their region) or the national privacy officer (any region).

The period and the term are checked here before anything is sent. The report is
downloaded with a progress bar on standard error (``--quiet``: none) and printed (JSON,
CSV) or written to ``--out`` (a PDF must be; ``--out`` ending in .pdf, .csv or .json
chooses the format when ``--format`` is not given), 0600 and whole, its folder checked
before the request is sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vir.client.bulk import Progress
from vir.client.failures import FAILURES, failed
from vir.client.files import private_file
from vir.domain.dates import parse_iso_date
from vir.domain.errors import InputError
from vir.domain.followup import MAX_DAYS

if TYPE_CHECKING:
    from vir.client.connection import VirClient

PATH = "/v1/privacy/reports/participation"
FORMATS = ("json", "csv", "pdf")


def add_parsers(sub: Any) -> None:
    """``vir-client report participation``."""
    report = sub.add_parser("report", help="reports for a municipality's officers").add_subparsers(
        dest="report_command", required=True
    )
    one = report.add_parser(
        "participation",
        help="which organisations take part, and how soon matched ones make contact",
    )
    one.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    one.add_argument("--to", dest="end", required=True, help="the day after the last")
    one.add_argument("--region", help="your own region (the default); the national officer: any")
    one.add_argument(
        "--days", type=int, help=f"the term for contact, 1..{MAX_DAYS} (default: the region's)"
    )
    one.add_argument(
        "--format",
        choices=FORMATS,
        help="json, csv or pdf (default: the suffix of --out if it names one, else json)",
    )
    one.add_argument(
        "--dialect",
        choices=("nl", "data"),
        default="nl",
        help="CSV: nl (Dutch Excel, the default, as vir report's) or data (codes)",
    )
    one.add_argument("--out", type=Path, help="write the report here instead of printing it")
    one.add_argument("--quiet", action="store_true", help="no progress bar")


def _day(value: str, field: str) -> dt.date:
    try:
        return parse_iso_date(value)
    except ValueError:
        raise InputError(field, "a date as YYYY-MM-DD") from None


def report_format(chosen: str | None, out: Path | None) -> str:
    """``--format``, or what ``--out``'s suffix names (``.pdf``, ``.csv``, ``.json``), or
    JSON. A file named for one format never receives another: ``--out x.pdf --format
    csv`` is refused."""
    named = out.suffix.lower().lstrip(".") if out is not None else ""
    if named not in FORMATS:
        return chosen or "json"
    if chosen is not None and chosen != named:
        raise InputError("format", f"{chosen}, but --out names a .{named} file")
    return named


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    """The query a ``report participation`` command sends; InputError before sending."""
    start, end = _day(args.start, "from"), _day(args.end, "to")
    if start >= end:
        raise InputError("from", "must be before 'to'")
    if args.days is not None and not 1 <= args.days <= MAX_DAYS:
        raise InputError("days", f"a whole number of days from 1 to {MAX_DAYS}")
    kind = report_format(args.format, args.out)
    if kind == "pdf" and args.out is None:
        raise InputError("out", "a PDF is written to a file: give --out")
    params: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    params["format"] = kind
    for key in ("region", "days", "dialect"):
        if key == "dialect" and kind != "csv":
            continue  # a CSV's only
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    return params


def command(
    args: argparse.Namespace,
    connect: Callable[[argparse.Namespace], AbstractContextManager[VirClient]],
) -> int:
    """Run ``report participation``: exit 0 with the report, 2 on input refused here, 1
    when the service refuses or fails."""
    try:
        params = params_of(args)
        progress = Progress("participation (bytes)", 0, sys.stderr, bar=not args.quiet)

        def advance(received: int, total: int) -> None:
            progress.total = total
            progress.advance(received - progress.done)

        with ExitStack() as files:
            # Made (0600) before the request: an --out that cannot be written stops it.
            out = files.enter_context(private_file(args.out)) if args.out is not None else None
            with connect(args) as client:
                body = client.download(PATH, params, advance)
            progress.end()
            if out is not None:
                out.write(body)
    except FAILURES as error:
        return failed(error)
    if args.out is not None:
        print(f"vir-client: written {args.out}")
    else:
        sys.stdout.write(body.decode("utf-8"))
        if not body.endswith(b"\n"):
            sys.stdout.write("\n")
    return 0
