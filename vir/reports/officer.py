"""CSV and PDF forms of the privacy officer's report and the municipal monitor.

The reports come from :mod:`vir.services.reports` as plain dictionaries. A CSV file holds
one report, its parts told apart by the first column, ``section``. The PDFs are Dutch
:class:`~vir.reports.pdf.Document` s with tables and charts. The monitor's tables are
printed cell for cell as :func:`vir.reports.suppression.render_rows` rendered them
(``<10`` and ``x``), with the legend under every table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from vir.audit.actions import Action
from vir.reports.pdf import Document, chart_png, dutch_date, dutch_datetime

__all__ = ["monitor_csv", "monitor_pdf", "privacy_csv", "privacy_pdf"]

_SYSTEM: Final = "(systeem)"
# The monitor's organisation categories as a Dutch reader knows them (the CSV keeps
# the codes, vir.domain.organisations.Category).
_CATEGORY_LABELS: Final = {
    "youth_care": "Jeugdhulp",
    "veilig_thuis": "Veilig Thuis",
    "jgz": "JGZ",
    "ggz": "GGZ",
    "addiction_care": "Verslavingszorg",
    "disability_care": "Gehandicaptenzorg",
    "gp": "Huisartsen",
    "hospital_emergency": "Spoedeisende hulp",
    "education": "Onderwijs",
    "leerplicht_rmc": "Leerplicht en RMC",
    "wmo_provider": "Wmo-aanbieders",
    "credit_bank": "Kredietbank",
    "police": "Politie",
    "halt": "Halt",
    "raad_kinderbescherming": "Raad voor de Kinderbescherming",
    "totaal": "Totaal",
}
_MONTHS: Final = (
    "jan",
    "feb",
    "mrt",
    "apr",
    "mei",
    "jun",
    "jul",
    "aug",
    "sep",
    "okt",
    "nov",
    "dec",
)

_FLAG_TITLES: Final = {
    "registration_surge": "Piek in registraties in de laatste maand",
    "consultations_without_registrations": "Raadplegingen zonder eigen registraties",
    "evaluation_burst": "Piek in pseudonimiseringen binnen één uur",
    "quick_withdrawals": "Signalen kort na registratie ingetrokken",
    "lookup_burst": "Piek in inzage- en verwijderverzoeken binnen één minuut",
    "rate_limited": "Verzoeken geweigerd wegens de limiet",
}


def _csv(rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue()


def _action(code: str) -> str:
    """An audit action's Dutch label (vir.audit.actions); the code itself when the
    catalogue no longer has it (an entry written by an earlier version)."""
    try:
        return Action(code).label_nl
    except ValueError:
        return code


def _name(item: Mapping[str, Any]) -> str:
    name = item.get("name")
    return str(name) if name is not None else _SYSTEM


def _oin(item: Mapping[str, Any]) -> str:
    oin = item.get("oin")
    return str(oin) if oin is not None else ""


def _figures(figures: Mapping[str, Any]) -> str:
    return "; ".join(f"{key}={value}" for key, value in figures.items())


def _period(report: Mapping[str, Any]) -> tuple[date, date]:
    period = report["period"]
    return date.fromisoformat(period["from"]), date.fromisoformat(period["to"])


def _period_text(report: Mapping[str, Any]) -> str:
    start, end = _period(report)
    return f"{dutch_date(start)} tot {dutch_date(end)}"


def privacy_csv(report: Mapping[str, Any]) -> str:
    """The privacy report as one CSV: ``section, oin, organisation, key, subkey, value``."""
    rows: list[list[object]] = [["section", "oin", "organisation", "key", "subkey", "value"]]
    period = report["period"]
    rows.append(["period", "", "", "from", "", period["from"]])
    rows.append(["period", "", "", "to", "", period["to"]])
    for item in report["events"]:
        rows.append(["events", _oin(item), _name(item), item["action"], "", item["count"]])
    for item in report["consultations"]:
        for purpose, count in item["purposes"].items():
            rows.append(["consultations", _oin(item), _name(item), "purpose", purpose, count])
    for item in report["refusals"]:
        rows.append(["refusals", "", "", item["reason"], item["endpoint"], item["count"]])
    for item in report["uninformed"]["organisations"]:
        rows.append(["uninformed", _oin(item), _name(item), "signals", "", item["count"]])
    for item in report["volumes"]:
        for measure in ("registrations", "consultations", "evaluations"):
            rows.append(["volumes", _oin(item), _name(item), measure, item["month"], item[measure]])
    for item in report["flags"]:
        rows.append(["flags", _oin(item), _name(item), item["kind"], "", _figures(item["figures"])])
    return _csv(rows)


def _volume_series(report: Mapping[str, Any]) -> dict[str, list[tuple[str, int]]]:
    return {
        "registraties": _monthly(report, "registrations"),
        "raadplegingen": _monthly(report, "consultations"),
    }


def privacy_pdf(report: Mapping[str, Any], created_at: datetime) -> bytes:
    """The privacy report as a Dutch PDF, with a chart of the volumes per month."""
    doc = Document(
        "Rapportage voor de functionaris gegevensbescherming",
        subtitle=f"Periode {_period_text(report)}",
        created_at=created_at,
    )
    doc.key_values(
        [
            ("Periode", _period_text(report)),
            ("Opgesteld", dutch_datetime(created_at)),
            ("Signaleringen", str(len(report["flags"]))),
        ]
    )

    doc.heading("Signaleringen")
    if report["flags"]:
        doc.table(
            ["Organisatie", "Signalering", "Cijfers"],
            [
                [_name(f), _FLAG_TITLES.get(f["kind"], f["kind"]), _figures(f["figures"])]
                for f in report["flags"]
            ],
            widths=(2, 2, 3),
        )
    else:
        doc.paragraph("Geen bijzonderheden gevonden in deze periode.")

    doc.heading("Volumes per maand")
    series = _volume_series(report)
    if report["months"]:
        doc.chart(
            chart_png(series, "Registraties en raadplegingen per maand", "aantal"),
            description="Staafdiagram van registraties en raadplegingen per maand",
        )
    evaluations = {"pseudonimiseringen": _monthly(report, "evaluations")}
    if any(count for _month, count in evaluations["pseudonimiseringen"]):
        doc.chart(
            chart_png(evaluations, "Gepseudonimiseerde elementen per maand", "aantal", kind="line"),
            description="Lijndiagram van het aantal gepseudonimiseerde elementen per maand",
        )
    doc.table(
        ["Organisatie", "Maand", "Registraties", "Raadplegingen", "Pseudonimiseringen"],
        [
            [
                _name(v),
                v["month"],
                str(v["registrations"]),
                str(v["consultations"]),
                str(v["evaluations"]),
            ]
            for v in report["volumes"]
        ],
        widths=(2.4, 1.2, 1.7, 1.9, 2.4),  # wide enough for each header word unbroken
    )

    doc.heading("Gebeurtenissen per organisatie")
    doc.table(
        ["Organisatie", "OIN", "Handeling", "Aantal"],
        [[_name(e), _oin(e), _action(e["action"]), str(e["count"])] for e in report["events"]],
        widths=(3, 3, 3, 1),
    )

    doc.heading("Raadplegingen per doel")
    if report["consultations"]:
        doc.table(
            ["Organisatie", "Doel", "Aantal"],
            [
                [_name(c), purpose, str(count)]
                for c in report["consultations"]
                for purpose, count in c["purposes"].items()
            ],
            widths=(3, 2, 1),
        )
    else:
        doc.paragraph("Geen raadplegingen in deze periode.")

    doc.heading("Geweigerde verzoeken")
    if report["refusals"]:
        doc.table(
            ["Reden", "Endpoint", "Aantal"],
            [[r["reason"], r["endpoint"], str(r["count"])] for r in report["refusals"]],
            widths=(2, 3, 1),
        )
    else:
        doc.paragraph("Geen geweigerde verzoeken in deze periode.")

    uninformed = report["uninformed"]
    doc.heading("Informatieplicht niet bevestigd")
    doc.paragraph(
        f"Actieve signalen waarvan de informatieplicht na {uninformed['days']} dagen niet "
        "is bevestigd (stand op het moment van opstellen)."
    )
    if uninformed["organisations"]:
        doc.table(
            ["Organisatie", "OIN", "Signalen"],
            [[_name(u), _oin(u), str(u["count"])] for u in uninformed["organisations"]],
            widths=(3, 3, 1),
        )
    return doc.render()


def _monthly(report: Mapping[str, Any], measure: str) -> list[tuple[str, int]]:
    totals = dict.fromkeys(report["months"], 0)
    for item in report["volumes"]:
        totals[item["month"]] += item[measure]
    return list(totals.items())


def monitor_csv(report: Mapping[str, Any]) -> str:
    """The monitor as one CSV: each table's rendered rows, prefixed by its measure."""
    rows: list[list[object]] = []
    for measure in report["measures"]:
        for line in measure["rows"]:
            rows.append([measure["measure"], *line])
        for note in measure["legend"]:
            rows.append([measure["measure"], "legenda", note])
    return _csv(rows)


