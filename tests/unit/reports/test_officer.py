"""CSV and PDF forms of the privacy officer's report and the monitor."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import pytest
from pypdf import PdfReader

from vir.audit.actions import Action
from vir.reports.labels import CATEGORIES, FLAGS, PURPOSES, REFUSALS, WITHDRAWALS
from vir.reports.officer import monitor_csv, monitor_pdf, privacy_csv, privacy_pdf
from vir.reports.suppression import legend, render_rows, suppress

CREATED = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
OIN = "00000009000000000100"
VT = "00000009000000000198"
ROOT = "2Q6oXRkbVh0EUqTiNS32ecCuBF4vHmUYDs9TThAfa/o="
CHECKPOINT = {
    "origin": "vir.example/audit",
    "tree_size": 1234,
    "root_hash": ROOT,
    "key_name": "vir.example/audit",
    "key_id": "0a1b2c3d",
    "verifier_key": "vir.example/audit+0a1b2c3d+AQ==",
    "note": "vir.example/audit\n1234\n" + ROOT + "\n\n— vir.example/audit AAAA\n",
    "verify": f"vir report verify --tree-size 1234 --root-hash {ROOT}",
}


def _privacy() -> dict[str, Any]:
    org = {"oin": OIN, "name": "School Ş"}
    vt = {"oin": VT, "name": "Veilig Thuis T"}
    return {
        "report": "privacy",
        "period": {"from": "2026-10-01", "to": "2026-12-01"},
        "generated_at": "2026-12-01T09:00:00.000000Z",
        "checkpoint": CHECKPOINT,
        "months": ["2026-10", "2026-11"],
        "events": [
            org | {"action": "signal.registered", "count": 14},
            {"oin": None, "name": None, "action": "match.created", "count": 2},
            {"oin": None, "name": None, "action": "match.member_added", "count": 1},
        ],
        "consultations": [
            org | {"total": 3, "purposes": {"triage": 3}},
            vt | {"total": 30, "purposes": {"safety_assessment": 10, "triage": 20}},
        ],
        "refusals": [
            {"reason": "not_permitted", "endpoint": "/v1/signals", "count": 1},
            {"reason": "rate_limited", "endpoint": "/v1/oprf/evaluate", "count": 4},
        ],
        "uninformed": {"days": 30, "organisations": [org | {"count": 2}]},
        "volumes": [
            org | {"month": "2026-10", "registrations": 2, "consultations": 0, "evaluations": 5},
            org | {"month": "2026-11", "registrations": 12, "consultations": 3, "evaluations": 9},
        ],
        "flags": [
            org
            | {
                "kind": "registration_surge",
                "figures": {"month": "2026-11", "registrations": 12, "median": 3.5},
            },
            vt
            | {
                "kind": "consultations_without_registrations",
                "figures": {"consultations": 30, "registrations": 0},
            },
            org
            | {
                "kind": "evaluation_burst",
                "figures": {"from": "2026-10-05T10:00:00Z", "elements": 1100, "limit": 1000},
            },
            org
            | {
                "kind": "quick_withdrawals",
                "figures": {"signals": 4, "within_minutes": 10, "correction": 1, "unjustified": 3},
            },
            org
            | {
                "kind": "lookup_burst",
                "figures": {"from": "2026-10-06T08:00:00Z", "lookups": 12, "limit": 10},
            },
            org
            | {
                "kind": "rate_limited",
                "figures": {"refusals": 4, "endpoints": "/v1/oprf/evaluate"},
            },
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
        "checkpoint": CHECKPOINT,
        "months": months,
        "granularity": "month",
        "grouping": "categories",
        "suppressed": {"hidden": 4, "numbers": 16, "share": 0.25},
        "measures": [
            {
                "measure": "signals",
                "title": "Geregistreerde signalen",
                "rows": render_rows(table, corner="categorie"),
                "legend": legend(table),
                "suppressed": {"hidden": 4, "numbers": 16, "share": 0.25},
            }
        ],
    }


def _read(pdf: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return " ".join(text.split()), sum(len(page.images) for page in reader.pages)


def _nl_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


# Codes a reader must never meet: every catalogued code, a month or date as the JSON
# writes it, and figures as key=value.
_CODES = sorted(
    {a.value for a in Action}
    | {c for table in (PURPOSES, WITHDRAWALS, REFUSALS, FLAGS) for c in table}
    | {c for c in CATEGORIES if "_" in c},
    key=len,
    reverse=True,
)
_RAW = re.compile(
    r"\b20\d\d-(\d\d|Q\d)\b|\w=\w|consultations=|(?<![\w/.])("
    + "|".join(re.escape(c) for c in _CODES)
    + r")(?![\w.])"
)


def _raw_codes(text: str) -> list[str]:
    # The checkpoint's own lines (origin, hashes, keys, the command) are technical on
    # purpose: an auditor copies them. They are not codes a reader has to decode.
    for value in CHECKPOINT.values():
        text = text.replace(str(value), " ")
    return [m.group(0) for m in _RAW.finditer(text)]


def test_the_raw_code_check_catches_codes() -> None:
    assert _raw_codes("match.member_added; safety_assessment in 2026-01, consultations=3")


def test_privacy_pdf_and_dutch_csv_contain_no_raw_code() -> None:
    text, _ = _read(privacy_pdf(_privacy(), CREATED))
    assert _raw_codes(text) == []
    cells = " | ".join(" ".join(row) for row in _nl_rows(privacy_csv(_privacy(), "nl")))
    assert _raw_codes(cells) == []


def test_monitor_pdf_and_dutch_csv_contain_no_raw_code() -> None:
    text, _ = _read(monitor_pdf(_monitor(), CREATED))
    assert _raw_codes(text) == []
    cells = " | ".join(" ".join(row) for row in _nl_rows(monitor_csv(_monitor(), "nl")))
    assert _raw_codes(cells) == []


def test_privacy_csv_data_dialect_keeps_the_codes_in_one_long_table() -> None:
    rows = list(csv.reader(io.StringIO(privacy_csv(_privacy(), "data"))))
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
        "month=2026-11; registrations=12; median=3.5",
    ] in rows
    assert ["checkpoint", "", "", "tree_size", "", "1234"] in rows
    assert ["checkpoint", "", "", "root_hash", "", ROOT] in rows


def test_privacy_csv_for_dutch_excel() -> None:
    text = privacy_csv(_privacy())  # nl is the default
    rows = _nl_rows(text)
    assert rows[0] == ["Onderdeel", "OIN", "Organisatie", "Onderwerp", "Toelichting", "Aantal"]
    assert ["Rapportage", "", "", "Periode", "1 oktober t/m 30 november 2026", ""] in rows
    assert ["Gebeurtenissen", OIN, "School Ş", "Melding gedaan", "", "14"] in rows
    assert ["Gebeurtenissen", "", "(systeem)", "Organisatie aan match toegevoegd", "", "1"] in rows
    assert ["Raadplegingen per doel", VT, "Veilig Thuis T", "Veiligheidsbeoordeling", "", "10"] in (
        rows
    )
    assert ["Volumes per maand", OIN, "School Ş", "Registraties", "november 2026", "12"] in rows
    surge = next(r for r in rows if r[0] == "Opvallend patroon")
    assert "mediaan van 3,5 per maand" in surge[4]  # a decimal comma
    assert ["Herkomst", "", "", "Aantal regels in het log", "1234", ""] in rows
    assert ["Herkomst", "", "", "Roothash (Merkle-boom)", ROOT, ""] in rows
    assert all(len(row) == 6 for row in rows)


@pytest.mark.parametrize(
    "sentence",
    [
        "Veilig Thuis T: 30 raadplegingen zonder eigen registraties in de periode",
        "School Ş: 12 registraties in november 2026, tegen een mediaan van 3,5 per maand",
        "School Ş: 1100 gepseudonimiseerde elementen binnen één uur vanaf 5 oktober 2026 "
        "12:00 (meer dan 1000)",
        "School Ş: 4 meldingen binnen 10 minuten na registratie ingetrokken (reden correctie: "
        "1, ten onrechte gemeld: 3)",
        "School Ş: 4 verzoeken geweigerd wegens de limiet",
    ],
)
def test_privacy_pdf_says_each_flag_as_a_sentence(sentence: str) -> None:
    text, _ = _read(privacy_pdf(_privacy(), CREATED))
    assert sentence in text


def test_privacy_pdf_has_dutch_headings_and_a_chart() -> None:
    pdf = privacy_pdf(_privacy(), CREATED)
    text, images = _read(pdf)
    for heading in (
        "Rapportage voor de functionaris gegevensbescherming",
        "Opvallende patronen",
        "Piek in registraties in de laatste maand",
        "Volumes per maand",
        "Handelingen per organisatie",
        "Raadplegingen per doel",
        "Geweigerde verzoeken",
        "Te veel verzoeken (limiet bereikt)",
        "Informatieplicht niet bevestigd",
        "Periode 1 oktober t/m 30 november 2026",
        "Organisatie aan match toegevoegd",
        "Veiligheidsbeoordeling",
        "november 2026",
    ):
        assert heading in text
    # "Signaleringen" is the domain's word for registrations: never a heading for flags.
    assert "Signalering" not in text
    assert images >= 2  # volumes, and evaluations per month
    assert privacy_pdf(_privacy(), CREATED) == pdf  # deterministic


def test_every_report_states_its_signed_checkpoint_and_how_to_verify_it() -> None:
    for pdf in (privacy_pdf(_privacy(), CREATED), monitor_pdf(_monitor(), CREATED)):
        text, _ = _read(pdf)
        assert "Herkomst van de cijfers" in text
        for value in ("vir.example/audit", "1234", "0a1b2c3d", "vir report verify --tree-size"):
            assert value in text
        assert ROOT in text.replace(" ", "")  # a long hash may wrap
    monitor_rows = _nl_rows(monitor_csv(_monitor()))
    assert ["Herkomst", "Roothash (Merkle-boom)", ROOT] in monitor_rows
    data_rows = list(csv.reader(io.StringIO(monitor_csv(_monitor(), "data"))))
    assert ["checkpoint", "verify", CHECKPOINT["verify"]] in data_rows


def test_a_report_without_a_checkpoint_says_so() -> None:
    text, _ = _read(privacy_pdf(_privacy() | {"checkpoint": None}, CREATED))
    assert "niet aan een ondertekend controlepunt gekoppeld" in text


def test_privacy_pdf_of_a_quiet_period() -> None:
    report = _privacy() | {"flags": [], "consultations": [], "refusals": []}
    text, _ = _read(privacy_pdf(report, CREATED))
    assert "Geen opvallende patronen" in text and "Geen geweigerde verzoeken" in text


def test_monitor_csv_data_dialect_shows_the_published_cells_and_the_legend() -> None:
    rows = list(csv.reader(io.StringIO(monitor_csv(_monitor(), "data"))))
    # What the figures are of comes first (a file without it once could not say).
    assert rows[:3] == [
        ["report", "from", "2026-01-01"],
        ["report", "to", "2026-04-01"],
        ["report", "region", "Rotterdam"],
    ]
    rows = rows[3:]
    assert rows[0] == ["signals", "categorie", "2026-01", "2026-02", "2026-03", "totaal"]
    gp = next(r for r in rows if r[1] == "gp")
    assert gp[3] == "<10" and "3" not in gp
    assert any(cell == "x" for row in rows for cell in row)
    notes = [r[2] for r in rows if r[1] == "legenda"]
    assert notes[0].startswith("<10: minder dan 10") and notes[1].startswith("x: geheim")


def test_monitor_csv_for_dutch_excel() -> None:
    rows = _nl_rows(monitor_csv(_monitor()))
    title = "Geregistreerde signalen"
    assert [title, "Categorie", "januari 2026", "februari 2026", "maart 2026", "Totaal"] in rows
    gp = next(r for r in rows if r[1] == "Huisartsen")
    assert gp[3] == "<10" and "3" not in gp
    assert any(r[1] == "Totaal" for r in rows if r[0] == title)
    assert [r[2][:18] for r in rows if r[1] == "Legenda"] == [
        "<10: minder dan 10",
        "x: geheim; het get",
    ]


def test_monitor_pdf_prints_markers_and_legend() -> None:
    text, _ = _read(monitor_pdf(_monitor(), CREATED))
    assert "Monitor Verwijsindex" in text and "regio Rotterdam" in text
    assert "1 januari t/m 31 maart 2026" in text
    assert "Geregistreerde signalen" in text and "Huisartsen" in text
    assert "<10" in text and "minder dan 10" in text and "geheim" in text


def test_charts_label_months_as_a_reader_writes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import vir.reports.officer as officer

    drawn: list[str] = []
    real = officer.chart_png

    def spy(series: Any, *args: Any, **named: Any) -> bytes:
        drawn.extend(period for points in series.values() for period, _ in points)
        return real(series, *args, **named)

    monkeypatch.setattr(officer, "chart_png", spy)
    privacy_pdf(_privacy(), CREATED)
    assert drawn and set(drawn) == {"oktober 2026", "november 2026"}


def test_monitor_says_how_much_is_not_shown_and_charts_each_measure() -> None:
    text, images = _read(monitor_pdf(_monitor(), CREATED))
    assert "Niet getoond 4 van 16 getallen (25 %)" in text
    assert "per categorie van organisaties en per maand" in text
    assert images == 1  # one chart per measure
    rows = _nl_rows(monitor_csv(_monitor()))
    assert ["Monitor Verwijsindex", "Niet getoond", "4 van 16 getallen (25 %)"] in rows
    assert ["Geregistreerde signalen", "Niet getoond", "4 van 16 getallen (25 %)"] in rows
    data = list(csv.reader(io.StringIO(monitor_csv(_monitor(), "data"))))
    assert ["signals", "suppressed", "4", "16"] in data and [
        "report",
        "granularity",
        "month",
    ] in data


def test_monitor_by_quarter_and_group_reads_as_dutch() -> None:
    cells = {("schooling", "2026-Q1"): 30, ("care", "2026-Q1"): 12, ("care", "2026-Q2"): 15}
    table = suppress(cells, ["schooling", "care"], ["2026-Q1", "2026-Q2"])
    report = _monitor() | {"granularity": "quarter", "grouping": "groups"}
    report["measures"] = [report["measures"][0] | {"rows": render_rows(table, corner="groep")}]
    text, images = _read(monitor_pdf(report, CREATED))
    assert _raw_codes(text) == []
    assert "Onderwijs, leerplicht en kinderopvang" in text and "1e kw." in text and "Groep" in text
    assert images == 1
    rows = _nl_rows(monitor_csv(report))
    assert [
        "Geregistreerde signalen",
        "Groep",
        "1e kwartaal 2026",
        "2e kwartaal 2026",
        "Totaal",
    ] in rows


def _monitor_by_month(months: list[str]) -> dict[str, Any]:
    categories = ["jgz", "education", "gp", "police"]  # "Jeugdgezondheidszorg": the longest
    table = suppress({(c, m): 50 for c in categories for m in months}, categories, months)
    report = _monitor() | {"months": months}
    report["measures"] = [report["measures"][0] | {"rows": render_rows(table, corner="categorie")}]
    return report


@pytest.mark.parametrize("count", [3, 12, 36])
def test_monitor_pdf_by_month_breaks_no_header_inside_a_word(count: int) -> None:
    months = [f"{2026 + i // 12}-{i % 12 + 1:02d}" for i in range(count)]
    reader = PdfReader(io.BytesIO(monitor_pdf(_monitor_by_month(months), CREATED)))
    words = {w for page in reader.pages for w in page.extract_text().split()}
    # A header as docs/privacy/monitor.md shows it: "mrt" over "2026", "Totaal".
    assert {"jan", "mrt", "dec" if count >= 12 else "feb", "2026", "Totaal"} <= words
    assert "Jeugdgezondheidszorg" in words
    assert not words & {"202", "Totaa", "Jeugdgezondheidszor"}  # the pieces of a broken one


def test_monitor_pdf_splits_many_months_and_keeps_every_cell() -> None:
    months = [f"2026-{m:02d}" for m in range(1, 13)]
    text, _ = _read(monitor_pdf(_monitor_by_month(months), CREATED))
    assert text.count("Categorie") >= 2  # the months in two tables, each with its rows
    assert text.count("Totaal") >= 1
    assert all(label in text for label in ("jan", "jun", "jul", "dec"))


def test_privacy_pdf_says_geen_when_every_information_duty_is_confirmed() -> None:
    report = _privacy() | {"uninformed": {"days": 30, "organisations": []}}
    text, _ = _read(privacy_pdf(report, CREATED))
    section = text[text.index("Informatieplicht niet bevestigd") :]
    assert section.split("(stand op het moment van opstellen).")[1].lstrip().startswith("Geen.")


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        ("not_configured", "geen sleutelhouder ingesteld"),
        ("unreachable", "sleutelhouder was niet bereikbaar"),
    ],
)
def test_missing_evaluation_counts_are_said_in_the_pdf_and_both_csvs(
    reason: str, sentence: str
) -> None:
    counts = {"source": "keyholder", "available": False, "reason": reason, "detail": "why"}
    report = _privacy() | {"evaluation_counts": counts}
    text, _ = _read(privacy_pdf(report, CREATED))
    assert sentence in text and "pseudonimiseringen per organisatie ontbreekt" in text
    nl = [row for row in _nl_rows(privacy_csv(report, "nl")) if row[3] == "Pseudonimiseringen"]
    assert len(nl) == 1 and sentence in nl[0][4]
    data = list(csv.reader(io.StringIO(privacy_csv(report, "data"))))
    assert ["evaluation_counts", "", "", "available", reason, "false"] in data
    counted = _privacy() | {"evaluation_counts": {"source": "keyholder", "available": True}}
    assert "Pseudonimiseringen;" not in privacy_csv(counted, "nl").replace('"', "")


def test_volumes_without_evaluation_counts_show_no_figure_not_zero() -> None:
    """The key holders' counts were not read: the volumes' evaluations are None, shown
    as "niet beschikbaar" (empty in the data dialect), never as 0."""
    counts = {"source": "keyholder", "available": False, "reason": "unreachable", "detail": "x"}
    report = _privacy() | {"evaluation_counts": counts}
    for volume in report["volumes"]:
        volume["evaluations"] = None
    nl = [row for row in _nl_rows(privacy_csv(report, "nl")) if row[0] == "Volumes per maand"]
    evaluations = [row[5] for row in nl if row[3] == "Gepseudonimiseerde elementen (ten minste)"]
    assert evaluations == ["niet beschikbaar", "niet beschikbaar"]
    data = list(csv.reader(io.StringIO(privacy_csv(report, "data"))))
    assert [row[5] for row in data if row[:4] == ["volumes", OIN, "School Ş", "evaluations"]] == [
        "",
        "",
    ]
    text, images = _read(privacy_pdf(report, CREATED))
    assert "november 2026 12 3 niet beschikbaar" in text and "None" not in text
    assert images == 1  # the registrations chart; no chart of evaluations


def test_how_the_evaluation_counts_were_computed_is_said() -> None:
    """A lower bound, and from how many of the key holders: in the PDF, both CSVs and the
    flag's sentence."""
    counts = {
        "source": "keyholder",
        "available": True,
        "method": "at_least",
        "keyholders": 3,
        "threshold": 2,
        "answered": 2,
        "not_answered": ["https://kh2.example:8444"],
        "detail": "at least: ...",
    }
    report = _privacy() | {"evaluation_counts": counts}
    report["flags"] = [
        {"oin": OIN, "name": "School Ş", "kind": "evaluation_burst", "figures": figures}
        for figures in (
            {"from": "2026-10-05T10:00:00Z", "elements": 3012, "limit": 1000},
            {"from": "2026-10-05T10:00:00Z", "elements": 3012, "limit": 1000}
            | {"counted": "at_least"},
            {"from": "2026-10-05T10:00:00Z", "elements": 1050, "limit": 1000}
            | {"counted": "per_threshold", "threshold": 2},
        )
    ]
    said = (
        "per organisatie en uur het hoogste aantal dat één sleutelhouder in zijn log telde "
        "(2 van de 3 sleutelhouders gaven hun aantallen; niet: https://kh2.example:8444). "
        "Het werkelijke aantal is minstens zo groot"
    )
    rows = _nl_rows(privacy_csv(report, "nl"))
    about = [row[4] for row in rows if row[:4] == ["Herkomst", "", "", "Pseudonimiseringen"]]
    assert len(about) == 1 and said in about[0]
    sentences = [row[4] for row in rows if row[0] == "Opvallend patroon"]
    assert sentences == [
        "School Ş: 3012 gepseudonimiseerde elementen binnen één uur vanaf "
        "5 oktober 2026 12:00 (meer dan 1000)",
        "School Ş: ten minste 3012 gepseudonimiseerde elementen binnen één uur vanaf "
        "5 oktober 2026 12:00 (meer dan 1000)",
        "School Ş: 1050 gepseudonimiseerde elementen binnen één uur vanaf "
        "5 oktober 2026 12:00 (meer dan 1000), geschat: de evaluaties van de sleutelhouders "
        "samen gedeeld door 2",
    ]
    data = list(csv.reader(io.StringIO(privacy_csv(report, "data"))))
    assert ["evaluation_counts", "", "", "method", "", "at_least"] in data
    assert ["evaluation_counts", "", "", "answered", "", "2"] in data
    assert ["evaluation_counts", "", "", "not_answered", "", "https://kh2.example:8444"] in data
    text, _ = _read(privacy_pdf(report, CREATED))
    assert said in text
    assert _raw_codes(text) == []
