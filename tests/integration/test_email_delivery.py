"""Content-free e-mail to the professional, through a real SMTP server the tests start
(aiosmtpd: STARTTLS with a test CA's certificate, AUTH required), driven by the
delivery worker on a simulated clock (docs/delivery.md, "E-mail").

Set VIR_TEST_EMAIL_SAMPLE=FILE to keep the first e-mail as the server received it.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select, update
from support.instore import ORGS, T0
from support.mailroom import SENDER, Mailroom, address, mailroom
from support.smtpd import MailServer, Pki
from support.world import World, person

from vir.audit.chain import AuditEvent
from vir.delivery.email import configure_organisation, email_channel
from vir.delivery.worker import Worker
from vir.settings import Settings
from vir.store.email_outbox import Language, address_hash
from vir.store.tables import (
    AuditEntryRow,
    DeliveryRow,
    EmailDigestRow,
    MatchRow,
    NotificationRow,
    SignalRow,
)

pytestmark = pytest.mark.integration

# The identities used below, in their canonical form (docs/pseudonyms.md): none of them,
# nor their pseudonyms, may appear in any e-mail.
CHILD_BSN = "123456782"
MOTHER_DOB = "1988-07-15"
CHILD = f"nl-bsn:{CHILD_BSN}"
MOTHER = f"nl-person:bakker:{MOTHER_DOB}:v"


def _oin(index: int) -> str:
    return str(ORGS[index].oin)


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Mailroom]:
    with mailroom(tmp_path) as made:
        yield made


def _forbidden(w: World) -> list[str]:
    """Everything the e-mail to ORGS[0]'s professional must not hold."""
    pseudonyms = [person(CHILD), person(MOTHER)]
    with w.store.db.read() as session:
        ids = list(session.scalars(select(NotificationRow.id)))
        ids += list(session.scalars(select(MatchRow.id)))
    return [
        # other organisations, and its own: an e-mail names no organisation
        *(org.name for org in ORGS),
        *(_oin(i) for i in range(len(ORGS))),
        # other professionals and their addresses, and the recipient's own name
        "Els",
        "Jansen",
        address("Els Jansen", 1),
        "Karim",
        "Bouali",
        # the young person and the family
        CHILD_BSN,
        "bakker",
        "Bakker",
        MOTHER_DOB,
        "15-07-1988",
        "15 juli 1988",
        *(base64.urlsafe_b64encode(p).decode().rstrip("=") for p in pseudonyms),
        *(p.hex() for p in pseudonyms),
        # the other professional's reference, and every notification and match id
        "HA.77:31",
        *ids,
    ]


def test_the_professional_gets_their_own_reference_and_nothing_else(
    room: Mailroom,
) -> None:
    w = room.w
    w.register(1, CHILD, "HA.77:31", name="Els Jansen")
    w.register(0, CHILD, "dossier-2026-0417", parents=(MOTHER,), name="Karim Bouali")
    assert room.run() == 2  # match.created for both

    karim, els = address("Karim Bouali", 0), address("Els Jansen", 1)
    [mail] = room.to(karim)
    assert (mail.mail_from, mail.authenticated, mail.tls) == (SENDER, True, True)
    message = mail.message
    text, page = mail.text(), mail.html()
    assert "dossier-2026-0417" in text and "dossier-2026-0417" in page
    headers = "\n".join(f"{k}: {v}" for k, v in message.items())
    for word in _forbidden(w):
        for where in (text, page, headers, mail.raw.decode("ascii")):
            assert word not in where, word
    assert message["Subject"] == "vir: nieuwe of gewijzigde match"
    assert message["To"] == karim
    assert message["From"] == f"vir <{SENDER}>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@vir-test.example>")
    assert message["Date"] and message["Content-Language"] == "nl"
    assert "systeem van uw organisatie" in " ".join(text.split())

    # The GP's professional got one e-mail, with only the GP's own reference.
    [other] = room.to(els)
    assert "HA.77:31" in other.text() and "dossier-2026-0417" not in other.raw.decode()
    assert len(room.server.received) == 2
    assert room.states() == {"delivered": 2}
    if sample := os.environ.get("VIR_TEST_EMAIL_SAMPLE"):
        Path(sample).write_bytes(mail.raw)