def monitor_pdf(report: Mapping[str, Any], created_at: datetime) -> bytes:
    """The monitor as a Dutch PDF: one table per measure, each with its legend."""
    region = report.get("region")
    doc = Document(
        "Monitor Verwijsindex",
        subtitle=f"Periode {_period_text(report)}" + (f", regio {region}" if region else ""),
        created_at=created_at,
    )
    doc.key_values(
        [
            ("Periode", _period_text(report)),
            ("Regio", region or "alle regio's"),
            ("Opgesteld", dutch_datetime(created_at)),
        ]
    )
    doc.paragraph(
        "Aantallen per categorie van organisaties en per maand. Kleine aantallen worden niet "
        "getoond, en evenmin getallen waaruit een klein aantal terug te rekenen zou zijn."
    )
    for measure in report["measures"]:
        doc.heading(measure["title"])
        header, *body = measure["rows"]
        months = header[1:-1]
        doc.table(
            ["Categorie", *(_month_label(m) for m in months), "Totaal"],
            [[_CATEGORY_LABELS.get(row[0], row[0]), *row[1:]] for row in body],
            widths=(3.2, *(1.0 for _ in months), 1.3),
        )
        for note in measure["legend"]:
            doc.paragraph(note, muted=True)
    return doc.render()


def _month_label(month: str) -> str:
    """``2026-03`` as ``mrt`` over ``2026``: narrow enough for a column per month."""
    year, number = month.split("-")
    return f"{_MONTHS[int(number) - 1]}\n{year}"
