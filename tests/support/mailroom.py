"""A world wired for e-mail: the test SMTP server (support.smtpd), the e-mail channel
configured as ``vir serve`` configures it, and the delivery worker on the world's clock."""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from support.instore import ORGS, T0
from support.smtpd import PASSWORD, MailServer, Pki, Received
from support.world import World, world

from vir.delivery.email import EmailChannel, configure_organisation, email_channel
from vir.delivery.worker import Worker
from vir.settings import Settings
from vir.store.email_outbox import Language
from vir.store.tables import DeliveryRow

SENDER = "vir@vir-test.example"


def address(name: str, index: int) -> str:
    """The address support.world gives ``name`` at ``ORGS[index]``."""
    return f"{name.split()[0].lower()}@org{index}.example"


@dataclass
class Mailroom:
    w: World
    server: MailServer
    channel: EmailChannel
    worker: Worker

    def run(self) -> int:
        self.w.store.db.integrate()  # the worker takes numbered notifications only
        return self.worker.run_until_idle()

    def to(self, address: str) -> list[Received]:
        return [m for m in self.server.received if m.rcpt_tos == [address]]

    def states(self) -> dict[str, int]:
        with self.w.store.db.read() as session:
            rows = session.scalars(select(DeliveryRow).where(DeliveryRow.channel == "email"))
            found: dict[str, int] = {}
            for row in rows:
                found[row.state] = found.get(row.state, 0) + 1
            return found

    def next_due(self) -> dt.datetime:
        with self.w.store.db.read() as session:
            due = session.scalar(
                select(DeliveryRow.next_attempt_at)
                .where(
                    DeliveryRow.channel == "email", DeliveryRow.state.in_(("pending", "retrying"))
                )
                .order_by(DeliveryRow.next_attempt_at)
            )
        assert due is not None
        return due

    def enable(self, index: int, language: Language = Language.NL) -> None:
        configure_organisation(
            self.w.store.db, str(ORGS[index].oin), T0, enabled=True, language=language
        )


@functools.cache
def mail_pki() -> Pki:
    """The test mail server's CA and certificate, made once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="vir-mail-pki-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Pki.make(folder)


def password_file(folder: Path) -> Path:
    """``folder/smtp-password`` holding the test server's password, mode 0600 (made when
    missing), as ``VIR_SMTP_PASSWORD_FILE`` wants it."""
    secret = folder / "smtp-password"
    if not secret.exists():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(PASSWORD + "\n")
    return secret


def mail_settings(tmp_path: Path, server: MailServer, certs: Pki, **extra: object) -> Settings:
    values: dict[str, object] = {
        "smtp_url": server.url(),
        "smtp_password_file": password_file(tmp_path),
        "smtp_from": SENDER,
        "smtp_ca_file": certs.ca_file,
        "smtp_timeout_seconds": 5,
        "email_digest_minutes": 15,
    }
    return Settings(**(values | extra))  # type: ignore[arg-type]


@contextmanager
def mailroom(
    tmp_path: Path, *, server_certs: Pki | None = None, **settings: object
) -> Iterator[Mailroom]:
    """A world, a running mail server (with ``server_certs``' certificate, default
    ``mail_pki()``'s), e-mail on for every organisation of ORGS, and the channel trusting
    ``mail_pki()``'s CA."""
    certs = mail_pki()
    with world(tmp_path) as w, MailServer(server_certs or certs) as server:
        configured = mail_settings(tmp_path, server, certs, **settings)
        channel = email_channel(configured, w.store.db, w.clock)
        assert channel is not None
        channel.rng = random.Random(16)
        worker = Worker(w.store.db, [channel], w.clock, lambda n: {}, rng=random.Random(16))
        made = Mailroom(w, server, channel, worker)
        for index in range(len(ORGS)):
            made.enable(index)
        yield made