def test_three_notifications_within_the_window_make_one_email(room: Mailroom) -> None:
    w = room.w
    karim = address("Karim Bouali", 0)
    for i, who in enumerate(("kid-a", "kid-b", "kid-c")):
        w.register(i + 1, who, f"partner-{who}", name="Els Jansen")
    # Three of the school's signals match, one after another, while nothing is sent.
    for who in ("kid-a", "kid-b", "kid-c"):
        w.register(0, who, f"SCH:{who}", name="Karim Bouali")
        w.clock.now += dt.timedelta(minutes=1)
    room.run()
    [mail] = room.to(karim)
    lines = [line.strip() for line in mail.text().splitlines()]
    assert [x for x in lines if x.startswith("SCH:")] == ["SCH:kid-a", "SCH:kid-b", "SCH:kid-c"]
    assert "meldingen met deze eigen kenmerken" in " ".join(mail.text().split())
    assert not any("partner-" in m.raw.decode() for m in room.to(karim))

    # Another within the window is held back to its end, then goes on its own e-mail,
    # the references once each (a joined and a created notification on one signal).
    sent_at = w.clock.now
    w.register(0, "kid-d", "SCH:kid-d", name="Karim Bouali")
    w.register(2, "kid-d", "partner-kid-d", name="Els Jansen")
    w.clock.now += dt.timedelta(minutes=5)
    room.run()
    assert len(room.to(karim)) == 1
    assert room.next_due() == sent_at + dt.timedelta(minutes=15)
    w.clock.now = room.next_due()
    room.run()
    first, second = room.to(karim)
    assert [x.strip() for x in second.text().splitlines() if "SCH:" in x] == ["SCH:kid-d"]
    assert "melding met dit eigen kenmerk" in " ".join(second.text().split())
    assert first.message["Message-ID"] != second.message["Message-ID"]
    assert room.states() == {"delivered": sum(room.states().values())}


def test_no_professional_ever_gets_another_organisations_reference(room: Mailroom) -> None:
    w = room.w
    names = ["Karim Bouali", "Els Jansen", "Noor Amrani", "Piet Smit"]
    refs = [f"org{i}-ref" for i in range(len(ORGS))]
    for i, name in enumerate(names):
        w.register(i, "shared-child", refs[i], name=name)
    w.register(0, "second-child", "org0-other", name="Karim Bouali")
    w.register(3, "second-child", "org3-other", name="Piet Smit")
    room.run()
    for i, name in enumerate(names):
        mails = room.to(address(name, i))
        assert mails, name
        own = {refs[i], f"org{i}-other"}
        for mail in mails:
            body = mail.raw.decode()
            for ref in {*refs, "org0-other", "org3-other"} - own:
                assert ref not in body, (name, ref)
    # Every envelope went to exactly one address.
    assert all(len(m.rcpt_tos) == 1 for m in room.server.received)


def test_an_organisation_decides_on_email_and_its_language(room: Mailroom) -> None:
    w = room.w
    room.enable(1, Language.EN)
    configure_organisation(w.store.db, _oin(2), T0, enabled=False)
    w.register(0, "kim", "school-kim", name="Karim Bouali")
    w.register(1, "kim", "gp-kim", name="Els Jansen")
    w.register(2, "kim", "yc-kim", name="Noor Amrani")
    room.run()
    [english] = room.to(address("Els Jansen", 1))
    assert english.message["Subject"] == "vir: new or changed match"
    assert english.message["Content-Language"] == "en"
    assert "your organisation's own system" in " ".join(english.text().split())
    [dutch] = room.to(address("Karim Bouali", 0))
    assert dutch.message["Content-Language"] == "nl"
    assert room.to(address("Noor Amrani", 2)) == []  # e-mail off: no delivery made
    with w.store.db.read() as session:
        oins = set(session.scalars(select(DeliveryRow.oin).where(DeliveryRow.channel == "email")))
    assert _oin(2) not in oins
    # Each change is in the audit log: who, and what it now is.
    w.store.db.integrate()
    with w.store.db.read() as session:
        changes = [
            AuditEvent.decode(bytes(body))
            for body in session.scalars(
                select(AuditEntryRow.body)
                .where(AuditEntryRow.action == "admin.email_changed")
                .order_by(AuditEntryRow.seq)
            )
        ]
    assert [(e.organisation, e.objects) for e in changes][-1] == (
        _oin(2),
        {"enabled": False, "language": "nl"},
    )
    assert (_oin(1), {"enabled": True, "language": "en"}) in [
        (e.organisation, e.objects) for e in changes
    ]


