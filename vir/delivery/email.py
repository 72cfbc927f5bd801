"""The e-mail channel: a content-free e-mail to the professional named on the recipient
signal, at most one per address per digest window (docs/delivery.md, "E-mail").

What an e-mail says: that there is a new or changed match for the signal(s) with the
professional's *own* reference(s) (the organisation's ``local_ref``), and where to look
(the organisation's own system, or the portal when ``VIR_PORTAL_URL`` is set). Nothing
else: no other professional, no organisation, no young person, nothing about the family,
no pseudonym, no notification or match id. The subject names only "vir". Dutch unless
every organisation whose references an e-mail lists chose English (``vir org email``).

Who gets it: the address on the recipient signal itself (``signals.professional_email``),
read when the e-mail is sent, and only for deliveries addressed to that signal's own
organisation: a professional never sees another organisation's references.

Digest: deliveries due for an address whose last e-mail went out less than
``VIR_EMAIL_DIGEST_MINUTES`` ago are deferred (not an attempt) to the end of that
window, and then go together, as one e-mail listing their references once each. The
window is taken before sending (``vir.store.email_outbox.reserve``: one worker of many
wins it) and given back when the mail server did not take the e-mail, which is then
retried with the outbox's backoff; nothing is lost while the server is down.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import random
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING, Protocol

from vir.audit.actions import Action
from vir.audit.chain import Outcome as audit_outcome
from vir.delivery.channels import Due, Outcome, Result
from vir.delivery.smtp import SendFailed, SmtpSender
from vir.domain import contact
from vir.domain.errors import ConfigurationError, InputError
from vir.domain.local_ref import is_local_ref
from vir.store import audit_log, email_outbox
from vir.store.email_outbox import Language

if TYPE_CHECKING:
    from vir.settings import Settings
    from vir.store.db import Database

NAME = "email"
BATCH = 100
# Outcome codes (deliveries.last_error, at most 16 characters): what went wrong, never
# with an address, a reference or the server's own words.
GONE = "gone"  # the recipient signal is no longer held
DISABLED = "disabled"  # the organisation turned e-mail off after the notification
NO_ADDRESS = "no-address"  # the professional has no (usable) e-mail address
MISMATCH = "mismatch"  # the signal is not the addressed organisation's: never sent
BAD_REFERENCE = "bad-reference"


class Sender(Protocol):
    def send(self, message: EmailMessage, sender: str, recipient: str) -> None: ...


# The texts, per language. {where} is the pointer to the organisation's system (and the
# portal); the references are listed one per line, indented.
_SUBJECT = {
    Language.NL: "vir: nieuwe of gewijzigde match",
    Language.EN: "vir: new or changed match",
}
_GREETING = {Language.NL: "Goedendag,", Language.EN: "Hello,"}
_INTRO_ONE = {
    Language.NL: "In de verwijsindex (vir) is er een nieuwe of gewijzigde match bij uw "
    "melding met dit eigen kenmerk:",
    Language.EN: "The referral index (vir) has a new or changed match for your signal with "
    "this reference of your own:",
}
_INTRO_MANY = {
    Language.NL: "In de verwijsindex (vir) is er een nieuwe of gewijzigde match bij uw "
    "meldingen met deze eigen kenmerken:",
    Language.EN: "The referral index (vir) has a new or changed match for your signals with "
    "these references of your own:",
}
_WHERE = {
    Language.NL: "Wie er nog meer betrokken is en hoe u elkaar bereikt, ziet u in het "
    "systeem van uw organisatie.",
    Language.EN: "Who else is involved, and how to reach each other, is shown in your "
    "organisation's own system.",
}
_PORTAL = {
    Language.NL: "U kunt ook kijken in het portaal van de verwijsindex:",
    Language.EN: "You can also look in the referral index portal:",
}
_NOTHING_MORE = {
    Language.NL: "Deze e-mail noemt met opzet geen jongere, gezin, organisatie of andere "
    "betrokkene. Hij is automatisch verstuurd; een antwoord wordt niet gelezen.",
    Language.EN: "This e-mail deliberately names no young person, family, organisation or "
    "other professional. It was sent automatically; replies are not read.",
}


@dataclass(frozen=True, slots=True)
class Letter:
    """One e-mail to compose: to ``to``, about these references, in ``language``."""

    to: str
    references: tuple[str, ...]
    language: Language
    message_key: str  # makes the Message-ID: the same deliveries, the same id


def _paragraphs(letter: Letter, portal_url: str | None) -> list[str | list[str]]:
    lang = letter.language
    intro = _INTRO_ONE if len(letter.references) == 1 else _INTRO_MANY
    where: list[str | list[str]] = [_WHERE[lang]]
    if portal_url:
        where.append(f"{_PORTAL[lang]} {portal_url}")
    return [
        _GREETING[lang],
        intro[lang],
        list(letter.references),
        *where,
        _NOTHING_MORE[lang],
        "vir",
    ]


def compose(
    letter: Letter, *, sender: str, portal_url: str | None, now: dt.datetime
) -> EmailMessage:
    """The e-mail for ``letter``: plain text with a simple HTML alternative, and the
    headers of an automatic message (RFC 3834 Auto-Submitted)."""
    for reference in letter.references:
        # Checked again here, whatever the store holds: only A-Z a-z 0-9 . _ : - can
        # reach the body, so no reference can add a header, a line or markup.
        if not is_local_ref(reference):
            raise InputError("local_ref", "not a reference")
    contact.email_address(letter.to)
    message = EmailMessage()
    message["From"] = formataddr(("vir", sender))
    message["To"] = letter.to
    message["Subject"] = _SUBJECT[letter.language]
    message["Date"] = format_datetime(now.astimezone(dt.UTC))
    domain = sender.rpartition("@")[2]
    message["Message-ID"] = f"<{letter.message_key}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    # Out-of-office and similar automatic replies (Exchange): not to this message.
    message["X-Auto-Response-Suppress"] = "All"
    text_parts = []
    html_parts = []
    for paragraph in _paragraphs(letter, portal_url):
        if isinstance(paragraph, list):
            text_parts.append("\n".join(f"    {r}" for r in paragraph))
            items = "".join(f"<li><code>{html.escape(r)}</code></li>" for r in paragraph)
            html_parts.append(f"<ul>{items}</ul>")
        else:
            # Lines of at most 72 characters (RFC 5322 advises 78): a URL is never split.
            text_parts.append(
                textwrap.fill(paragraph, 72, break_long_words=False, break_on_hyphens=False)
            )
            html_parts.append(f"<p>{html.escape(paragraph)}</p>")
    message.set_content("\n\n".join(text_parts) + "\n", cte="quoted-printable")
    page = (
        f'<!DOCTYPE html><html lang="{letter.language.value}"><head><meta charset="utf-8">'
        f"<title>{html.escape(_SUBJECT[letter.language])}</title></head><body>"
        + "".join(html_parts)
        + "</body></html>\n"
    )
    message.add_alternative(page, subtype="html", cte="quoted-printable")
    message["Content-Language"] = letter.language.value  # after set_content, which drops it
    return message


def message_key(due: Sequence[Due]) -> str:
    """The Message-ID's local part: a hash of the notification ids an e-mail covers, so a
    resend of the same e-mail has the same id, and the id reveals none of them."""
    ids = "\n".join(sorted(d.notification_id for d in due)).encode("utf-8")
    return hashlib.sha256(b"vir email message-id v1\x00" + ids).hexdigest()[:40] + ".vir"


@dataclass
class EmailChannel:
    """The e-mail channel (``vir.delivery.channels.Channel``)."""

    db: Database
    sender: Sender
    from_address: str
    digest: dt.timedelta
    give_up_after: dt.timedelta
    portal_url: str | None = None
    batch: int = BATCH
    name: str = NAME
    clock: Callable[[], dt.datetime] | None = field(default=None, repr=False)
    rng: random.Random = field(default_factory=random.SystemRandom, repr=False)
    # Seconds one deliver() may spend sending (half the worker's lease by default).
    budget: float = 150.0
    timer: Callable[[], float] = field(default=time.monotonic, repr=False)

    def deliver(self, due: Sequence[Due], now: dt.datetime) -> Sequence[Outcome]:
        outcomes: dict[int, Outcome] = {}
        groups, languages = self._group(due, outcomes)
        if self.digest > dt.timedelta(0) and groups:
            granted = self._reserve(groups, now, outcomes)
        else:
            granted = {key: None for key in groups}
        unsent = set(granted)
        try:
            self._send_all(groups, granted, unsent, languages, now, outcomes)
        finally:
            if unsent and self.digest > dt.timedelta(0):
                # Not sent: the window goes back, so the retry is not held back by it.
                with self.db.write() as session:
                    for key in sorted(unsent):
                        email_outbox.release(session, key, now, granted[key])
        return [outcomes[d.id] for d in due]

    def housekeep(self, now: dt.datetime) -> int:
        """Delete the digest windows that are over (the worker calls this every minute,
        whether or not anything is due): ``email_digests`` holds only the addresses
        (hashed) e-mailed within the last window. How many went."""
        with self.db.write() as session:
            return email_outbox.forget_old_windows(session, now - self.digest)

    def _send_all(
        self,
        groups: dict[str, tuple[str, list[Due]]],
        granted: dict[str, dt.datetime | None],
        unsent: set[str],
        languages: dict[str, Language],
        now: dt.datetime,
        outcomes: dict[int, Outcome],
    ) -> None:
        """One e-mail per granted address; ``unsent`` keeps those that did not go."""
        down: str | None = None  # the mail server's failure, once it failed for this batch
        started = self.timer()
        for key in granted:
            address, members = groups[key]
            if self.timer() - started > self.budget:
                # A slow server: hand the rest back (not an attempt) well before the
                # worker's lease ends, so no other worker takes them while we still send.
                outcomes.update(_all(members, Result.DEFER, retry_at=now))
                continue
            if down is not None:
                outcomes.update(_all(members, Result.RETRY, down, self._retry_at(members, now)))
                continue
            try:
                self._send(address, members, languages, now)
            except SendFailed as failed:
                if failed.permanent:
                    outcomes.update(_all(members, Result.FAILED, failed.code))
                else:
                    retry_at = self._retry_at(members, now)
                    outcomes.update(_all(members, Result.RETRY, failed.code, retry_at))
                if failed.server_down:
                    down = failed.code  # the next address would fail alike: do not wait again
                continue
            except InputError:
                outcomes.update(_all(members, Result.FAILED, BAD_REFERENCE))
                continue
            unsent.discard(key)
            outcomes.update(_all(members, Result.DELIVERED))

    def _retry_at(self, members: list[Due], now: dt.datetime) -> dt.datetime:
        """One retry time for an address's deliveries (the worker's backoff with full
        jitter, drawn once): they stay together, and go as one e-mail when it is up."""
        from vir.delivery.worker import backoff

        return now + backoff(max(d.attempts for d in members) + 1, self.rng)

    def _group(
        self, due: Sequence[Due], outcomes: dict[int, Outcome]
    ) -> tuple[dict[str, tuple[str, list[Due]]], dict[str, Language]]:
        """The deliveries that can go, by address (hash), and the languages of their
        organisations; the others' outcomes."""
        signal_ids = {d.signal_id for d in due if d.signal_id is not None}
        with self.db.read() as session:
            recipients = email_outbox.recipients(session, signal_ids)
            settings = email_outbox.settings_of(session, {d.oin for d in due})
        groups: dict[str, tuple[str, list[Due]]] = {}
        for d in due:
            recipient = recipients.get(d.signal_id) if d.signal_id is not None else None
            setting = settings.get(d.oin)
            if recipient is None:
                outcomes[d.id] = Outcome(d.id, Result.FAILED, GONE)
            elif recipient.oin != d.oin:
                # The store links a notification to its own organisation's signal; should
                # that ever not hold, nothing goes rather than a reference to a stranger.
                outcomes[d.id] = Outcome(d.id, Result.FAILED, MISMATCH)
            elif setting is None or not setting.enabled:
                outcomes[d.id] = Outcome(d.id, Result.FAILED, DISABLED)
            elif recipient.email is None or not _usable(recipient.email):
                outcomes[d.id] = Outcome(d.id, Result.FAILED, NO_ADDRESS)
            elif not is_local_ref(d.local_ref):
                outcomes[d.id] = Outcome(d.id, Result.FAILED, BAD_REFERENCE)
            else:
                key = email_outbox.address_hash(recipient.email)
                groups.setdefault(key, (recipient.email, []))[1].append(d)
        return groups, {oin: s.language for oin, s in settings.items()}

    def _reserve(
        self,
        groups: dict[str, tuple[str, list[Due]]],
        now: dt.datetime,
        outcomes: dict[int, Outcome],
    ) -> dict[str, dt.datetime | None]:
        """Take the window of every address that may have an e-mail now; defer the rest."""
        granted: dict[str, dt.datetime | None] = {}
        with self.db.write() as session:
            email_outbox.forget_old_windows(session, now - self.digest)
            for key in sorted(groups):
                taken = email_outbox.reserve(session, key, now, self.digest)
                if taken.granted:
                    granted[key] = taken.previous
                else:
                    for d in groups[key][1]:
                        outcomes[d.id] = Outcome(d.id, Result.DEFER, retry_at=taken.window_ends)
        return granted

    def _send(
        self,
        address: str,
        members: list[Due],
        languages: dict[str, Language],
        now: dt.datetime,
    ) -> None:
        english = all(languages.get(d.oin) is Language.EN for d in members)
        letter = Letter(
            to=address,
            references=tuple(sorted({d.local_ref for d in members})),
            language=Language.EN if english else Language.NL,
            message_key=message_key(members),
        )
        message = compose(letter, sender=self.from_address, portal_url=self.portal_url, now=now)
        self.sender.send(message, self.from_address, address)


