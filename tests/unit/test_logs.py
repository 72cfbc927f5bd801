"""Logs: catalogue events only, allow-listed fields only, a request id, no identifiers."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.inapp import in_app, in_keyholder, keyholder_run, realistic_run

from vir import logs

_KEYS = {"ts", "level", "event", "request_id"}


@contextmanager
def captured(log_format: logs.LogFormat = "json") -> Iterator[io.StringIO]:
    """What vir logs while inside, formatted as ``vir serve`` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(log_format))
    loggers = [logging.getLogger(name) for name in ("vir", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    found = [json.loads(line) for line in stream.getvalue().splitlines()]
    for line in found:
        event = logs.CATALOGUE[str(line["event"])]
        assert set(line) <= _KEYS | event.fields, line
    return found


def test_fields_outside_the_allow_list_are_dropped() -> None:
    with captured() as stream:
        logs.emit(logs.HTTP_REQUEST, method="GET", route="/health", status=200, local_ref="X-1")
        logs.emit(logs.JOB_REFUSED, job="audit.checkpoint", pseudonym="abc")
    first, second = lines(stream)
    assert first["event"] == "http.request"
    assert first["route"] == "/health"
    assert "local_ref" not in first
    assert first["request_id"] is None
    assert first["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["ts"]))
    assert second == {**second, "event": "job.refused", "job": "audit.checkpoint"}
    assert "abc" not in stream.getvalue()


def test_other_records_keep_their_template_and_the_exception_class_only() -> None:
    with captured() as stream:
        logger = logging.getLogger("uvicorn.error")
        logger.warning("Invalid request from %s: %s", "10.0.0.9", "BSN 123456782")
        try:
            raise ValueError("local_ref LLN-2026-000123 is not valid")
        except ValueError:
            logger.exception("Exception in ASGI application")
    text = stream.getvalue()
    warning, error = lines(stream)
    assert warning["event"] == "server.log"
    assert warning["logger"] == "uvicorn.error"
    assert warning["message"] == "Invalid request from …: …"
    assert error["exception"] == "ValueError"
    assert re.fullmatch(r"test_logs\.py:\d+", str(error["where"]))
    for secret in ("123456782", "10.0.0.9", "LLN-2026", "Traceback", "not valid"):
        assert secret not in text


def test_an_exception_logged_as_the_message_shows_its_class_and_errno_only() -> None:
    """uvicorn logs a failed bind as ``logger.error(exc)``: the line says why (the port is
    taken) without the exception's text."""
    with captured() as stream:
        logger = logging.getLogger("uvicorn.error")
        bind = "error while attempting to bind on address ('127.0.0.1', 8443): in use"
        logger.error(OSError(errno.EADDRINUSE, bind))
        logger.error(ValueError("local_ref LLN-2026-000123 is not valid"))
    taken, other = lines(stream)
    assert taken["message"] == "OSError EADDRINUSE (Address already in use)"
    assert other["message"] == "ValueError"
    for secret in ("LLN-2026", "8443", "not valid"):
        assert secret not in stream.getvalue()


def test_a_job_failure_names_the_job_and_exception_class() -> None:
    with captured() as stream:
        try:
            raise RuntimeError("database is locked for 00000009000000000100")
        except RuntimeError:
            logs.emit(logs.JOB_FAILED, job="lifecycle.run", exc_info=True)
    (line,) = lines(stream)
    assert line["job"] == "lifecycle.run"
    assert line["exception"] == "RuntimeError"
    assert "00000009000000000100" not in stream.getvalue()


def test_text_format_has_the_same_fields() -> None:
    with captured("text") as stream:
        logs.emit(logs.HTTP_REQUEST, method="GET", route="/health", status=200, duration_ms=1.5)
    line = stream.getvalue().strip()
    assert re.fullmatch(
        r"\S+Z INFO http\.request request_id=null method=\"GET\" route=\"/health\" "
        r"status=200 duration_ms=1\.5",
        line,
    ), line


def _logged_by(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run in a fresh interpreter (logging configured from scratch)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )


def test_serve_logging_config_routes_uvicorn_through_the_catalogue() -> None:
    code = (
        "import logging, logging.config\n"
        "from vir import logs\n"
        "logging.config.dictConfig(logs.logging_config('json'))\n"
        "logging.getLogger('uvicorn.error').info('Started server process [%d]', 4242)\n"
        "logging.getLogger('uvicorn.access').info('%s \"%s %s\"', 'p', 'GET', '/v1/x/REF-1')\n"
        "logs.emit(logs.HTTP_REQUEST, method='GET', route='/health', status=200)\n"
    )
    result = _logged_by(code)
    assert result.stdout == ""
    found = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(f["event"], f.get("message")) for f in found] == [
        ("server.log", "Started server process [4242]"),
        ("http.request", None),
    ]
    assert "REF-1" not in result.stderr


def test_other_libraries_warnings_and_pythons_warnings_go_through_the_catalogue() -> None:
    """Found by a privacy audit: the root logger had no handler, so another library's
    warning printed its text as it was (Python's last resort), as did an asyncio "Task
    exception was never retrieved" (the exception's repr in a message it formatted
    itself) and ``warnings.warn``. Now one JSON line each, the text withheld."""
    code = (
        "import asyncio, logging, warnings\n"
        "from vir import logs\n"
        "logs.configure('json')\n"
        "pool = logging.getLogger('sqlalchemy.pool.impl.QueuePool')\n"
        "pool.error('Exception closing connection %r', 'SECRET-ARG-1')\n"
        "pool.error(\"Exception closing connection 'SECRET-FORMATTED-2'\")\n"
        "logging.getLogger('asyncio').error(\"Task exception was never retrieved\\n"
        "exception=ValueError('SECRET-REPR-3')\")\n"
        "warnings.warn('SECRET-WARNING-4')\n"
        "logging.getLogger('uvicorn.error').info('Application startup complete.')\n"
    )
    result = _logged_by(code)
    found = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(f["logger"], f["message"]) for f in found] == [
        ("sqlalchemy.pool.impl.QueuePool", "Exception closing connection '…'"),
        ("sqlalchemy.pool.impl.QueuePool", "…"),
        ("asyncio", "…"),
        ("py.warnings", "…"),
        ("uvicorn.error", "Application startup complete."),
    ]
    assert "SECRET" not in result.stderr


def test_the_servers_own_address_is_printed_and_request_values_are_not() -> None:
    with captured() as stream:
        logger = logging.getLogger("uvicorn.error")
        message = "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)"
        logger.info(message, "https", "127.0.0.1", 8443)
        logger.warning("Request from %s took %d ms", "LLN-2026-000123", 12)
    running, slow = lines(stream)
    assert running["message"] == "Uvicorn running on https://127.0.0.1:8443 (Press CTRL+C to quit)"
    assert slow["message"] == "Request from … took 12 ms"
    assert "LLN-2026" not in stream.getvalue()
    # A %d whose argument is withheld: the template alone.
    record = logging.LogRecord("uvicorn.error", logging.WARNING, "x", 1, "Bad %d", ("1",), None)
    assert logs.record_fields(record)["message"] == "Bad %d"


def test_request_id_is_returned_and_logged(tmp_path: Path) -> None:
    given = str(uuid.uuid4())
    with in_app(tmp_path) as app, captured() as stream:
        echoed = app.request("GET", "/health", headers={"X-Request-Id": given.upper()})
        replaced = app.request("GET", "/health", headers={"X-Request-Id": "BSN-123456782"})
        fresh = app.request("GET", "/health")
    assert echoed.headers["x-request-id"] == given
    assert replaced.headers["x-request-id"] != "BSN-123456782"
    assert uuid.UUID(replaced.headers["x-request-id"]).version == 4
    assert fresh.headers["x-request-id"] != replaced.headers["x-request-id"]
    access = [line for line in lines(stream) if line["event"] == "http.request"]
    assert [line["request_id"] for line in access] == [
        r.headers["x-request-id"] for r in (echoed, replaced, fresh)
    ]
    assert all(line["route"] == "/health" and line["status"] == 200 for line in access)
    assert "123456782" not in stream.getvalue()


def test_a_realistic_run_logs_no_identifiers(tmp_path: Path) -> None:
    with in_app(tmp_path) as app, captured() as stream:
        secrets = realistic_run(app)
    text = stream.getvalue()
    found = lines(stream)
    for kind, values in secrets.items():
        for secret in values:
            assert secret not in text, (kind, secret)
    access = [line for line in found if line["event"] == "http.request"]
    assert [(line["method"], line["route"], line["status"]) for line in access] == [
        ("POST", "/v1/signals", 201),
        ("POST", "/v1/signals", 201),
        ("DELETE", "/v1/signals/{local_ref}", 422),
        ("GET", "/v1/matches", 404),
        ("DELETE", "/v1/signals/{local_ref}", 404),
        ("DELETE", "/v1/signals/{local_ref}", 401),
        ("PUT", "/v1/signals/{local_ref}", 405),
        ("GET", "unmatched", 404),
    ]
    assert all(isinstance(line["duration_ms"], float) for line in access)
    assert len({line["request_id"] for line in access}) == len(access)


def test_a_realistic_key_holder_run_logs_no_identifiers(tmp_path: Path) -> None:
    with in_keyholder(tmp_path) as holder, captured() as stream:
        secrets = keyholder_run(holder)
    text = stream.getvalue()
    found = lines(stream)
    for kind, values in secrets.items():
        for secret in values:
            assert secret not in text, (kind, secret)
    access = [line for line in found if line["event"] == "http.request"]
    assert [(line["method"], line["route"], line["status"]) for line in access] == [
        ("POST", "/v1/oprf/evaluate", 200),
        ("POST", "/v1/oprf/evaluate", 422),
        ("GET", "/v1/oprf/epochs", 200),
        ("POST", "/v1/oprf/evaluate", 401),
        ("PUT", "/v1/oprf/evaluate", 405),
        ("GET", "unmatched", 404),
    ]
    assert all(isinstance(line["duration_ms"], float) for line in access)
    assert len({line["request_id"] for line in access}) == len(access)


@pytest.mark.parametrize(
    ("command", "expected"), [(["keyholder", "retire"], "text"), (["db", "upgrade"], "json")]
)
def test_a_key_holder_command_logs_in_the_key_holders_format(
    command: list[str], expected: str
) -> None:
    """Found by a review in stop 41: every ``vir`` command logged in ``VIR_LOG_FORMAT``,
    ``vir keyholder ...`` too, while ``vir keyholder serve`` logs in
    ``VIR_KEYHOLDER_LOG_FORMAT``. The command's own run is replaced by one that logs."""
    module = "cli_keyholder" if command[0] == "keyholder" else "cli"
    name = "cmd_retire" if command[0] == "keyholder" else "cmd_db_upgrade"
    code = (
        "import logging\n"
        "from vir import cli, cli_keyholder\n"
        "def logged(settings, args):\n"
        "    logging.getLogger('vir.test').warning('one line')\n"
        "    return 0\n"
        f"setattr({module}, {name!r}, logged)\n"
        f"raise SystemExit(cli.main({command!r}))\n"
    )
    env = {**os.environ, "VIR_LOG_FORMAT": "json", "VIR_KEYHOLDER_LOG_FORMAT": "text"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert "one line" in line
    assert line.startswith("{") == (expected == "json"), line
