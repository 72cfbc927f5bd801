"""The channels a worker delivers on, as configured (``make_channels``)."""

from __future__ import annotations

import datetime as dt

from vir.delivery.channels import Channel
from vir.delivery.email import email_channel
from vir.delivery.webhook import WebhookChannel
from vir.delivery.worker import Render, Worker
from vir.domain.clock import Clock
from vir.settings import Settings
from vir.store.db import Database


def make_channels(settings: Settings, db: Database, clock: Clock) -> list[Channel]:
    """The webhook channel always (an organisation without a webhook gets no webhook
    deliveries); e-mail when configured. A channel configured wrongly raises
    ConfigurationError: the service refuses to start."""
    channels: list[Channel] = [
        WebhookChannel(
            db,
            keys_dir=settings.keys_dir,
            dev=settings.dev,
            timeout=settings.webhook_timeout_seconds,
            retry_hours=settings.webhook_retry_hours,
            source=settings.webhook_source,
            ca_file=settings.webhook_ca_file,
        )
    ]
    email = email_channel(settings, db, clock)
    if email is not None:
        channels.append(email)
    return channels


def make_worker(settings: Settings, db: Database, clock: Clock, render: Render) -> Worker:
    """A worker over the configured channels (``vir serve``'s thread, ``vir worker``)."""
    return Worker(
        db,
        make_channels(settings, db, clock),
        clock,
        render,
        lease=dt.timedelta(seconds=settings.delivery_lease_seconds),
    )