def _all(
    members: list[Due],
    result: Result,
    error: str | None = None,
    retry_at: dt.datetime | None = None,
) -> dict[int, Outcome]:
    return {d.id: Outcome(d.id, result, error, retry_at) for d in members}


def _usable(address: str) -> bool:
    try:
        contact.email_address(address)
    except InputError:
        return False
    return True


def sender_address(text: str) -> str:
    """``VIR_SMTP_FROM``: one plain e-mail address (the display name is always "vir")."""
    try:
        return contact.email_address(text, "smtp_from")
    except InputError:
        raise ConfigurationError(
            "VIR_SMTP_FROM must be one plain e-mail address, such as vir@example.nl"
        ) from None


def email_channel(
    settings: Settings, db: Database, clock: Callable[[], dt.datetime]
) -> EmailChannel | None:
    """The e-mail channel as configured, or None without ``VIR_SMTP_URL``; a
    ``ConfigurationError`` naming the setting when it is configured wrongly."""
    if not settings.smtp_url:
        return None
    if not settings.smtp_from:
        raise ConfigurationError("VIR_SMTP_URL is set: set VIR_SMTP_FROM, the sender address")
    sender = SmtpSender.configure(
        settings.smtp_url,
        password_file=settings.smtp_password_file,
        ca_file=settings.smtp_ca_file,
        timeout=settings.smtp_timeout_seconds,
        dev=settings.dev,
    )
    return EmailChannel(
        db=db,
        sender=sender,
        from_address=sender_address(settings.smtp_from),
        digest=dt.timedelta(minutes=settings.email_digest_minutes),
        give_up_after=dt.timedelta(hours=settings.email_retry_hours),
        portal_url=settings.portal_url or None,
        clock=clock,
        budget=settings.delivery_lease_seconds / 2,
    )


