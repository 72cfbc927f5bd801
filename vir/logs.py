"""Structured logs without identifiers: an event catalogue and its formatters.

Every log line vir writes is one *event* from ``CATALOGUE``: a fixed id
(``http.request``) and an allow-list of fields. ``emit`` drops any field the
event does not list, and the formatters drop them again (a record built some
other way cannot smuggle one in). A line never carries a pseudonym, a token, a
``local_ref``, a concrete request path or an exception's message: those may
hold input values. A request is named by its route *template*
(``/v1/signals/{local_ref}``) and by its request id.

Records from other libraries (uvicorn's own error log, asyncio) become
``server.log`` events carrying the logger name and the message, and, for an
exception, only its class name and the innermost frame (``file.py:123``): a
traceback's text may quote input values. The message is the template with only
its safe arguments filled in: all of them for the few templates whose arguments
are the server's own configuration (``Uvicorn running on %s://%s:%d``: scheme,
bound address, port; a process id), elsewhere numbers only, every other
argument shown as ``…`` (a string argument may be a request's content).

``VIR_LOG_FORMAT``: ``json`` (default) writes one JSON object per line
(``ts``, ``level``, ``event``, ``request_id``, then the event's fields);
``text`` the same fields as ``key=value`` for a terminal.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import errno
import json
import logging
import logging.config
import os
import traceback
from dataclasses import dataclass
from typing import Any, Literal

LogFormat = Literal["json", "text"]

# The id of the request being handled (set by vir.api.metrics.Observe), or None.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "vir_request_id", default=None
)

_LOGGER = "vir.events"
_MAX_TEXT = 200
_EXTRA_EVENT = "vir_event"
_EXTRA_FIELDS = "vir_fields"


@dataclass(frozen=True)
class Event:
    id: str
    level: int
    fields: frozenset[str]
    about: str  # what the event means (docs/operations-metrics.md lists the catalogue)


def _event(event_id: str, level: int, about: str, *fields: str) -> Event:
    return Event(event_id, level, frozenset(fields), about)


HTTP_REQUEST = _event(
    "http.request",
    logging.INFO,
    "one line per request: method, route template, status, duration",
    "method",
    "route",
    "status",
    "duration_ms",
)
JOB_FAILED = _event(
    "job.failed",
    logging.ERROR,
    "a periodic job raised; it runs again at its next interval",
    "job",
    "exception",
    "where",
)
JOB_REFUSED = _event(
    "job.refused",
    logging.ERROR,
    "a periodic job found the audit log contradicting a signed checkpoint; nothing signed",
    "job",
)
SERVER_LOG = _event(
    "server.log",
    logging.INFO,
    "a record from another library (uvicorn): logger, message with safe arguments only",
    "logger",
    "message",
    "exception",
    "where",
)
CATALOGUE: dict[str, Event] = {e.id: e for e in (HTTP_REQUEST, JOB_FAILED, JOB_REFUSED, SERVER_LOG)}

_Scalar = str | int | float | bool | None

# Templates (uvicorn's) whose every argument is the server's own configuration or
# process id, never a request's content: printed with their arguments.
_SAFE_TEMPLATES = frozenset(
    {
        "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
        "Uvicorn running on %s://[%s]:%d (Press CTRL+C to quit)",
        "Uvicorn running on unix socket %s (Press CTRL+C to quit)",
        "Started server process [%d]",
        "Finished server process [%d]",
        "Maximum request limit of %d exceeded. Terminating process.",
    }
)
_WITHHELD = "…"


def exception_text(error: BaseException) -> str:
    """An exception logged as the message itself (uvicorn's ``logger.error(exc)`` when it
    cannot bind its port): its class and, for an ``OSError``, the errno's name and the
    system's words for it. Never the exception's own text, which may quote input."""
    text = type(error).__name__
    if isinstance(error, OSError) and error.errno is not None:
        name = errno.errorcode.get(error.errno, str(error.errno))
        text += f" {name} ({os.strerror(error.errno)})"
    return text


# Loggers whose messages without arguments are fixed sentences of their code (uvicorn's
# "Application startup complete.", "Invalid HTTP request received."). Another library's
# may be text it formatted itself (asyncio's "Task exception was never retrieved" holds
# the exception's repr; SQLAlchemy's pool a connection's): withheld.
_OWN_SENTENCES = ("vir", "uvicorn")


def _message(record: logging.LogRecord) -> str:
    """``record``'s message with only its safe arguments filled in (module docstring)."""
    if isinstance(record.msg, BaseException):
        return exception_text(record.msg)
    template = record.msg if isinstance(record.msg, str) else ""
    args = record.args
    if not args or not isinstance(args, tuple):
        own = record.name.split(".", 1)[0] in _OWN_SENTENCES
        return template if own else _WITHHELD
    if template not in _SAFE_TEMPLATES:
        args = tuple(
            a if isinstance(a, int | float) and not isinstance(a, bool) else _WITHHELD for a in args
        )
    try:
        return template % args
    except (TypeError, ValueError):  # a %d given "…": the template alone says enough
        return template


