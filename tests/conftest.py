"""Hypothesis profiles, and the database the suite runs on.

HYPOTHESIS_PROFILE: the default keeps CI fast; ``deep`` searches harder.

VIR_TEST_DATABASE: ``sqlite`` (default) or ``postgresql`` (a server the suite
starts itself, see ``support.postgres``). On PostgreSQL, tests marked
``sqlite_only`` are skipped, and so is any test that opens the database file
with the ``sqlite3`` module itself (directly or through a helper of its module):
such a test cannot reach a PostgreSQL database.
"""

from __future__ import annotations

import os
import sqlite3
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from support import postgres

# No per-example deadline: on a loaded 2-core CI machine an example's time says nothing
# about correctness (speed is measured by `make bench`), and a deadline made flakes.
settings.register_profile("default", print_blob=True, deadline=None)
settings.register_profile("deep", max_examples=2000, print_blob=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): a test of SQLite itself; skipped when VIR_TEST_DATABASE=postgresql",
    )
    config.addinivalue_line(
        "markers", "postgresql_only(reason): needs PostgreSQL; skipped on SQLite"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"vir test database: {postgres.backend()} ({postgres.BACKEND_ENV})"


def pytest_sessionstart(session: pytest.Session) -> None:
    if (
        postgres.on_postgresql()
        and not os.environ.get(postgres.URL_ENV)
        and postgres.find_bindir() is None
    ):
        raise pytest.UsageError(
            "VIR_TEST_DATABASE=postgresql, but no PostgreSQL server binaries (initdb, "
            "postgres) were found: run scripts/ensure-postgres.sh, or set "
            f"{postgres.BINDIR_ENV} or {postgres.URL_ENV}"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    postgres.stop_server()


# Lines a test wants shown at the end of the run (``record_property("terminal_summary",
# text)``): a test's own output is not shown when it runs in a pytest-xdist worker, but its
# report, with these properties, reaches the process that writes the summary.
_SUMMARIES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":  # the teardown's report carries the same properties
        _SUMMARIES.extend(
            str(v) for name, v in report.user_properties if name == "terminal_summary"
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for text in _SUMMARIES:
        terminalreporter.write_line(text)


def _opens_sqlite_file(function: Callable[..., Any], module: types.ModuleType) -> bool:
    """Whether ``function``, or a function of its module that it names, uses ``sqlite3``."""
    if module.__dict__.get("sqlite3") is not sqlite3:
        return False
    seen: set[int] = set()
    pending = [function]
    while pending:
        current = pending.pop()
        if id(current) in seen or not hasattr(current, "__code__"):
            continue
        seen.add(id(current))
        codes, names = [current.__code__], set()
        while codes:
            code = codes.pop()
            names.update(code.co_names)
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        if "sqlite3" in names:
            return True
        pending += [
            value
            for name in names
            if isinstance(value := module.__dict__.get(name), types.FunctionType)
            and value.__module__ == module.__name__
        ]
    return False


# The modules that run longest (seconds per database on this 2-core machine, from
# ``--durations=0``, rounded). pytest-xdist hands modules to its two workers in the
# order they are collected (``--no-loadscope-reorder``): these go first, longest first,
# and the many short ones fill in behind them, so both workers finish together instead
# of one running a two-minute module alone at the end.
LONG_MODULES = {
    "integration/test_schemathesis.py": 130,
    "integration/test_stress_multiprocess.py": 50,
    "integration/test_delivery_workers.py": 31,
    "integration/test_portal_pages.py": 30,
    "integration/test_portal_followup.py": 30,
    "property/test_matching_oracle.py": 29,
    "security/test_audit_flooding.py": 29,
    "integration/test_rekey_kill.py": 28,
    "integration/test_portal_officer.py": 25,
    "property/test_removal_oracle.py": 22,
    "integration/test_cli.py": 22,
    "integration/test_keyholder_service.py": 20,
    "integration/test_threshold_repair.py": 17,
    "security/test_threshold_repair_edges.py": 15,
    "integration/test_portal_pages_threshold.py": 12,
    "integration/test_revocation.py": 10,
    "integration/test_threshold_repair_hsm.py": 10,
}


def _expected_seconds(item: pytest.Item) -> int:
    relative = Path(str(item.path)).relative_to(Path(__file__).parent).as_posix()
    return LONG_MODULES.get(relative, 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_expected_seconds, reverse=True)  # stable: the rest keep their order
    on_postgresql = postgres.on_postgresql()
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        if on_postgresql:
            marker = item.get_closest_marker("sqlite_only")
            if marker is not None:
                reason = marker.kwargs.get("reason") or (marker.args or ["SQLite only"])[0]
                item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
            elif _opens_sqlite_file(item.obj, item.module):
                item.add_marker(
                    pytest.mark.skip(
                        reason="opens the database with the sqlite3 module; to run it on "
                        "PostgreSQL too, use RunningService.sql() or store.db.engine"
                    )
                )
        else:
            marker = item.get_closest_marker("postgresql_only")
            if marker is not None:
                reason = marker.kwargs.get("reason") or (marker.args or ["PostgreSQL only"])[0]
                item.add_marker(pytest.mark.skip(reason=f"PostgreSQL only: {reason}"))
