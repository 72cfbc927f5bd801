"""``vir keys rekey|epochs|retire``: the index's side of a key rotation.

vir keys rekey --token FILE   convert every stored pseudonym to the token's new epoch
                              (starts, or resumes after an interruption; then switches)
vir keys epochs               the index's key epochs and their states
vir keys retire               retire the epochs whose grace period is over

Added to ``vir keys`` by ``vir.cli.build_parser`` (``add_parsers``). Output names
tables, columns, counts and epochs, never a pseudonym or the rekey factor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vir.domain.errors import ConfigurationError
from vir.settings import Settings

if TYPE_CHECKING:
    from vir.services.rekey import RekeyResult
    from vir.store.db import Database

SubParsers = argparse._SubParsersAction  # argparse names no public type for it


def add_parsers(keys_subparsers: SubParsers[argparse.ArgumentParser]) -> None:
    """The ``rekey``, ``epochs`` and ``retire`` commands of ``vir keys``."""
    rekey = keys_subparsers.add_parser(
        "rekey", help="convert every stored pseudonym to a new key epoch (a rekey token)"
    )
    rekey.add_argument("--token", required=True, help="the key holder's rekey token file")
    rekey.add_argument("--batch", type=int, default=4096, help="rows per batch")
    rekey.add_argument(
        "--workers", type=int, default=None, help="processes that multiply (default: per core)"
    )
    rekey.add_argument("--quiet", action="store_true", help="no progress on standard error")
    rekey.set_defaults(run=cmd_keys_rekey)
    keys_subparsers.add_parser("epochs", help="the index's key epochs").set_defaults(
        run=cmd_keys_epochs
    )
    keys_subparsers.add_parser(
        "retire", help="retire the key epochs whose grace period is over"
    ).set_defaults(run=cmd_keys_retire)


def cmd_keys_rekey(settings: Settings, args: argparse.Namespace) -> int:
    """Verify the token, start (or resume) its rekey, run it to the switch, and say what
    was converted per column."""
    from vir.crypto.rekey_token import read_token, token_file
    from vir.domain.clock import utc_now
    from vir.services import rekey

    token = read_token(token_file(Path(args.token)), _verifier_key(settings))
    db = _database(settings)
    try:
        # A run killed between a commit and the integration after it left that commit's
        # audit entries staged (the switch's, when killed right after it): integrated
        # now, so the log is whole when this run ends, even when there is nothing to do.
        db.integrate()
        started = rekey.start(db, token, utc_now())
        if started == rekey.Started.DONE:
            print(f"vir: epoch {token.to_epoch} is current already: this rekey is done")
            return 0
        print(
            f"vir: rekey from epoch {token.from_epoch} to epoch {token.to_epoch} {started}",
            file=sys.stderr,
        )
        bar = None if args.quiet else _Bar()
        try:
            result = rekey.run(
                db,
                clock=utc_now,
                grace=dt.timedelta(days=settings.epoch_grace_days),
                batch=args.batch,
                workers=args.workers,
                progress=bar,
            )
        except rekey.RekeyBlocked as blocked:
            if bar is not None:
                bar.end()
            _report(blocked.result)
            print(f"vir: {blocked.detail}", file=sys.stderr)
            return 1
        if bar is not None:
            bar.end()
    finally:
        db.dispose()
    _report(result)
    if result.switched and result.retire_after is not None:
        until = result.retire_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        print(
            f"vir: epoch {result.to_epoch} is current; epoch {result.from_epoch} is accepted "
            f"(converted on arrival) until {until}"
        )
    elif result.superseded:
        print(f"vir: another run of this rekey switched to epoch {token.to_epoch}")
    return 0


def cmd_keys_epochs(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.services import rekey

    db = _database(settings)
    try:
        records = rekey.listing(db)
    finally:
        db.dispose()
    for record in records:
        when = {
            "current": ("since", record.activated_at),
            "incoming": ("rekey started", record.created_at),
            "previous": ("accepted until", record.retire_after),
            "retired": ("since", record.retire_after),  # no longer accepted
        }[record.state.value]
        moment = when[1].strftime("%Y-%m-%dT%H:%M:%SZ") if when[1] is not None else "-"
        print(f"epoch {record.epoch}: {record.state.value} ({when[0]} {moment})")
    return 0


def cmd_keys_retire(settings: Settings, _args: argparse.Namespace) -> int:
    from vir.domain.clock import utc_now
    from vir.services import rekey

    db = _database(settings)
    try:
        retired = rekey.retire(db, utc_now())
    finally:
        db.dispose()
    if retired:
        print(f"vir: retired epoch(s) {', '.join(str(e) for e in retired)}: no longer accepted")
    else:
        print("vir: no key epoch is past its grace period")
    return 0


def _report(result: RekeyResult) -> None:
    for label, count in result.converted.items():
        invalid = result.invalid.get(label, 0)
        extra = f", {invalid} not valid elements" if invalid else ""
        print(f"{label}: {count} converted{extra}")
    for name, rows in result.swapped.items():
        print(f"{name}: {rows} rows switched to epoch {result.to_epoch}")


def _verifier_key(settings: Settings) -> str:
    path = settings.keyholder_verifier_key
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigurationError(
            f"no key holder verifier key at {path}: copy the key holder's verifier key "
            "there, or point VIR_KEYHOLDER_VERIFIER_KEY at it"
        ) from None


def _database(settings: Settings) -> Database:
    """A database whose schema is current (closed by the command that opened it)."""
    from vir.store.db import Database
    from vir.store.migrate import require_current

    db = Database.connect(settings.database_url)
    try:
        require_current(db.engine)
    except BaseException:
        db.dispose()
        raise
    return db


class _Bar:
    """Progress on standard error: on a terminal a line per table, rewritten as it goes;
    to a log a line at most every few seconds per table, and its last."""

    def __init__(self) -> None:
        self._terminal = sys.stderr.isatty()
        self._shown: dict[str, float] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        if self._terminal:
            if self._shown and name not in self._shown:
                sys.stderr.write("\n")
            self._shown[name] = 0.0
            sys.stderr.write(f"\rvir: rekeying {name}: {done}/{total}")
            return
        now = time.monotonic()
        if done >= total or now - self._shown.get(name, 0.0) >= 5.0:
            self._shown[name] = now
            sys.stderr.write(f"vir: rekeying {name}: {done}/{total}\n")

    def end(self) -> None:
        if self._terminal and self._shown:
            sys.stderr.write("\n")