@dataclass(frozen=True, slots=True)
class EmailState:
    """An organisation's e-mail setting after ``configure_organisation``."""

    name: str
    enabled: bool
    language: Language


def configure_organisation(
    db: Database,
    oin: str,
    now: dt.datetime,
    *,
    enabled: bool | None = None,
    language: Language | None = None,
) -> EmailState:
    """Turn e-mail for a reporting organisation's professionals on or off, or set its
    language (``vir org email``); what is not given stays (no setting yet: off, Dutch).
    Takes effect for the next notification, on every instance."""
    from vir.store.organisations import get_organisation

    with db.write() as session:
        org = get_organisation(session, oin)
        if org is None or not org.category.reports:
            raise InputError("oin", "not a registered reporting organisation")
        current = email_outbox.get_setting(session, oin)
        state = EmailState(
            org.name,
            enabled if enabled is not None else bool(current and current.enabled),
            language or (current.language if current else Language.NL),
        )
        if enabled is not None or language is not None:
            email_outbox.put_setting(session, oin, state.enabled, state.language, now)
            audit_log.append(
                session,
                audit_log.new_event(
                    Action.ADMIN_EMAIL_CHANGED,
                    audit_outcome.SUCCESS,
                    now,
                    organisation=oin,
                    actor="admin",
                    objects={"enabled": state.enabled, "language": state.language.value},
                ),
            )
    return state
