"""``vir-client``: pseudonymise identities from a back-office system's command line.

Identities are read from standard input, one per line, never from arguments
(which end up in shell history and process lists):

    bsn      123456782
    person   surname;YYYY-MM-DD;m|v|x
    address  postcode;house number;suffix (suffix may be empty)

``pseudonymise KIND`` prints one base64url pseudonym per input line, in order.
``access bsn|person [--pdf FILE]`` (privacy officer) prints everything the index holds
on the one person given, as JSON, or writes the Dutch PDF for the data subject.

``consult bsn|person --purpose P [--household]`` (Veilig Thuis) prints who is or was
involved with the one identity given, or with the household of that parent, as JSON;
``feedback CONSULTATION_ID taken_up|handed_over|closed`` tells the reporters it found
where Veilig Thuis stands. ``organisations`` lists the organisations connected in the
caller's region (docs/categories.md).

``notifications [--cursor-file F | --after CURSOR] [--follow]`` prints the
organisation's notifications since the cursor as JSON Lines and keeps the next cursor in
the file (a scheduled run is a back office's whole integration); ``matches LOCAL_REF``
prints the matches of one of its own signals, as JSON.

``match show|handover|accept|decline|follow-up MATCH_ID`` reads one match with its
coordinator, hands the coordinator's role over (``--to OIN``), answers an offer, or
records a content-free follow-up (``contact_made --with OIN``, ``plan_agreed``,
``care_started``); it prints the match as it now stands, as JSON.

``follow-up overdue [--days N]`` (a municipality's follow-up officer) prints the
region's matches where contact was not confirmed in time, every page, as JSON;
``follow-up remind MATCH_ID`` reminds the region's participants (``match.reminder``).

``report participation --from D --to D`` (a municipality's privacy or follow-up
officer, the national privacy officer) prints the participation monitor as JSON or CSV,
or writes it (also the Dutch PDF) to ``--out``, with a progress bar.

``import FILE.csv`` registers the signals of a CSV file (a region migrating its
existing signals); ``sync FILE.csv`` does the same and withdraws the organisation's
active signals the file no longer holds (a nightly reconciliation). Both show a
progress bar on standard error and resume where an interrupted run stopped; the
file's format is in docs/import.md. The file holds identities: they are never
printed, a refused row is named by its row number and column.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from vir.client import bulk, consultations, inbox, matchregie, reports
from vir.client.canonical import nl_address, nl_bsn, nl_person
from vir.client.closed_stdout import quiet_when_stdout_closes
from vir.client.connection import (
    DEFAULT_KEYHOLDER_URL,
    DEFAULT_URL,
    ClientError,
    RetryPolicy,
    VirClient,
)
from vir.client.failures import FAILURES, failed
from vir.client.files import private_file
from vir.client.sync_memory import SUFFIX as MEMORY_SUFFIX
from vir.domain.errors import InputError
from vir.domain.feedback import FeedbackCode
from vir.domain.signals import WithdrawalReason


def _person(line: str) -> str:
    parts = line.split(";")
    if len(parts) != 3:
        raise InputError("line", "expected surname;YYYY-MM-DD;gender")
    return nl_person(*parts)


def _address(line: str) -> str:
    parts = line.split(";")
    if len(parts) not in (2, 3):
        raise InputError("line", "expected postcode;house number;suffix")
    return nl_address(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


CANONICAL: dict[str, Callable[[str], str]] = {"bsn": nl_bsn, "person": _person, "address": _address}


def canonical_inputs(kind: str, lines: Sequence[str]) -> list[str]:
    build = CANONICAL[kind]
    inputs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            inputs.append(build(line.rstrip("\n")))
        except InputError as error:
            # The line number, never the line: it holds a BSN or a name.
            raise InputError(f"line {number}", error.detail) from None
    return inputs


def _connect(args: argparse.Namespace) -> VirClient:
    """The index of ``--url`` and the key holders of ``--keyholder`` (``--threshold`` of
    them); with ``--dev-org``, those of ``.vir/dev/endpoints.json`` unless given."""
    retry = RetryPolicy(max_retries=args.retries, max_wait=args.retry_budget)
    if args.dev_org:
        return VirClient.from_dev(
            args.dev_org,
            Path(args.dev_dir),
            args.url,
            retry=retry,
            keyholders=args.keyholder,
            threshold=args.threshold,
        )
    if not (args.cert and args.key and args.ca):
        raise ClientError("give --ca, --cert and --key, or --dev-org for the development set-up")
    return VirClient(
        args.url or DEFAULT_URL,
        Path(args.ca),
        Path(args.cert),
        Path(args.key),
        retry=retry,
        keyholders=args.keyholder or [DEFAULT_KEYHOLDER_URL],
        threshold=args.threshold or 1,
    )


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("not negative")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError("0..3600 seconds")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a fraction from 0 to 1")
    return value


def _bulk_parsers(sub: Any) -> None:
    """``import FILE.csv`` and ``sync FILE.csv`` (``vir.client.bulk``)."""
    for name, what in (
        ("import", "register the signals of a CSV file (docs/import.md)"),
        ("sync", "register the file's signals, withdraw the active ones it no longer holds"),
    ):
        command = sub.add_parser(name, help=what, description=what)
        command.add_argument("file", type=Path, help="the CSV file (docs/import.md)")
        command.add_argument(
            "--state",
            type=Path,
            help=f"where the progress is kept (default: FILE{bulk.STATE_SUFFIX}); run the "
            "same command again to resume an interrupted run",
        )
        command.add_argument(
            "--restart", action="store_true", help="ignore the state file, start from the top"
        )
        command.add_argument(
            "--limit",
            type=_count,
            help="send at most this many rows, then stop (run again to go on)",
        )
        command.add_argument(
            "--delimiter", choices=[",", ";"], help="default: what the header row uses"
        )
        command.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "sync":
            command.add_argument(
                "--reason",
                choices=[r.value for r in WithdrawalReason],
                default=WithdrawalReason.RISK_ENDED.value,
                help="why the signals the file no longer holds are withdrawn (default "
                "%(default)s: archived, as a case that closed)",
            )
            command.add_argument(
                "--max-withdraw-fraction",
                type=_fraction,
                default=0.5,
                help="refuse to withdraw more than this share of the organisation's active "
                "signals (default %(default)s): a truncated file must not wipe them",
            )
            command.add_argument(
                "--force", action="store_true", help="withdraw past --max-withdraw-fraction"
            )
            command.add_argument(
                "--memory",
                type=Path,
                help=f"what the sync remembers between runs (default: FILE{MEMORY_SUFFIX}): "
                "rows the index holds as they are are not sent again; give the same file "
                "every night when the CSV's name changes",
            )
            command.add_argument(
                "--full",
                action="store_true",
                help="send every row to the index this time (the memory is made anew)",
            )


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler stopping the job): handled as Ctrl-C is."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``Terminated`` in the main thread, as SIGINT
    raises KeyboardInterrupt: the run stops the same way (what was sent is accounted
    for, the state kept, the summary printed) instead of dying on the spot."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(_signum: int, _frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bulk_command(args: argparse.Namespace) -> int:
    """Exit 0: every row is in the index; 1: some rows were refused (conflict, invalid)
    or the service failed; 2: the file cannot be used; 3: the run stopped early (rate
    limit, --limit, a mass withdrawal refused): run it again; 130: interrupted (Ctrl-C);
    143: terminated (SIGTERM)."""
    sync = args.command == "sync"
    options = bulk.Options(
        state=args.state,
        restart=args.restart,
        limit=args.limit,
        delimiter=args.delimiter,
        progress=not args.quiet,
        **(
            {
                "reason": WithdrawalReason(args.reason),
                "max_withdraw_fraction": args.max_withdraw_fraction,
                "force": args.force,
                "remember": True,
                "memory": args.memory,
                "forget": args.full,
            }
            if sync
            else {}
        ),
    )
    summary = bulk.Summary(sync=sync)
    code = 0
    try:
        if not args.file.is_file():
            raise bulk.BulkError(f"{args.file}: no such file")
        bulk.check_header(args.file, args.delimiter)
        with _terminate_as_interrupt(), _connect(args) as client:
            run = bulk.sync_file if sync else bulk.import_file
            run(client, args.file, options, sys.stderr, summary=summary)
    except bulk.BulkError as error:
        print(f"vir-client: {error}", file=sys.stderr)
        return 2
    except bulk.Stopped as error:
        print(f"vir-client: {error}", file=sys.stderr)
        code = 3
    except Terminated:
        print("vir-client: terminated", file=sys.stderr)
        code = 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("vir-client: interrupted", file=sys.stderr)
        code = 130
    except (ClientError, OSError, httpx.HTTPError) as error:
        print(f"vir-client: {error}", file=sys.stderr)
        code = 1
    if summary.rows is not None:
        print("\n".join(summary.lines()))
    if summary.state_kept:
        print(
            f"vir-client: progress kept in {summary.state}: run the same command again to resume",
            file=sys.stderr,
        )
    if code == 0 and (summary.conflicts or summary.invalid):
        code = 1
    return code


@quiet_when_stdout_closes
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vir-client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help=f"the index (default: endpoints.json, else {DEFAULT_URL})")
    parser.add_argument(
        "--keyholder",
        action="append",
        help="a key holder's URL, once per key holder (default: endpoints.json, else "
        f"{DEFAULT_KEYHOLDER_URL})",
    )
    parser.add_argument(
        "--threshold", type=int, help="how many key holders must answer (default: 1)"
    )
    parser.add_argument("--ca", help="CA certificate that signed the service's certificate")
    parser.add_argument("--cert", help="the organisation's client certificate (PEM)")
    parser.add_argument("--key", help="the organisation's private key (PEM)")
    parser.add_argument("--dev-org", help="a demo organisation (OIN, category or name prefix)")
    parser.add_argument("--dev-dir", default=".vir/dev")
    parser.add_argument(
        "--retries",
        type=_count,
        default=RetryPolicy.max_retries,
        help="send a request refused with 429 or 503 again at most this often, after "
        "Retry-After (default %(default)s; 0: never)",
    )
    parser.add_argument(
        "--retry-budget",
        type=_seconds,
        default=RetryPolicy.max_wait,
        help="at most this many seconds of waiting for retries in all (default %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    pseudo = sub.add_parser("pseudonymise", help="identities on stdin → pseudonyms on stdout")
    pseudo.add_argument("kind", choices=sorted(CANONICAL))
    pseudo.add_argument("--json", action="store_true", help="print {epoch, pseudonyms} as JSON")
    access = sub.add_parser("access", help="privacy officer: what is held on one person")
    # A person's right of access: the API looks up a person's pseudonym, never an address's.
    access.add_argument("kind", choices=("bsn", "person"))
    access.add_argument("--pdf", help="write the Dutch PDF here instead of printing JSON")
    address = sub.add_parser(
        "address", help="an address officer: the exclusion list of institutional addresses"
    ).add_subparsers(dest="address_command", required=True)
    exclude = address.add_parser(
        "exclude", help="'postcode;house number;suffix' on stdin → on the exclusion list"
    )
    exclude.add_argument("--label", required=True, help="what the address is, e.g. a shelter")
    address.add_parser(
        "include", help="'postcode;house number;suffix' on stdin → off the exclusion list"
    )
    address.add_parser("list", help="the labels on the exclusion list")
    _veilig_thuis_parsers(sub)
    _bulk_parsers(sub)
    inbox.add_parsers(sub)
    matchregie.add_parsers(sub)
    matchregie.add_follow_up_parsers(sub)
    reports.add_parsers(sub)
    args = parser.parse_args(argv)
    if args.command == "report":
        return reports.command(args, _connect)
    if args.command == "notifications":
        return inbox.notifications_command(args, _connect)
    if args.command == "matches":
        return inbox.matches_command(args, _connect)
    if args.command == "match":
        return matchregie.command(args, _connect)
    if args.command == "follow-up":
        return matchregie.follow_up_command(args, _connect)
    if args.command == "address":
        return _address_command(args)
    if args.command in ("import", "sync"):
        return _bulk_command(args)
    if args.command in ("consult", "feedback", "organisations"):
        return _veilig_thuis_command(args)

    try:
        inputs = canonical_inputs(args.kind, sys.stdin.readlines())
        if not inputs:
            raise ClientError("no input lines on stdin")
        if args.command == "access":
            if len(inputs) != 1:
                raise ClientError("give exactly one identity for an access request")
            if args.pdf:
                # What the index holds on a person: for the data subject alone. The file
                # is made first: a --pdf that cannot be written stops the request (which
                # is audited) before it is made.
                with private_file(Path(args.pdf)) as pdf, _connect(args) as client:
                    pdf.write(client.access_report_pdf(inputs[0]))
                print(f"vir-client: written {args.pdf}")
            else:
                with _connect(args) as client:
                    print(json.dumps(client.access_report(inputs[0]), indent=2))
            return 0
        with _connect(args) as client:
            result = client.pseudonymise(inputs)
    except FAILURES as error:
        return failed(error)
    if args.json:
        print(json.dumps({"epoch": result.epoch, "pseudonyms": result.pseudonyms}))
    else:
        print("\n".join(result.pseudonyms))
    return 0


def _veilig_thuis_parsers(sub: Any) -> None:
    """``consult``, ``feedback`` (Veilig Thuis) and ``organisations`` (who takes part)."""
    consult = sub.add_parser(
        "consult",
        help="Veilig Thuis: who is or was involved with one identity on stdin",
        description="Veilig Thuis: who is or was involved with the young person on stdin, "
        "or with --household, with the household of the parent on stdin (JSON).",
    )
    consult.add_argument("kind", choices=["bsn", "person"])
    consult.add_argument(
        "--purpose",
        required=True,
        help="triage, safety_assessment, investigation or advice (logged with the consultation)",
    )
    consult.add_argument(
        "--household",
        action="store_true",
        help="the identity is a parent: the reporters of every young person linked to them",
    )
    feedback = sub.add_parser(
        "feedback",
        help="Veilig Thuis: tell the reporters a consultation found where it stands",
    )
    feedback.add_argument("consultation_id", help="the consultation_id `consult` printed")
    feedback.add_argument("code", choices=[c.value for c in FeedbackCode])
    listing = sub.add_parser(
        "organisations", help="the organisations connected in your region (name, category)"
    )
    listing.add_argument("--region", help="your own region (the default); another is refused")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")


def _veilig_thuis_command(args: argparse.Namespace) -> int:
    try:
        with _connect(args) as client:
            if args.command == "organisations":
                found = consultations.connected_organisations(client, args.region)
                lines = [f"{item['category_label']:<32}  {item['name']}" for item in found]
                print(
                    json.dumps(found, indent=2, ensure_ascii=False)
                    if args.json
                    else "\n".join(lines)
                )
                return 0
            if args.command == "feedback":
                consultations.give_feedback(client, args.consultation_id, args.code)
                print(f"vir-client: the reporters are told: {FeedbackCode(args.code).label}")
                return 0
            inputs = canonical_inputs(args.kind, sys.stdin.readlines())
            if len(inputs) != 1:
                raise ClientError("give exactly one identity on stdin")
            answer = consultations.consult(
                client, inputs[0], args.purpose, household=args.household
            )
    except FAILURES as error:
        return failed(error)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


def _address_command(args: argparse.Namespace) -> int:
    try:
        with _connect(args) as client:
            if args.address_command == "list":
                for item in client.address_exclusions():
                    print(f"{item['created_at'][:10]}  {item['label']}")
                return 0
            inputs = canonical_inputs("address", sys.stdin.readlines())
            if len(inputs) != 1:
                raise ClientError("give exactly one address on stdin")
            if args.address_command == "include":
                client.include_address(inputs[0])
            else:
                client.exclude_address(inputs[0], args.label)
    except FAILURES as error:
        return failed(error)
    if args.address_command == "include":
        print("vir-client: taken off the exclusion list; it makes household matches again")
    else:
        print(f"vir-client: excluded {args.label!r}; it no longer makes household matches")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
