"""``vir org webhook``, ``vir outbox list|retry`` and ``vir worker`` (docs/delivery.md).

Nothing here prints a URL, a secret or a notification's content: the outbox is listed
by ids, states, attempt counts and short error codes.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from vir.cli_databases import open_database
from vir.domain.clock import utc_now
from vir.domain.errors import InputError
from vir.settings import Settings

if TYPE_CHECKING:
    from vir.store.db import Database

Command = Callable[[Settings, argparse.Namespace], int]


def _database(settings: Settings) -> Database:
    return open_database(settings.database_url)


def cmd_org_webhook(settings: Settings, args: argparse.Namespace) -> int:
    from vir.delivery import admin
    from vir.domain.organisations import Oin

    oin = str(Oin(args.oin))
    if args.disable:
        if args.url or args.secret_file:
            raise InputError("disable", "give --disable alone, without --url or --secret-file")
        removed = admin.disable_webhook(_database(settings), oin, utc_now())
        print(f"vir: webhook {'disabled' if removed else 'was not set'} for {oin}")
        return 0
    if not args.secret_file:
        raise InputError("secret-file", "give --url and --secret-file (or --disable)")
    secret = admin.read_secret_file(Path(args.secret_file))
    admin.set_webhook(
        _database(settings),
        oin,
        args.url or None,  # none: a new secret, the URL kept
        secret,
        utc_now(),
        dev=settings.dev,
        keys_dir=settings.keys_dir,
    )
    # Neither the URL (it may carry a token) nor the secret is echoed.
    if not args.url:
        print(f"vir: webhook secret replaced for {oin}; new deliveries are signed with it")
    else:
        print(f"vir: webhook set for {oin}; new notifications are delivered there")
    return 0


def cmd_outbox_list(settings: Settings, args: argparse.Namespace) -> int:
    from vir.delivery import admin

    rows = admin.listing(_database(settings), args.state, args.limit)
    print("id\tnotification\tchannel\toin\tstate\tattempts\tnext_attempt_at\tlast_error")
    for r in rows:
        print(
            f"{r.id}\t{r.notification_id}\t{r.channel}\t{r.oin}\t{r.state}\t{r.attempts}\t"
            f"{r.next_attempt_at.isoformat(timespec='seconds')}\t{r.last_error or '-'}"
        )
    return 0


def cmd_outbox_retry(settings: Settings, args: argparse.Namespace) -> int:
    from vir.delivery import admin

    count = admin.retry(_database(settings), utc_now(), delivery_id=args.id, dead=args.dead)
    print(f"vir: {count} deliver{'y' if count == 1 else 'ies'} due again")
    return 0


def cmd_outbox_seal_secrets(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.delivery import admin

    count = admin.seal_secrets(_database(settings), utc_now(), keys_dir=settings.keys_dir)
    print(f"vir: {count} webhook secret{'' if count == 1 else 's'} sealed")
    return 0


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    """Deliver until SIGTERM or SIGINT; any number of these may run on one database."""
    from vir.api.routes.signals import notification_item
    from vir.delivery.registry import make_worker

    worker = make_worker(settings, _database(settings), utc_now, notification_item)

    def stop(_signum: int, _frame: object) -> None:
        worker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("vir: delivery worker running (SIGTERM or Ctrl-C stops it)", flush=True)
    worker.run_forever()
    worker.stop()
    return 0


def _delivery_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError("a delivery id (a number, from vir outbox list)")
    return int(text)


def add_org_webhook(org: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hook = org.add_parser(
        "webhook", help="push notifications to the organisation's webhook (or --disable)"
    )
    hook.add_argument("--oin", required=True)
    hook.add_argument("--url", help="https:// URL (http://127.0.0.1 only with VIR_DEV=1)")
    hook.add_argument(
        "--secret-file",
        help="file (chmod 600) holding the whsec_ Standard Webhooks secret; without --url: "
        "a new secret for the webhook already set (a rotation, docs/delivery.md)",
    )
    hook.add_argument("--disable", action="store_true", help="remove the webhook")
    hook.set_defaults(run=cmd_org_webhook)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = sub.add_parser("outbox", help="the delivery outbox (ids only)").add_subparsers(
        dest="outbox_command", required=True
    )
    listing = outbox.add_parser("list", help="deliveries: ids, state, attempts, error code")
    listing.add_argument(
        "--state", choices=("pending", "retrying", "delivered", "dead"), help="only these"
    )
    listing.add_argument("--limit", type=int, default=1000)
    listing.set_defaults(run=cmd_outbox_list)
    retry = outbox.add_parser("retry", help="deliver again: one by --id, or every --dead one")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=_delivery_id, help="a delivery id from vir outbox list")
    which.add_argument("--dead", action="store_true", help="every dead delivery")
    retry.set_defaults(run=cmd_outbox_retry)
    outbox.add_parser(
        "seal-secrets",
        help="encrypt webhook secrets stored plain (before vir encrypted them) in place",
    ).set_defaults(run=cmd_outbox_seal_secrets)
    sub.add_parser(
        "worker", help="deliver notifications (webhooks, e-mail) until stopped"
    ).set_defaults(run=cmd_worker)
