"""CSV and PDF forms of the privacy officer's report and the monitor."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from pypdf import PdfReader

from vir.reports.officer import monitor_csv, monitor_pdf, privacy_csv, privacy_pdf
from vir.reports.suppression import legend, render_rows, suppress

CREATED = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
OIN = "00000009000000000100"


def _privacy() -> dict[str, Any]:
    org = {"oin": OIN, "name": "School Ş"}
    return {
        "report": "privacy",
        "period": {"from": "2026-10-01", "to": "2026-12-01"},
        "generated_at": "2026-12-01T09:00:00.000000Z",
        "months": ["2026-10", "2026-11"],
        "events": [
            org | {"action": "signal.registered", "count": 14},
            {"oin": None, "name": None, "action": "match.created", "count": 2},
        ],
        "consultations": [org | {"total": 3, "purposes": {"triage": 3}}],
        "refusals": [{"reason": "not_permitted", "endpoint": "/v1/signals", "count": 1}],
        "uninformed": {"days": 30, "organisations": [org | {"count": 2}]},
        "volumes": [
            org | {"month": "2026-10", "registrations": 2, "consultations": 0, "evaluations": 5},
            org | {"month": "2026-11", "registrations": 12, "consultations": 3, "evaluations": 9},
        ],
        "flags": [
            org
            | {
                "kind": "registration_surge",
                "figures": {"month": "2026-11", "registrations": 12, "median": 7},
            }
        ],
    }


def _monitor() -> dict[str, Any]:
    months = ["2026-01", "2026-02", "2026-03"]
    cells = {("education", m): 50 for m in months} | {("police", m): 50 for m in months}
    cells |= {("gp", "2026-01"): 50, ("gp", "2026-02"): 3, ("gp", "2026-03"): 50}
    table = suppress(cells, ["education", "gp", "police"], months)
    return {
        "report": "monitor",
        "period": {"from": "2026-01-01", "to": "2026-04-01"},
        "region": "Rotterdam",
        "generated_at": "2026-12-01T09:00:00.000000Z",
        "months": months,
        "measures": [
            {
                "measure": "signals",
                "title": "Geregistreerde signalen",
                "rows": render_rows(table, corner="categorie"),
                "legend": legend(table),
            }
        ],
    }


def _read(pdf: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return " ".join(text.split()), sum(len(page.images) for page in reader.pages)


def test_privacy_csv_has_one_section_column_and_every_part() -> None:
    rows = list(csv.reader(io.StringIO(privacy_csv(_privacy()))))
    assert rows[0] == ["section", "oin", "organisation", "key", "subkey", "value"]
    assert ["events", OIN, "School Ş", "signal.registered", "", "14"] in rows
    assert ["events", "", "(systeem)", "match.created", "", "2"] in rows
    assert ["consultations", OIN, "School Ş", "purpose", "triage", "3"] in rows
    assert ["refusals", "", "", "not_permitted", "/v1/signals", "1"] in rows
    assert ["uninformed", OIN, "School Ş", "signals", "", "2"] in rows
    assert ["volumes", OIN, "School Ş", "evaluations", "2026-11", "9"] in rows
    assert [
        "flags",
        OIN,
        "School Ş",
        "registration_surge",
        "",
        "month=2026-11; registrations=12; median=7",
    ] in rows


def test_privacy_pdf_has_dutch_headings_and_a_chart() -> None:
    pdf = privacy_pdf(_privacy(), CREATED)
    text, images = _read(pdf)
    for heading in (
        "Rapportage voor de functionaris gegevensbescherming",
        "Signaleringen",
        "Piek in registraties in de laatste maand",
        "Volumes per maand",
        "Gebeurtenissen per organisatie",
        "Raadplegingen per doel",
        "Geweigerde verzoeken",
        "Informatieplicht niet bevestigd",
        "1 oktober 2026 tot 1 december 2026",
    ):
        assert heading in text
    assert images >= 2  # volumes, and evaluations per month
    assert privacy_pdf(_privacy(), CREATED) == pdf  # deterministic


def test_privacy_pdf_of_a_quiet_period() -> None:
    report = _privacy() | {"flags": [], "consultations": [], "refusals": []}
    text, _ = _read(privacy_pdf(report, CREATED))
    assert "Geen bijzonderheden" in text and "Geen geweigerde verzoeken" in text


def test_monitor_csv_shows_the_published_cells_and_the_legend() -> None:
    rows = list(csv.reader(io.StringIO(monitor_csv(_monitor()))))
    assert rows[0] == ["signals", "categorie", "2026-01", "2026-02", "2026-03", "totaal"]
    gp = next(r for r in rows if r[1] == "gp")
    assert gp[3] == "<10" and "3" not in gp
    assert any(cell == "x" for row in rows for cell in row)
    notes = [r[2] for r in rows if r[1] == "legenda"]
    assert notes[0].startswith("<10: minder dan 10") and notes[1].startswith("x: geheim")


def test_monitor_pdf_prints_markers_and_legend() -> None:
    text, _ = _read(monitor_pdf(_monitor(), CREATED))
    assert "Monitor Verwijsindex" in text and "regio Rotterdam" in text
    assert "Geregistreerde signalen" in text
    assert "<10" in text and "minder dan 10" in text and "geheim" in text
