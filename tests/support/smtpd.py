"""A real SMTP server for tests (aiosmtpd): STARTTLS with a certificate from a test CA,
AUTH required after STARTTLS, every accepted message kept as the server received it.

``MailServer.stop()`` and ``start()`` again on the same port make a server that is
down for a while. ``Pki`` makes the CA (its PEM is what ``VIR_SMTP_CA_FILE`` names)
and the server's certificate for 127.0.0.1 and localhost.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from support import service

from vir.crypto import pki

USER = "vir-mailer"
PASSWORD = "s3cret-Smtp-Pa55word-9f1c"


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def make(cls, folder: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Pki:
        now = dt.datetime.now(dt.UTC)
        ca = pki.create_ca("vir test mail CA", now)
        server = pki.issue_server_certificate(ca, list(hosts), now)
        folder.mkdir(parents=True, exist_ok=True)
        made = cls(folder / "mail-ca.crt", folder / "mail.crt", folder / "mail.key")
        made.ca_file.write_bytes(pki.cert_pem(ca.cert))
        pki.save_issued(server, made.cert_file, made.key_file)
        return made


@dataclass
class Received:
    """One message as the server took it: the envelope and the raw bytes."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    authenticated: bool
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        content = body.get_content()
        assert isinstance(content, str)
        return content

    def html(self) -> str:
        body = self.message.get_body(("html",))
        assert body is not None
        content = body.get_content()
        assert isinstance(content, str)
        return content


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 <" + address + ">: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content),
                    bool(session.authenticated),
                    session.ssl is not None,
                )
            )
        return "250 2.0.0 OK"


class MailServer:
    """aiosmtpd on 127.0.0.1: STARTTLS required (``tls``), AUTH required after it
    (``auth``), or plain with neither (``tls=False``, for development mode)."""

    def __init__(self, certs: Pki | None, *, tls: bool = True, auth: bool = True) -> None:
        self.port = service.free_port()
        self._certs = certs
        self._tls = tls
        self._auth = auth
        self._handler = _Handler()
        self._controller: Controller | None = None
        self.logins: list[tuple[str, bool]] = []  # (user, accepted)

    @property
    def received(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    def refuse(self, address: str) -> None:
        self._handler.refuse.add(address)

    def url(self, *, user: bool = True) -> str:
        scheme = "smtp" if self._tls else "smtp+insecure"
        who = f"{USER}@" if user and self._auth else ""
        return f"{scheme}://{who}127.0.0.1:{self.port}"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == USER.encode()
            and auth_data.password == PASSWORD.encode()
        )
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
        self.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self._tls:
            assert self._certs is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self._certs.cert_file, self._certs.key_file)
            kwargs |= {"tls_context": context, "require_starttls": True}
        if self._auth:
            kwargs |= {
                "authenticator": self._authenticate,
                "auth_required": True,
                "auth_require_tls": self._tls,
            }
        self._controller = Controller(
            self._handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs
        )
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> MailServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
