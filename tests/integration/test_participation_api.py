"""The participation monitor over the API, the operator's CLI and ``vir-client``
(issue 17, part 6).

The whole app in-process on a fresh store (SQLite, or PostgreSQL with
``VIR_TEST_DATABASE=postgresql``): organisations register and confirm contact through the
API, and the municipality's officers read the report in every form. Then ``vir-client``
over real HTTPS against a running service with the demo certificates.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import launch
from support.clirun import run_vir
from support.inapp import InApp
from support.instore import ORGS, T0, UTRECHT_ORGS
from support.matchregie import act_as, regie_app, register
from support.service import RunningService
from support.world import MUNICIPALITY, OPERATOR

from vir.api.identity import require_caller
from vir.client.canonical import nl_bsn
from vir.client.demo import made_up_bsn
from vir.domain.organisations import Organisation, Role
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation

SCHOOL, GP, YOUTH_CARE, POLICE = ORGS
SCHOOL_U, _GP_U = UTRECHT_ORGS
PATH = "/v1/privacy/reports/participation"
NOVEMBER = {"from": "2026-11-01", "to": "2026-12-01"}


def _as(app: InApp, org: Organisation, role: Role) -> None:
    caller = Caller(org, "f" * 64, role)
    app.app.dependency_overrides[require_caller] = lambda: caller


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    """Kim: the school, then youth care (a match); the school confirms contact with youth
    care (contact for both: youth care records nothing). Noor: the Utrecht school alone
    (no match)."""
    with regie_app(tmp_path) as running:
        register_organisation(running.app.state.services.db, OPERATOR, T0)
        register(running, SCHOOL, "kim-school", "kim")
        (match,) = register(running, YOUTH_CARE, "kim-youth", "kim")["matches"]
        register(running, SCHOOL_U, "noor-school", "noor")
        act_as(running, SCHOOL)
        reply = running.request(
            "POST",
            f"/v1/matches/{match['id']}/follow-up",
            json={"event": "contact_made", "contact_with": [str(YOUTH_CARE.oin)]},
        )
        assert reply.status_code == 200, reply.text
        yield running


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in report["organisations"]}


def test_the_officers_read_the_report_in_every_form(app: InApp) -> None:
    _as(app, MUNICIPALITY, Role.PRIVACY_OFFICER)
    reply = app.request("GET", PATH, params=NOVEMBER)
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert (report["report"], report["region"], report["days"]) == (
        "participation",
        "Rotterdam",
        14,
    )
    assert report["checkpoint"]["verify"].startswith("vir report verify --tree-size ")
    orgs = _by_name(report)
    assert {o["region"] for o in orgs.values()} == {"Rotterdam"}
    school, youth = orgs["School A"], orgs["Jeugdzorg C"]
    assert (school["signals"], school["matches"], school["contact_within"]) == (1, 1, 1)
    assert school["median_days"] == 0.0  # seconds after the match
    # Contact recorded by the school with youth care is youth care's contact too.
    assert (youth["signals"], youth["matches"], youth["contact_within"]) == (1, 1, 1)
    assert youth["contact_pending"] == 0 and youth["median_days"] == 0.0
    assert orgs["Politie D"]["signals"] == 0
    regions = [row[0] for row in report["regions"]["signals"]["rows"][1:]]
    assert regions == ["Rotterdam", "Utrecht", "totaal"]

    data = app.request("GET", PATH, params=NOVEMBER | {"format": "csv", "dialect": "data"})
    assert data.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(data.text)))
    assert ["organisations", str(SCHOOL.oin), "School A", "contact_within", "", "1"] in rows
    dutch = app.request(
        "GET", PATH, params=NOVEMBER | {"format": "csv"}, headers={"Accept-Language": "nl"}
    )
    assert dutch.text.startswith("\ufeffOnderdeel;OIN;Organisatie;")
    pdf = app.request("GET", PATH, params=NOVEMBER | {"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == 'attachment; filename="deelname.pdf"'
    assert pdf.content.startswith(b"%PDF-")

    _as(app, MUNICIPALITY, Role.FOLLOW_UP_OFFICER)
    theirs = app.request("GET", PATH, params=NOVEMBER | {"days": 3, "region": "Rotterdam"})
    assert theirs.status_code == 200, theirs.text
    assert (theirs.json()["region"], theirs.json()["days"]) == ("Rotterdam", 3)

    _as(app, OPERATOR, Role.NATIONAL_PRIVACY_OFFICER)
    utrecht = app.request("GET", PATH, params=NOVEMBER | {"region": "Utrecht"}).json()
    assert [(o["name"], o["signals"]) for o in utrecht["organisations"]] == [
        ("School U", 1),  # by category: education before gp
        ("Huisarts U", 0),
    ]
    everything = app.request("GET", PATH, params=NOVEMBER).json()
    assert everything["region"] is None
    assert {o["region"] for o in everything["organisations"]} == {"Rotterdam", "Utrecht"}

    generated = [e for e in _audit(app) if e.action == "report.generated"]
    assert [(e.role, e.objects["report"]) for e in generated] == [
        ("privacy_officer", "participation"),
        ("privacy_officer", "participation"),
        ("privacy_officer", "participation"),
        ("privacy_officer", "participation"),
        ("follow_up_officer", "participation"),
        ("national_privacy_officer", "participation"),
        ("national_privacy_officer", "participation"),
    ]


def _audit(app: InApp) -> list[Any]:
    from sqlalchemy import select

    from vir.audit.chain import AuditEvent
    from vir.store.tables import AuditEntryRow

    db = app.app.state.services.db
    db.integrate()
    with db.read() as session:
        bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
        return [AuditEvent.decode(bytes(b)) for b in bodies]


def test_the_operator_cli(app: InApp, tmp_path: Path) -> None:
    db = app.app.state.services.db
    args = ("report", "participation", "--from", "2026-11-01", "--to", "2026-12-01")
    ran = run_vir(db, *args, "--region", "Rotterdam", "--days", "7")
    assert ran.code == 0, ran.err
    report = json.loads(ran.out)
    assert (report["region"], report["days"]) == ("Rotterdam", 7)
    assert _by_name(report)["School A"]["contact_within"] == 1
    pdf, csv_file = tmp_path / "deelname.pdf", tmp_path / "deelname.csv"
    ran = run_vir(db, *args, "--pdf", str(pdf), "--csv", str(csv_file), "--quiet")
    assert ran.code == 0, ran.err
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert csv_file.read_text(encoding="utf-8").startswith("\ufeffOnderdeel;")
    refused = run_vir(db, *args, "--days", "0")
    assert refused.code == 2 and "days" in refused.err


def _vir_client(service: RunningService, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vir.client.cli", "--url", service.url]
    command += ["--dev-dir", str(service.dev), "--dev-org", who, *args]
    return launch.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_vir_client_fetches_the_report(service: RunningService, tmp_path: Path) -> None:
    """Over real HTTPS: the school and the GP match; the GP confirms contact. The privacy
    officer's JSON counts it; the PDF is written to a file; a reporter is refused."""
    bsn = nl_bsn(made_up_bsn())
    answers = {}
    for who in ("education", "gp"):
        with service.client(who) as client:
            made = client.pseudonymise([bsn])
            answers[who] = client.register_signal(
                {
                    "local_ref": f"deelname-{uuid.uuid4().hex[:12]}",
                    "epoch": made.epoch,
                    "person": made.pseudonyms[0],
                    "professional": {"name": "Anna de Vries", "email": "anna@example.nl"},
                }
            )
    (match,) = answers["gp"]["matches"]
    with service.client("gp") as client:
        body = {"event": "contact_made", "contact_with": [service.org("education").oin]}
        client.request("POST", f"/v1/matches/{match['id']}/follow-up", body)
    today = dt.datetime.now(dt.UTC).date()
    period = ("--from", today.isoformat(), "--to", (today + dt.timedelta(days=1)).isoformat())

    done = _vir_client(service, "privacy_officer", "report", "participation", *period)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    gp = next(o for o in report["organisations"] if o["oin"] == service.org("gp").oin)
    assert (gp["matches"], gp["contact_within"]) >= (1, 1)
    assert "participation (bytes)" in done.stderr  # the progress bar (not a terminal: lines)

    # A CSV is the Dutch one unless --dialect data (before: the API's data dialect, as
    # vir-client sent no dialect and no Accept-Language).
    csv_out = tmp_path / "deelname.csv"
    done = _vir_client(service, "privacy_officer", "report", "participation", *period,
                       "--out", str(csv_out), "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert csv_out.read_bytes().startswith("\ufeff".encode()) and b";" in csv_out.read_bytes()

    out = tmp_path / "deelname.pdf"
    args = ("report", "participation", *period, "--format", "pdf", "--out", str(out), "--quiet")
    written = _vir_client(service, "privacy_officer", *args)
    assert written.returncode == 0, written.stderr
    assert out.read_bytes().startswith(b"%PDF-") and written.stderr == ""

    no_file = _vir_client(
        service, "privacy_officer", "report", "participation", *period, "--format", "pdf"
    )
    assert no_file.returncode == 2 and "out" in no_file.stderr
    reporter = _vir_client(service, "education", "report", "participation", *period)
    assert reporter.returncode == 1 and "403" in reporter.stderr
    backwards = ("--from", period[3], "--to", period[1])
    bad = _vir_client(service, "privacy_officer", "report", "participation", *backwards)
    assert bad.returncode == 2 and "from" in bad.stderr
