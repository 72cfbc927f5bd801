"""E-mail end to end: a real ``vir serve`` (its in-process delivery worker) and a real SMTP
server with STARTTLS and AUTH; organisations register through the API with the bundled
client, and each professional gets one content-free e-mail. And ``vir serve`` refuses
to start on a mail server URL it must not use, without showing the password."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.mailroom import mail_pki, password_file
from support.service import RunningService, start_service
from support.smtpd import PASSWORD, MailServer, Received

from vir.client import nl_bsn

pytestmark = pytest.mark.integration

SENDER = "vir@vir-test.example"
BSN = "123456782"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunningService, MailServer]]:
    certs = mail_pki()
    with MailServer(certs) as mail:
        service = start_service(
            tmp_path / "vir",
            VIR_SMTP_URL=mail.url(),
            VIR_SMTP_PASSWORD_FILE=str(password_file(tmp_path)),
            VIR_SMTP_FROM=SENDER,
            VIR_SMTP_CA_FILE=str(certs.ca_file),
            VIR_SMTP_TIMEOUT_SECONDS="5",
        )
        try:
            yield service, mail
        finally:
            service.stop()


def _wait_for(mail: MailServer, count: int, seconds: float = 30) -> list[Received]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(mail.received) < count:
        time.sleep(0.1)
    return mail.received


def test_vir_serve_emails_each_professional_their_own_reference(
    served: tuple[RunningService, MailServer],
) -> None:
    service, mail = served
    school, gp = service.org("education"), service.org("gp")
    for org in (school, gp):
        service.vir("org", "email", "--oin", org.oin, "--enable")
    with service.client("education") as client:
        [child] = client.pseudonymise([nl_bsn(BSN)]).pseudonyms
        epoch = client.pseudonymise([nl_bsn(BSN)]).epoch
        client.register_signal(
            {
                "local_ref": "LL-2026-0042",
                "epoch": epoch,
                "person": child,
                "professional": {"name": "Karim Bouali", "email": "k.bouali@school.example"},
            }
        )
    with service.client("gp") as client:
        [child] = client.pseudonymise([nl_bsn(BSN)]).pseudonyms
        client.register_signal(
            {
                "local_ref": "HA.77:31",
                "epoch": epoch,
                "person": child,
                "professional": {"name": "Els Jansen", "email": "e.jansen@gp.example"},
            }
        )
    received = _wait_for(mail, 2)
    assert sorted(m.rcpt_tos[0] for m in received) == [
        "e.jansen@gp.example",
        "k.bouali@school.example",
    ]
    for message in received:
        raw = message.raw.decode("ascii")
        own, other = (
            ("LL-2026-0042", "HA.77:31")
            if message.rcpt_tos == ["k.bouali@school.example"]
            else ("HA.77:31", "LL-2026-0042")
        )
        assert own in message.text() and other not in raw
        for word in (school.name, gp.name, school.oin, gp.oin, BSN, child, "Karim", "Els"):
            assert word not in raw
        assert message.authenticated and message.tls
    # The owning organisation sees the state (GET /v1/notifications, "delivery").
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with service.client("education") as client:
            items, _cursor = client.notifications()
        if items and items[0].get("delivery", {}).get("email") == "delivered":
            break
        time.sleep(0.2)
    assert items[0]["delivery"]["email"] == "delivered"
    assert PASSWORD not in service.log()


def test_vir_serve_refuses_a_password_in_the_smtp_url(tmp_path: Path) -> None:
    with pytest.raises(AssertionError) as refused:
        start_service(
            tmp_path / "vir",
            keyholders=False,
            VIR_SMTP_URL=f"smtp://mailer:{PASSWORD}@mail.example.nl:587",
            VIR_SMTP_FROM=SENDER,
        )
    assert "VIR_SMTP_URL" in str(refused.value)
    assert PASSWORD not in str(refused.value)
