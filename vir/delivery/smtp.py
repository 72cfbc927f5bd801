"""Sending one e-mail over SMTP: the server from ``VIR_SMTP_URL``, STARTTLS with a
certificate check, a password from a file, timeouts (the e-mail channel,
``vir.delivery.email``, decides what to send).

``VIR_SMTP_URL`` is ``smtp://[user@]host[:port]`` (port 587 by default): STARTTLS is
required, the server's certificate must chain to the system's CAs (or to
``VIR_SMTP_CA_FILE``) and name the host, and only then is the password sent. Plain SMTP,
``smtp+insecure://host[:port]``, is accepted only to ``localhost``/``127.0.0.1``/``::1``
and only with ``VIR_DEV=1`` (a local mail catcher in development). Anything else is
refused at start-up, naming the setting and never echoing the URL: a URL may carry a
password, which belongs in ``VIR_SMTP_PASSWORD_FILE`` instead.

A failure is a ``SendFailed`` with a short code from a fixed vocabulary (``connect``,
``recipient-550``): never the server's own text, which may quote the recipient's
address, and never the password.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
import stat
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vir.domain.errors import ConfigurationError

SECURE, INSECURE = "smtp", "smtp+insecure"
DEFAULT_PORTS = {SECURE: 587, INSECURE: 25}
# Where plain SMTP may go, in development only: this machine.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_USERNAME = re.compile(r"^[\x21-\x7e]{1,254}$")  # printable ASCII, no space or control


class SendFailed(Exception):
    """An e-mail was not accepted. ``code`` is short (at most 16 characters: it becomes the
    delivery's ``last_error``) and from a fixed vocabulary, never the server's text or an
    address. ``permanent``: sending it again will not help (the recipient was refused).
    ``server_down``: any other e-mail would fail alike now (cannot connect, TLS, login)."""

    def __init__(self, code: str, *, permanent: bool = False, server_down: bool = False) -> None:
        super().__init__(code)
        self.code = code[:16]
        self.permanent = permanent
        self.server_down = server_down


class Secret:
    """A password that does not show itself in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """Where and how to send: parsed from ``VIR_SMTP_URL`` by ``parse_smtp_url``."""

    host: str
    port: int
    username: str | None
    starttls: bool


def _refuse(why: str) -> ConfigurationError:
    return ConfigurationError(f"VIR_SMTP_URL {why}")


def _host(name: str) -> str:
    """A DNS name or an IP address, lower-case; anything else refused."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse("has no valid host name")
    return name.rstrip(".").lower()


def parse_smtp_url(url: str, *, dev: bool) -> SmtpServer:
    """``smtp://[user@]host[:port]`` (STARTTLS) or, in development to this machine only,
    ``smtp+insecure://host[:port]``; a ``ConfigurationError`` naming the setting otherwise.
    The messages never repeat the URL (it might hold a password)."""
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise _refuse("must be plain ASCII without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("is not a valid URL: smtp://user@host:587") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse(
            "must start with smtp:// (STARTTLS); smtp+insecure:// is for a local mail "
            "catcher in development (VIR_DEV=1) only"
        )
    if parts.password is not None:
        raise _refuse(
            "must not hold a password: put it in a file and name that file in "
            "VIR_SMTP_PASSWORD_FILE"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _refuse("has a path, query or fragment; give only smtp://user@host:port")
    if port == 0:
        raise _refuse("has port 0: give the mail server's port, or none for 587")
    if not parts.hostname:
        raise _refuse("names no host: smtp://user@host:587")
    host = _host(parts.hostname)
    username = unquote(parts.username) if parts.username else None
    if username is not None and not _USERNAME.fullmatch(username):
        raise _refuse("has a user name with spaces, control or non-ASCII characters")
    starttls = scheme == SECURE
    if not starttls and not (dev and host in LOCAL_HOSTS):
        raise _refuse(
            "asks for plain SMTP (smtp+insecure://), which is allowed only to localhost, "
            "127.0.0.1 or ::1, and only with VIR_DEV=1; use smtp:// (STARTTLS)"
        )
    return SmtpServer(host, port or DEFAULT_PORTS[scheme], username, starttls)


def read_password(path: Path) -> Secret:
    """The password in ``path`` (one line; a trailing newline is dropped). Refused when the
    file is missing, not a regular file, empty, or accessible by group or others."""
    try:
        mode = path.stat().st_mode  # follows a symlink (a mounted secret) to the file
    except OSError:
        raise ConfigurationError(f"VIR_SMTP_PASSWORD_FILE {path} cannot be read") from None
    if not stat.S_ISREG(mode):
        raise ConfigurationError(f"VIR_SMTP_PASSWORD_FILE {path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"VIR_SMTP_PASSWORD_FILE {path} is accessible by group or others; run: chmod 600 {path}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigurationError(f"VIR_SMTP_PASSWORD_FILE {path} cannot be read") from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value or "\n" in value or "\r" in value:
        raise ConfigurationError(
            f"VIR_SMTP_PASSWORD_FILE {path} must hold the password on one line, and nothing else"
        )
    return Secret(value)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate and host name checked, TLS 1.2 or newer; only ``ca_file``'s CAs when given."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
        )
    except (OSError, ssl.SSLError):
        raise ConfigurationError(
            f"VIR_SMTP_CA_FILE {ca_file} holds no readable PEM CA certificate"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass(frozen=True)
class SmtpSender:
    """Sends one message per connection: connect, STARTTLS (certificate checked), log in,
    send, quit. Every network step is bounded by ``timeout`` seconds."""

    server: SmtpServer
    password: Secret | None = field(repr=False)
    context: ssl.SSLContext | None = field(repr=False)
    timeout: float = 30.0

    @classmethod
    def configure(
        cls,
        url: str,
        *,
        password_file: Path | None,
        ca_file: Path | None,
        timeout: float,
        dev: bool,
    ) -> SmtpSender:
        """From the settings; a ``ConfigurationError`` naming the setting at fault."""
        server = parse_smtp_url(url, dev=dev)
        if server.username is not None and password_file is None:
            raise ConfigurationError(
                "VIR_SMTP_URL names a user: set VIR_SMTP_PASSWORD_FILE to the file holding "
                "the password"
            )
        if server.username is None and password_file is not None:
            raise ConfigurationError(
                "VIR_SMTP_PASSWORD_FILE is set but VIR_SMTP_URL names no user: smtp://user@host:587"
            )
        password = read_password(password_file) if password_file is not None else None
        context = tls_context(ca_file) if server.starttls else None
        return cls(server, password, context, timeout)

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Hand ``message`` to the server for ``recipient``; ``SendFailed`` when it is not
        accepted (module docstring)."""
        try:
            self._send(message, sender, recipient)
        except SendFailed:
            raise
        except smtplib.SMTPRecipientsRefused as refused:
            codes = [code for code, _text in refused.recipients.values()]
            code = codes[0] if codes else 0
            raise SendFailed(f"recipient-{code}", permanent=code >= 500) from None
        except smtplib.SMTPAuthenticationError as error:
            # Every e-mail would fail alike; trying the next at once could lock the account.
            raise SendFailed(f"auth-{error.smtp_code}", server_down=True) from None
        except smtplib.SMTPSenderRefused as error:
            raise SendFailed(f"sender-{error.smtp_code}", server_down=True) from None
        except smtplib.SMTPDataError as error:
            code = error.smtp_code
            raise SendFailed(f"message-{code}", permanent=code >= 500) from None
        except smtplib.SMTPConnectError as error:
            raise SendFailed(f"banner-{error.smtp_code}", server_down=True) from None
        except smtplib.SMTPNotSupportedError:
            raise SendFailed("unsupported", server_down=True) from None
        except smtplib.SMTPServerDisconnected:
            raise SendFailed("disconnected", server_down=True) from None
        except smtplib.SMTPResponseException as error:
            raise SendFailed(f"smtp-{error.smtp_code}") from None
        except smtplib.SMTPException:
            raise SendFailed("smtp", server_down=True) from None
        except ssl.SSLCertVerificationError:
            raise SendFailed("certificate", server_down=True) from None
        except ssl.SSLError:
            raise SendFailed("tls", server_down=True) from None
        except TimeoutError:
            raise SendFailed("timeout", server_down=True) from None
        except OSError:
            raise SendFailed("connect", server_down=True) from None

    def _send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        server = self.server
        # The host given to the constructor is the name STARTTLS checks the certificate
        # against; a banner other than 220 is an SMTPConnectError.
        with smtplib.SMTP(server.host, server.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if server.starttls:
                if not smtp.has_extn("starttls"):
                    # Never fall back to plain text: an attacker on the path can strip the
                    # STARTTLS offer. Retry later (and the operator sees why).
                    raise SendFailed("no-starttls", server_down=True)
                smtp.starttls(context=self.context)
                smtp.ehlo()
            if server.username is not None and self.password is not None:
                smtp.login(server.username, self.password.reveal())
            smtp.send_message(message, from_addr=sender, to_addrs=[recipient])
