"""The e-mail channel under attack: header injection through what a back office can
write (a professional's name and address, a local_ref), a mail server URL that asks for
less than STARTTLS, and the SMTP password kept out of every log line, error and repr."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from support.instore import ORGS
from support.mailroom import Mailroom, address, mail_pki, mail_settings, mailroom
from support.smtpd import PASSWORD, USER, MailServer

from vir.delivery.channels import Due, Result
from vir.delivery.email import email_channel, sender_address
from vir.delivery.smtp import SendFailed, SmtpSender, parse_smtp_url, read_password
from vir.domain.errors import ConfigurationError
from vir.store.tables import DeliveryRow, NotificationRow, SignalRow

pytestmark = pytest.mark.integration


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Mailroom]:
    with mailroom(tmp_path) as made:
        yield made


def _errors(room: Mailroom) -> dict[str, tuple[str, str | None]]:
    """Per organisation: the state and last error of its e-mail delivery."""
    with room.w.store.db.read() as session:
        found = session.execute(
            select(DeliveryRow.oin, DeliveryRow.state, DeliveryRow.last_error).where(
                DeliveryRow.channel == "email"
            )
        )
        return {oin: (state, error) for oin, state, error in found}


# --- Header injection ---------------------------------------------------------------


def test_an_address_with_a_line_break_is_never_a_header(room: Mailroom) -> None:
    """The intake refuses such an address; one written past it (an old row, a bug) is
    checked again when the e-mail is made, and nothing is sent."""
    w = room.w
    w.register(0, "ada", "school-ada", name="Karim Bouali")
    gp = w.register(1, "ada", "gp-ada", name="Els Jansen")
    hostile = "els@org1.example\r\nBcc: thief@evil.example"
    with w.store.db.write() as session:
        session.execute(
            update(SignalRow).where(SignalRow.id == gp.id).values(professional_email=hostile)
        )
    room.run()
    assert [m.rcpt_tos for m in room.server.received] == [[address("Karim Bouali", 0)]]
    assert all(b"evil.example" not in m.raw for m in room.server.received)
    assert _errors(room)[str(ORGS[1].oin)] == ("dead", "no-address")


def test_a_name_with_a_line_break_goes_nowhere_near_the_message(room: Mailroom) -> None:
    w = room.w
    gp = w.register(1, "bo", "gp-bo", name="Els Jansen")
    with w.store.db.write() as session:
        session.execute(
            update(SignalRow)
            .where(SignalRow.id == gp.id)
            .values(professional_name="Els\r\nBcc: thief@evil.example\r\n\r\nDear")
        )
    w.register(0, "bo", "school-bo", name="Karim Bouali")
    room.run()
    [mail] = room.to(address("Els Jansen", 1))
    assert mail.message["Bcc"] is None and b"evil" not in mail.raw and b"Els" not in mail.raw
    assert len(room.server.received) == 2
    assert all(len(m.rcpt_tos) == 1 for m in room.server.received)


@pytest.mark.parametrize(
    "ref",
    [
        "case-1\r\nBcc: thief@evil.example",
        "case-1\n.\nMAIL FROM:<x@evil.example>",
        "<script>alert(1)</script>",
        "case 1",
    ],
)
def test_a_local_ref_outside_its_alphabet_is_never_sent(room: Mailroom, ref: str) -> None:
    """local_ref is A-Z a-z 0-9 . _ : - at intake; a stored one that is not (written
    past the intake) makes no e-mail at all."""
    w = room.w
    w.register(0, "cy", "school-cy", name="Karim Bouali")
    w.register(1, "cy", "gp-cy", name="Els Jansen")
    with w.store.db.write() as session:
        session.execute(
            update(NotificationRow)
            .where(NotificationRow.oin == str(ORGS[1].oin))
            .values(local_ref=ref)
        )
    room.run()
    assert room.to(address("Els Jansen", 1)) == []
    assert all(b"evil" not in m.raw and b"script" not in m.raw for m in room.server.received)
    assert _errors(room)[str(ORGS[1].oin)] == ("dead", "bad-reference")


def test_a_delivery_for_another_organisations_signal_is_refused(room: Mailroom) -> None:
    """Should a delivery ever name a signal of another organisation than its own, the
    channel sends nothing rather than that organisation's reference to a stranger."""
    w = room.w
    school = w.register(0, "di", "school-di", name="Karim Bouali")
    due = Due(
        id=1,
        channel="email",
        notification_id="00000000-0000-4000-8000-000000000001",
        oin=str(ORGS[1].oin),
        position=1,
        type="match.created",
        local_ref="gp-di",
        signal_id=school.id,
        created_at=w.clock.now,
        item={},
        attempts=0,
        first_attempt_at=None,
    )
    [outcome] = room.channel.deliver([due], w.clock.now)
    assert (outcome.result, outcome.error) == (Result.FAILED, "mismatch")
    assert room.server.received == []


def test_a_sender_address_with_a_line_break_is_refused() -> None:
    for hostile in ("vir@x.example\r\nBcc: a@evil.example", "Vir <vir@x.example>", ""):
        with pytest.raises(ConfigurationError) as refused:
            sender_address(hostile)
        assert "VIR_SMTP_FROM" in refused.value.detail and "evil" not in refused.value.detail


