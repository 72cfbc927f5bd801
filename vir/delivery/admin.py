"""What an operator does with delivery: an organisation's webhook, the outbox listed,
deliveries retried (``vir org webhook``, ``vir outbox``; docs/delivery.md).

Every change is in the database, so every instance and worker sees it at once; every
change is audited with ids only (never the URL or the secret).
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

from sqlalchemy.orm import Session

from vir.audit.actions import Action
from vir.audit.chain import Outcome
from vir.crypto.secretbox import PLAIN_PREFIX, load_secret_box
from vir.delivery.channels import State
from vir.delivery.webhook import check_secret, check_url
from vir.domain.errors import InputError
from vir.store import audit_log, outbox
from vir.store.db import Database
from vir.store.organisations import get_organisation

MAX_SECRET_FILE = 1024


def read_secret_file(path: Path) -> str:
    """The ``whsec_`` secret in ``path``: a file only its owner may read (chmod 600).
    Errors name the field, never the content."""
    try:
        info = path.stat()
    except OSError:
        raise InputError("secret-file", "cannot read the file") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError("secret-file", "not a regular file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            "secret-file", f"readable by group or others; run: chmod 600 {os.fspath(path)}"
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SECRET_FILE + 1)
    except OSError:
        raise InputError("secret-file", "cannot read the file") from None
    if len(raw) > MAX_SECRET_FILE:
        raise InputError("secret-file", "too large for a webhook secret")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InputError("secret", "not a Standard Webhooks secret (whsec_...)") from None
    return check_secret(text)


def set_webhook(
    db: Database,
    oin: str,
    url: str | None,
    secret: str,
    now: dt.datetime,
    *,
    dev: bool,
    keys_dir: Path,
) -> None:
    """Set (or replace) the organisation's webhook; from its next notification on, every
    instance delivers there. The secret is stored sealed under the index's webhook
    secret key in ``keys_dir`` (vir.crypto.secretbox), bound to the organisation.

    ``url`` None: a new secret for the webhook already set, its URL kept (a rotation: the
    receiver accepts the old and the new secret until it has seen the new one used,
    docs/delivery.md); InputError when it has none."""
    url = None if url is None else check_url(url, dev=dev)
    secret = check_secret(secret)
    with db.write() as session:
        _require_reporting(session, oin)
        if url is None:
            hook = outbox.webhook(session, oin)
            if hook is None:
                raise InputError("url", "the organisation has no webhook yet: give --url too")
            url = hook.url
        sealed = load_secret_box(keys_dir).seal(secret, oin)
        outbox.set_webhook(session, outbox.Webhook(oin, url, sealed), now)
        _audit(session, oin, "set", now)


def seal_secrets(db: Database, now: dt.datetime, *, keys_dir: Path) -> int:
    """Seal every webhook secret still stored plain (written before vir sealed them),
    in place; audited per organisation. Returns how many. Sealed ones are left alone."""
    box = load_secret_box(keys_dir)
    count = 0
    with db.write() as session:
        for hook in outbox.webhooks(session):
            if not hook.secret.startswith(PLAIN_PREFIX):
                continue
            sealed = box.seal(check_secret(hook.secret), hook.oin)
            if outbox.replace_secret(session, hook.oin, hook.secret, sealed):
                _audit(session, hook.oin, "sealed", now)
                count += 1
    return count


def disable_webhook(db: Database, oin: str, now: dt.datetime) -> bool:
    """Remove the organisation's webhook (URL and secret); deliveries still open for it
    go dead when next tried ("disabled"). False when it had none."""
    with db.write() as session:
        _require_reporting(session, oin)
        removed = outbox.remove_webhook(session, oin)
        if removed:
            _audit(session, oin, "disabled", now)
    return removed


def listing(db: Database, state: str | None, limit: int = 1000) -> list[outbox.Listed]:
    if state is not None and state not in {s.value for s in State}:
        raise InputError("state", "one of " + ", ".join(s.value for s in State))
    with db.read() as session:
        return outbox.listed(session, state, limit)


def retry(db: Database, now: dt.datetime, *, delivery_id: int | None, dead: bool) -> int:
    """Put one delivery (not delivered yet) or every dead one back as pending, due now,
    with a fresh retry window; audited. Returns how many."""
    with db.write() as session:
        count = outbox.retry(session, now, delivery_id=delivery_id, dead=dead)
        if delivery_id is not None and not count:
            # An operator's typo must not read as done: say which of the two it is.
            state = outbox.delivery_state(session, delivery_id)
            raise InputError(
                "id",
                "no delivery has this id (see vir outbox list)"
                if state is None
                else "this delivery was delivered already; nothing to retry",
            )
        if count:
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.ADMIN_DELIVERY_RETRIED,
                    Outcome.SUCCESS,
                    now,
                    actor="admin",
                    objects={"count": count},
                ),
            )
    return count


def _require_reporting(session: Session, oin: str) -> None:
    org = get_organisation(session, oin)
    if org is None or not org.category.reports:
        raise InputError("oin", "not a registered reporting organisation")


def _audit(session: Session, oin: str, state: str, now: dt.datetime) -> None:
    audit_log.append(
        session,
        audit_log.new_event(
            Action.ADMIN_WEBHOOK_CHANGED,
            Outcome.SUCCESS,
            now,
            organisation=oin,
            actor="admin",
            objects={"state": state},
        ),
    )