def test_a_mail_server_that_is_down_for_a_while_loses_nothing(room: Mailroom) -> None:
    w = room.w
    room.server.stop()
    w.register(0, "lou", "school-lou", name="Karim Bouali")
    w.register(1, "lou", "gp-lou", name="Els Jansen")
    w.register(2, "lou", "yc-lou", name="Noor Amrani")
    total = sum(room.states().values())
    assert total == 5  # created x3, joined for the school and the GP
    start = w.clock.now
    tries = 0
    while w.clock.now - start < dt.timedelta(minutes=10):
        room.run()
        tries += 1
        assert room.states() == {"retrying": total}
        w.clock.now = room.next_due()
    with w.store.db.read() as session:
        errors = set(session.scalars(select(DeliveryRow.last_error)))
        # A failed e-mail gives its window back: nothing is held by the digest now.
        assert list(session.scalars(select(EmailDigestRow))) == []
    assert errors == {"connect"}
    assert tries >= 3

    room.server.start()  # up again, on the same port
    for _ in range(20):  # each delivery goes at the end of its own backoff
        room.run()
        if room.states() == {"delivered": total}:
            break
        w.clock.now = room.next_due()
    assert room.states() == {"delivered": total}
    for index, name in enumerate(["Karim Bouali", "Els Jansen", "Noor Amrani"]):
        [mail] = room.to(address(name, index))
        assert ("school-lou", "gp-lou", "yc-lou")[index] in mail.text()
    assert len(room.server.received) == 3


def test_a_server_certificate_from_another_ca_is_refused_before_the_password(
    tmp_path: Path,
) -> None:
    stranger = Pki.make(tmp_path / "stranger")
    with mailroom(tmp_path, server_certs=stranger) as room:
        w = room.w
        w.register(0, "ivo", "school-ivo", name="Karim Bouali")
        w.register(1, "ivo", "gp-ivo", name="Els Jansen")
        room.run()
        assert room.server.received == [] and room.server.logins == []
        assert room.states() == {"retrying": 2}
        with w.store.db.read() as session:
            assert set(session.scalars(select(DeliveryRow.last_error))) == {"certificate"}


def test_a_recipient_the_server_refuses_is_dead_and_the_others_go(room: Mailroom) -> None:
    w = room.w
    room.server.refuse(address("Els Jansen", 1))
    w.register(0, "max", "school-max", name="Karim Bouali")
    w.register(1, "max", "gp-max", name="Els Jansen")
    room.run()
    assert len(room.to(address("Karim Bouali", 0))) == 1
    with w.store.db.read() as session:
        rows = session.execute(
            select(DeliveryRow.oin, DeliveryRow.state, DeliveryRow.last_error).where(
                DeliveryRow.channel == "email"
            )
        ).all()
    assert {(r.state, r.last_error) for r in rows if r.oin == _oin(1)} == {
        ("dead", "recipient-550")
    }
    # The digest window stays taken for an address that got nothing? No: given back.
    with w.store.db.read() as session:
        keys = set(session.scalars(select(EmailDigestRow.address_hash)))
    assert address_hash(address("Els Jansen", 1)) not in keys
    assert address_hash(address("Karim Bouali", 0)) in keys


def test_windows_that_are_over_are_deleted_also_when_nothing_is_sent(room: Mailroom) -> None:
    """``email_digests`` holds the (hashed) addresses e-mailed within the last window
    only: after a quiet spell the worker's housekeeping deletes the rows, although no
    e-mail goes and no delivery is due."""
    w = room.w
    w.register(0, "pia", "school-pia", name="Karim Bouali")
    w.register(1, "pia", "gp-pia", name="Els Jansen")
    room.run()
    assert len(room.server.received) == 2 and room.states() == {"delivered": 2}

    def windows() -> set[str]:
        with w.store.db.read() as session:
            return set(session.scalars(select(EmailDigestRow.address_hash)))

    assert windows() == {
        address_hash(address("Karim Bouali", 0)),
        address_hash(address("Els Jansen", 1)),
    }
    w.clock.now += dt.timedelta(minutes=14)
    assert room.run() == 0 and len(windows()) == 2  # still within the window
    w.clock.now += dt.timedelta(minutes=2)
    assert room.run() == 0 and windows() == set()
    assert len(room.server.received) == 2