def emit(event: Event, /, *, exc_info: bool = False, **fields: _Scalar) -> None:
    """Log ``event`` with those of ``fields`` it allows; any other field is dropped."""
    allowed = {k: v for k, v in fields.items() if k in event.fields}
    logging.getLogger(_LOGGER).log(
        event.level,
        event.id,
        exc_info=exc_info,
        extra={_EXTRA_EVENT: event, _EXTRA_FIELDS: allowed},
    )


def _scalar(value: object) -> _Scalar:
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_MAX_TEXT]


def _where(exc_info: Any) -> str | None:
    """The innermost frame of an exception, as ``file.py:line`` (no code, no values)."""
    tb = exc_info[2] if exc_info and len(exc_info) == 3 else None
    frames = traceback.extract_tb(tb) if tb is not None else []
    if not frames:
        return None
    last = frames[-1]
    return f"{os.path.basename(last.filename)}:{last.lineno}"


def record_fields(record: logging.LogRecord) -> dict[str, _Scalar]:
    """The allow-listed content of ``record``: ts, level, event, request_id, fields."""
    event = getattr(record, _EXTRA_EVENT, None)
    if isinstance(event, Event) and CATALOGUE.get(event.id) is event:
        raw: dict[str, object] = dict(getattr(record, _EXTRA_FIELDS, None) or {})
    else:
        event = SERVER_LOG
        raw = {"logger": record.name, "message": _message(record)}
    if record.exc_info and record.exc_info[0] is not None:
        raw["exception"] = record.exc_info[0].__name__
        raw["where"] = _where(record.exc_info)
    moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
    out: dict[str, _Scalar] = {
        "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "event": event.id,
        "request_id": REQUEST_ID.get(),
    }
    out.update({k: _scalar(v) for k, v in raw.items() if k in event.fields})
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``ts level event key=value ...``: the same fields as JSON, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        data = record_fields(record)
        head = f"{data.pop('ts')} {str(data.pop('level')).upper()} {data.pop('event')}"
        rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in data.items())
        return f"{head} {rest}".rstrip()


def formatter(log_format: LogFormat) -> logging.Formatter:
    return TextFormatter() if log_format == "text" else JsonFormatter()


def logging_config(log_format: LogFormat) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``vir serve`` (uvicorn's ``log_config``) and
    every ``vir`` command: vir's events, uvicorn's error log and any other library's
    warnings through the catalogue's formatter, to stderr; uvicorn's access log (it
    prints concrete paths) switched off."""
    handler = {"handlers": ["vir"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "vir": {"()": f"vir.logs.{type(formatter(log_format)).__name__}"},
        },
        "handlers": {
            "vir": {
                "class": "logging.StreamHandler",
                "formatter": "vir",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "vir": {**handler, "level": "INFO"},
            "uvicorn": {**handler, "level": "INFO"},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "asyncio": {**handler, "level": "WARNING"},
        },
        # Every other library's warnings and errors through the same formatter: Python's
        # last-resort handler would print their text and tracebacks as they are.
        "root": {"handlers": ["vir"], "level": "WARNING"},
    }


def configure(log_format: LogFormat) -> None:
    """Log as ``vir serve`` does (``logging_config``), and Python's warnings with it
    (they would print their text as it is): for every ``vir`` command."""
    logging.config.dictConfig(logging_config(log_format))
    logging.captureWarnings(True)
