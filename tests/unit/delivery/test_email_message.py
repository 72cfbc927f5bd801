"""The e-mail itself (vir.delivery.email.compose), the digest key, the settings that make
the channel, and ``vir org email``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from support.instore import ORGS, Store, fresh_store, template

from vir import cli
from vir.delivery.channels import Due
from vir.delivery.email import Letter, compose, email_channel, message_key
from vir.domain.errors import ConfigurationError, InputError
from vir.settings import Settings
from vir.store import email_outbox
from vir.store.email_outbox import Language, address_hash

NOW = dt.datetime(2026, 12, 2, 8, 30, tzinfo=dt.UTC)
SENDER = "vir@vir-test.example"


def _letter(*refs: str, language: Language = Language.NL) -> Letter:
    return Letter("k.bouali@school.example", refs, language, "abc.vir")


def test_one_reference_in_dutch_with_the_headers_of_an_automatic_message() -> None:
    message = compose(_letter("dossier-17"), sender=SENDER, portal_url=None, now=NOW)
    parsed = message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert parsed["Subject"] == "vir: nieuwe of gewijzigde match"
    assert parsed["Date"] == "Wed, 02 Dec 2026 08:30:00 +0000"
    assert parsed["Message-ID"] == "<abc.vir@vir-test.example>"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Content-Language"] == "nl"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert all(len(line) <= 72 for line in text.splitlines())
    assert "dit eigen kenmerk:\n\n    dossier-17\n" in text
    assert "portaal" not in text
    page = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<code>dossier-17</code>" in page and 'lang="nl"' in page


def test_several_references_in_english_and_the_portal() -> None:
    message = compose(
        _letter("a:1", "b_2", language=Language.EN),
        sender=SENDER,
        portal_url="https://portal.vir.example/matches",
        now=NOW,
    )
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "references of your own:\n\n    a:1\n    b_2\n" in text
    assert "portal: https://portal.vir.example/matches" in " ".join(text.split())
    assert message["Subject"] == "vir: new or changed match"


def test_a_reference_outside_the_local_ref_alphabet_is_refused() -> None:
    for hostile in ("x\r\nBcc: a@b.example", "<b>", "é", ""):
        with pytest.raises(InputError):
            compose(_letter("ok", hostile), sender=SENDER, portal_url=None, now=NOW)


def _due(notification_id: str) -> Due:
    return Due(1, "email", notification_id, "o", 1, "match.created", "r", None, NOW, {}, 0, None)


def test_the_message_id_is_stable_for_the_same_notifications_and_reveals_none() -> None:
    one = message_key([_due("n-1"), _due("n-2")])
    assert one == message_key([_due("n-2"), _due("n-1")])
    assert one != message_key([_due("n-1")])
    assert "n-1" not in one and len(one) <= 64


def test_the_digest_key_is_one_per_mailbox_and_not_the_address() -> None:
    key = address_hash("K.Bouali@School.example")
    assert key == address_hash("k.bouali@school.example") and len(key) == 64
    assert int(key, 16) and "bouali" not in key


def test_the_channel_needs_a_sender_and_valid_settings(tmp_path: Path) -> None:
    assert email_channel(Settings(), None, lambda: NOW) is None  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="VIR_SMTP_FROM"):
        email_channel(
            Settings(smtp_url="smtp://mail.example.nl"),
            None,  # type: ignore[arg-type]
            lambda: NOW,
        )
    with pytest.raises(ConfigurationError, match="VIR_SMTP_CA_FILE"):
        email_channel(
            Settings(
                smtp_url="smtp://mail.example.nl",
                smtp_from=SENDER,
                smtp_ca_file=tmp_path / "missing.pem",
            ),
            None,  # type: ignore[arg-type]
            lambda: NOW,
        )
    made = email_channel(
        Settings(smtp_url="smtp://mail.example.nl", smtp_from=SENDER, email_digest_minutes=0),
        None,  # type: ignore[arg-type]
        lambda: NOW,
    )
    assert made is not None and made.name == "email" and made.digest == dt.timedelta(0)


# --- vir org email ------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "store.sqlite") as made:
        url = made.db.engine.url.render_as_string(hide_password=False)
        monkeypatch.setenv("VIR_DATABASE_URL", url)
        yield made


def _setting(store: Store, oin: str) -> email_outbox.EmailSetting | None:
    with store.db.read() as session:
        return email_outbox.get_setting(session, oin)


def test_vir_org_email_turns_email_on_off_and_sets_the_language(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    oin = str(ORGS[0].oin)
    assert cli.main(["org", "email", "--oin", oin]) == 0
    assert "is off" in capsys.readouterr().out and _setting(store, oin) is None
    assert cli.main(["org", "email", "--oin", oin, "--enable"]) == 0
    assert "is on (nl)" in capsys.readouterr().out
    assert _setting(store, oin) == email_outbox.EmailSetting(oin, True, Language.NL)
    assert cli.main(["org", "email", "--oin", oin, "--language", "en"]) == 0
    assert _setting(store, oin) == email_outbox.EmailSetting(oin, True, Language.EN)
    assert cli.main(["org", "email", "--oin", oin, "--disable"]) == 0
    assert _setting(store, oin) == email_outbox.EmailSetting(oin, False, Language.EN)
    capsys.readouterr()
    assert cli.main(["org", "email", "--oin", "00000009999999999999", "--enable"]) == 2
    assert "not a registered reporting organisation" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["org", "email", "--oin", oin, "--enable", "--disable"])
    with pytest.raises(SystemExit):
        cli.main(["org", "email", "--oin", oin, "--language", "de"])