# --- The mail server URL --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.nl",
        "https://mail.example.nl",
        "smtps://mail.example.nl:465",
        "lmtp://mail.example.nl",
        "mail.example.nl:587",
        "smtp:mail.example.nl",
        "smtp://",
        "smtp://mail.example.nl:0",
        "smtp://mail.example.nl:99999",
        "smtp://mail.example.nl/relay",
        "smtp://mail.example.nl?starttls=no",
        "smtp://mail.example.nl#x",
        "smtp://mail.example.nl\r\n:25",
        "smtp://mail_example.nl",
        "smtp://us er@mail.example.nl",
        "smtp://mäil.example.nl",
    ],
)
def test_anything_but_smtp_with_starttls_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_smtp_url(url, dev=True)
    assert refused.value.detail.startswith("VIR_SMTP_URL ")
    given = url.split("://", 1)[-1]
    assert not given or given not in refused.value.detail


@pytest.mark.parametrize(
    "url",
    ["smtp+insecure://mail.example.nl", "smtp+insecure://10.0.0.5:25", "smtp+insecure://[::2]"],
)
def test_plain_smtp_to_another_host_is_refused_even_in_development(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"only to localhost, 127\.0\.0\.1 or ::1"):
        parse_smtp_url(url, dev=True)


def test_plain_smtp_to_this_machine_only_in_development() -> None:
    for host in ("localhost", "127.0.0.1", "[::1]"):
        with pytest.raises(ConfigurationError, match="VIR_DEV=1"):
            parse_smtp_url(f"smtp+insecure://{host}:1025", dev=False)
        server = parse_smtp_url(f"smtp+insecure://{host}:1025", dev=True)
        assert (server.starttls, server.port) == (False, 1025)
    secure = parse_smtp_url("smtp://mailer%40example.nl@Mail.Example.NL", dev=False)
    assert (secure.host, secure.port, secure.username, secure.starttls) == (
        "mail.example.nl",
        587,
        "mailer@example.nl",
        True,
    )


def test_a_server_without_starttls_gets_no_password_and_no_message(tmp_path: Path) -> None:
    """smtp:// never falls back to plain text, also when the server (or someone on the
    path, stripping the offer) does not offer STARTTLS."""
    with MailServer(None, tls=False, auth=False) as plain:
        url = f"smtp://{USER}@127.0.0.1:{plain.port}"
        secret = _password_file(tmp_path)
        sender = SmtpSender.configure(
            url, password_file=secret, ca_file=mail_pki().ca_file, timeout=5, dev=True
        )
        with pytest.raises(SendFailed) as failed:
            sender.send(_message(), "vir@vir-test.example", "k@org0.example")
        assert failed.value.code == "no-starttls" and failed.value.server_down
        assert plain.received == [] and plain.logins == []


# --- The password -------------------------------------------------------------------


def _password_file(folder: Path, content: str = PASSWORD + "\n", mode: int = 0o600) -> Path:
    path = folder / f"password-{mode:o}"
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


def _message() -> object:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "vir"
    message.set_content("x")
    return message


def test_a_password_in_the_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigurationError) as refused:
        parse_smtp_url(f"smtp://{USER}:{PASSWORD}@mail.example.nl:587", dev=False)
    assert PASSWORD not in refused.value.detail and "VIR_SMTP_PASSWORD_FILE" in refused.value.detail


def test_the_password_file_is_checked_without_showing_it(tmp_path: Path) -> None:
    loose = _password_file(tmp_path, mode=0o644)
    with pytest.raises(ConfigurationError, match="chmod 600") as refused:
        read_password(loose)
    two = _password_file(tmp_path, PASSWORD + "\nsecond line " + PASSWORD + "\n", 0o600)
    with pytest.raises(ConfigurationError, match="one line") as refused_too:
        read_password(two)
    for error in (refused.value, refused_too.value):
        assert PASSWORD not in str(error)
    secret = read_password(_password_file(tmp_path, PASSWORD + "\n", 0o400))
    assert secret.reveal() == PASSWORD
    assert PASSWORD not in repr(secret) and PASSWORD not in str(secret)
    assert stat.S_IMODE(os.stat(tmp_path / "password-400").st_mode) == 0o400


def test_a_user_without_a_password_file_and_the_reverse_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="VIR_SMTP_PASSWORD_FILE"):
        SmtpSender.configure(
            "smtp://u@mail.example.nl", password_file=None, ca_file=None, timeout=5, dev=False
        )
    with pytest.raises(ConfigurationError, match="names no user"):
        SmtpSender.configure(
            "smtp://mail.example.nl",
            password_file=_password_file(tmp_path),
            ca_file=None,
            timeout=5,
            dev=False,
        )


def test_a_refused_login_shows_the_password_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong password: the server refuses it, the deliveries retry with a short code,
    and neither that password nor the right one is in any log line, outcome or repr."""
    wrong = "Wrong-" + PASSWORD[::-1]
    caplog.set_level(logging.DEBUG)
    with mailroom(tmp_path) as room:
        secret = tmp_path / "smtp-password"
        secret.write_text(wrong + "\n", encoding="utf-8")
        settings = mail_settings(tmp_path, room.server, mail_pki())
        channel = email_channel(settings, room.w.store.db, room.w.clock)
        assert channel is not None
        room.channel.sender = channel.sender
        room.w.register(0, "eve", "school-eve", name="Karim Bouali")
        room.w.register(1, "eve", "gp-eve", name="Els Jansen")
        room.run()
        assert room.server.received == []
        assert room.server.logins and not any(ok for _user, ok in room.server.logins)
        errors = _errors(room)
        assert {e for _s, e in errors.values()} == {"auth-535"}
        # Every log line but the test mail server's own (aiosmtpd, "mail.log").
        logged = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.")]
        shown = [
            *logged,
            repr(channel),
            repr(channel.sender),
            repr(settings),
            str(errors),
        ]
        for text in shown:
            assert wrong not in text and PASSWORD not in text
        assert dt.timedelta(hours=24) == channel.give_up_after