def test_two_workers_at_once_send_one_email_per_window(room: Mailroom) -> None:
    """Two workers (vir serve instances, vir worker processes) each holding deliveries
    for the same address: the window is taken by one of them only."""
    w = room.w
    for index in (1, 2):
        configure_organisation(w.store.db, _oin(index), T0, enabled=False)
    w.register(1, "fay", "gp-fay", name="Els Jansen")
    w.register(2, "gus", "yc-gus", name="Noor Amrani")
    w.register(0, "fay", "school-fay", name="Karim Bouali")
    w.register(0, "gus", "school-gus", name="Karim Bouali")
    w.store.db.integrate()
    workers = []
    for seed in (1, 2):
        channel = replace(room.channel, batch=1, rng=random.Random(seed))
        workers.append(Worker(w.store.db, [channel], w.clock, lambda n: {}))
    start = threading.Barrier(2)

    def run(worker: Worker) -> None:
        start.wait()
        worker.run_once()

    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(room.server.received) == 1
    assert room.states() == {"delivered": 1, "pending": 1}
    w.clock.now = room.next_due()
    assert w.clock.now == T0 + dt.timedelta(minutes=15)
    room.run()
    refs = {x.strip() for m in room.server.received for x in m.text().splitlines()}
    assert {"school-fay", "school-gus"} <= refs and len(room.server.received) == 2


def test_a_slow_server_gets_back_what_could_not_be_sent_in_time(room: Mailroom) -> None:
    w = room.w
    ticks = iter(range(0, 10_000, 100))
    room.channel.timer = lambda: float(next(ticks))  # 100 s a step; budget 150 s
    room.channel.budget = 150
    w.register(0, "hal", "school-hal", name="Karim Bouali")
    w.register(1, "hal", "gp-hal", name="Els Jansen")
    w.store.db.integrate()
    room.worker.run_once()
    assert len(room.server.received) == 1
    assert room.states() == {"delivered": 1, "pending": 1}  # handed back, not an attempt
    room.run()  # due at once, and its window was given back
    assert len(room.server.received) == 2 and room.states() == {"delivered": 2}


def test_a_bad_reference_fails_alone_and_the_others_go(room: Mailroom) -> None:
    w = room.w
    w.register(1, "ida", "gp-ida", name="Els Jansen")
    w.register(2, "jo", "yc-jo", name="Noor Amrani")
    w.register(0, "ida", "school-ida", name="Karim Bouali")
    w.register(0, "jo", "school-jo", name="Karim Bouali")
    with w.store.db.write() as session:
        session.execute(
            update(NotificationRow)
            .where(NotificationRow.local_ref == "school-jo")
            .values(local_ref="school-jo\r\nBcc: x@evil.example")
        )
    room.run()
    [mail] = room.to(address("Karim Bouali", 0))
    assert "school-ida" in mail.text() and b"evil" not in mail.raw
    with w.store.db.read() as session:
        errors = session.scalars(
            select(DeliveryRow.last_error).where(DeliveryRow.state == "dead")
        ).all()
    assert errors == ["bad-reference"]


def test_no_delivery_is_made_for_a_professional_without_an_address(room: Mailroom) -> None:
    w = room.w
    gp = w.register(1, "kai", "gp-kai", name="Els Jansen")
    with w.store.db.write() as session:
        session.execute(
            update(SignalRow).where(SignalRow.id == gp.id).values(professional_email=None)
        )
    w.register(0, "kai", "school-kai", name="Karim Bouali")
    room.run()
    with w.store.db.read() as session:
        oins = list(session.scalars(select(DeliveryRow.oin).where(DeliveryRow.channel == "email")))
    assert oins == [_oin(0)]
    assert [m.rcpt_tos for m in room.server.received] == [[address("Karim Bouali", 0)]]


def test_plain_smtp_to_a_local_mail_catcher_in_development(tmp_path: Path) -> None:
    """VIR_DEV=1 and smtp+insecure://127.0.0.1: what `make run` with a local mail catcher
    uses; no TLS, no login."""
    with (
        mailroom(tmp_path) as room,
        MailServer(None, tls=False, auth=False) as catcher,
    ):
        settings = Settings(
            smtp_url=catcher.url(), smtp_from=SENDER, dev=True, email_digest_minutes=15
        )
        channel = email_channel(settings, room.w.store.db, room.w.clock)
        assert channel is not None
        room.channel.sender = channel.sender
        room.w.register(0, "lev", "school-lev", name="Karim Bouali")
        room.w.register(1, "lev", "gp-lev", name="Els Jansen")
        room.run()
        assert room.server.received == []
        assert sorted(m.rcpt_tos[0] for m in catcher.received) == sorted(
            [address("Karim Bouali", 0), address("Els Jansen", 1)]
        )
        assert not any(m.tls for m in catcher.received)
