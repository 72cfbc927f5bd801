"""CSV and PDF forms of the privacy officer's report and the municipal monitor.

The reports come from :mod:`vir.services.reports` as plain dictionaries. Whatever a
person reads says it in Dutch: every code (action, purpose, reason, category, flag)
is replaced by its label (:mod:`vir.reports.labels`), months read ``januari 2026``, the
period names its last day (``1 januari t/m 31 oktober 2026``) and a flag is a sentence
with its figures.

CSV comes in two dialects:

* ``nl`` (the default): for Dutch Excel — ``;`` between fields, UTF-8 with a byte order
  mark, a decimal comma, Dutch headers and labels; parts told apart by the first column,
  ``Onderdeel``.
* ``data``: for programs — ``,``, UTF-8 without BOM, the codes as the JSON has them,
  one long table ``section, oin, organisation, key, subkey, value``.

Every form states the signed checkpoint the report was computed from and the command
that checks it against the current log. The PDFs are Dutch
:class:`~vir.reports.pdf.Document` s with tables and charts. The monitor's tables are
printed cell for cell as :func:`vir.reports.suppression.render_rows` rendered them
(``<10`` and ``x``), with the legend under every table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final, Literal

from vir.domain.dates import parse_iso_date
from vir.reports.labels import (
    PURPOSES,
    REFUSALS,
    action_label,
    category_label,
    flag_sentence,
    flag_title,
    label,
    month_label,
    number,
    period_label,
    period_text,
)
from vir.reports.pdf import Document, chart_png, dutch_datetime

__all__ = ["CSV_DIALECTS", "CsvDialect", "monitor_csv", "monitor_pdf", "privacy_csv", "privacy_pdf"]

CsvDialect = Literal["nl", "data"]
CSV_DIALECTS: Final[tuple[CsvDialect, ...]] = ("nl", "data")
_BOM: Final = "\ufeff"
_SYSTEM: Final = "(systeem)"
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
_MEASURES_NL: Final = {
    "registrations": "Registraties",
    "consultations": "Raadplegingen",
    "evaluations": "Gepseudonimiseerde elementen (ten minste)",
}
# A volume with no figure: the key holders' counts were not read (evaluation_counts).
_UNAVAILABLE: Final = "niet beschikbaar"


def _csv(rows: Iterable[Sequence[object]], dialect: CsvDialect = "data") -> str:
    """Every CSV vir writes comes from here: no cell a spreadsheet runs (``_inert``)."""
    out = io.StringIO()
    if dialect == "nl":
        out.write(_BOM)  # Excel reads UTF-8 only when the file says so
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerows([[number(_inert(cell)) for cell in row] for row in rows])
    else:
        csv.writer(out, lineterminator="\r\n").writerows(
            [[_inert(cell) for cell in row] for row in rows]
        )
    return out.getvalue()


# What a spreadsheet reads as a formula at the start of a cell, and the text cells that
# start so but are no formula: a number written out (``-1,5``) or the dash of no value.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_PLAIN: Final = re.compile(r"-|-?[0-9]+(?:[.,][0-9]+)?")


def _inert(cell: object) -> object:
    """``cell`` as a spreadsheet shows it and never runs it (OWASP, CSV injection): text
    that starts as a formula (an organisation named ``=HYPERLINK(...)``) gets a leading
    ``'``. Numbers are left as they are."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_START) and not _PLAIN.fullmatch(cell):
        return "'" + cell
    return cell


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
    return parse_iso_date(period["from"]), parse_iso_date(period["to"])


def _period_text(report: Mapping[str, Any]) -> str:
    return period_text(*_period(report))


def _checkpoint_nl(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The checkpoint a report was computed from, as label-value pairs in Dutch."""
    checkpoint = report.get("checkpoint")
    if not checkpoint:
        return [
            (
                "Controlepunt",
                "geen: de cijfers zijn niet aan een ondertekend controlepunt gekoppeld",
            )
        ]
    return [
        ("Auditlog", str(checkpoint["origin"])),
        ("Aantal regels in het log", str(checkpoint["tree_size"])),
        ("Roothash (Merkle-boom)", str(checkpoint["root_hash"])),
        ("Ondertekend met sleutel", f"{checkpoint['key_name']} (id {checkpoint['key_id']})"),
        ("Publieke sleutel", str(checkpoint["verifier_key"])),
        ("Controleren met", str(checkpoint["verify"])),
    ]


def _checkpoint_data(report: Mapping[str, Any]) -> list[list[object]]:
    checkpoint = report.get("checkpoint") or {}
    return [
        ["checkpoint", "", "", key, "", checkpoint[key]]
        for key in (
            "origin",
            "tree_size",
            "root_hash",
            "key_name",
            "key_id",
            "verifier_key",
            "verify",
        )
        if key in checkpoint
    ]


def privacy_csv(report: Mapping[str, Any], dialect: CsvDialect = "nl") -> str:
    """The privacy report as one CSV file in ``dialect`` (see the module docstring)."""
    if dialect == "nl":
        return _privacy_csv_nl(report)
    rows: list[list[object]] = [["section", "oin", "organisation", "key", "subkey", "value"]]
    period = report["period"]
    rows.append(["period", "", "", "from", "", period["from"]])
    rows.append(["period", "", "", "to", "", period["to"]])
    rows.extend(_checkpoint_data(report))
    counts = report.get("evaluation_counts", {})
    if not counts.get("available", True):
        rows.append(["evaluation_counts", "", "", "available", counts.get("reason", ""), "false"])
    for key in ("method", "keyholders", "threshold", "answered"):
        if key in counts:
            rows.append(["evaluation_counts", "", "", key, "", counts[key]])
    for url in counts.get("not_answered", ()):
        rows.append(["evaluation_counts", "", "", "not_answered", "", url])
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
            # No figure (None): an empty value, with the evaluation_counts row above.
            value = "" if item[measure] is None else item[measure]
            rows.append(["volumes", _oin(item), _name(item), measure, item["month"], value])
    for item in report["flags"]:
        rows.append(["flags", _oin(item), _name(item), item["kind"], "", _figures(item["figures"])])
    for channel, count in _dead_letters(report).items():
        rows.append(["dead_letters", "", "", channel, "", count])
    return _csv(rows)


def _dead_letters(report: Mapping[str, Any]) -> dict[str, int]:
    """Channel -> notifications whose delivery was given up in the period (reports made
    before delivery existed have none)."""
    return dict(report.get("dead_letters", {}).get("channels", {}))


def _counts_missing(report: Mapping[str, Any]) -> str | None:
    """Why the report has no evaluation counts, in Dutch; None when it has them."""
    counts = report.get("evaluation_counts", {})
    if counts.get("available", True):
        return None
    if counts.get("reason") == "not_configured":
        why = (
            "Let op: er is geen sleutelhouder ingesteld om de aantallen pseudonimiseringen "
            "te vragen (VIR_USAGE_KEYHOLDERS)."
        )
        again = "Maak het rapport opnieuw als de sleutelhouder is ingesteld."
    else:
        why = (
            "Let op: de sleutelhouder was niet bereikbaar, of te weinig sleutelhouders gaven "
            "hun aantallen."
        )
        again = "Maak het rapport opnieuw als de sleutelhouders weer bereikbaar zijn."
    return (
        f"{why} Het aantal pseudonimiseringen per organisatie ontbreekt in dit rapport, en "
        f"daarmee ook het signaal bij pseudonimiseren op grote schaal. {again}"
    )


def _counts_method(report: Mapping[str, Any]) -> str | None:
    """How the evaluation counts were computed, in Dutch; None when the report has none,
    or is older than the statement (``vir.services.evaluation_counts``)."""
    counts = report.get("evaluation_counts", {})
    if not counts.get("available", True) or counts.get("method") != "at_least":
        return None
    n, answered = counts["keyholders"], counts["answered"]
    if n == 1:
        which = "het aantal dat de sleutelhouder in zijn log telde"
    else:
        which = (
            f"het hoogste aantal dat één sleutelhouder in zijn log telde ({answered} van de {n} "
            "sleutelhouders gaven hun aantallen"
            + (f"; niet: {', '.join(counts['not_answered'])}" if counts.get("not_answered") else "")
            + ")"
        )
    return (
        f"Gepseudonimiseerde elementen: per organisatie en uur {which}. Het werkelijke aantal "
        "is minstens zo groot: een pseudonimisering komt hoogstens één keer bij een "
        "sleutelhouder, en een log dat een deel van de periode mist (van een herstelde of "
        "vervangen sleutelhouder) maakt het getal alleen lager."
    )


def _volume(item: Mapping[str, Any], measure: str) -> object:
    value = item[measure]
    return _UNAVAILABLE if value is None else value


def _privacy_csv_nl(report: Mapping[str, Any]) -> str:
    rows: list[list[object]] = [
        ["Onderdeel", "OIN", "Organisatie", "Onderwerp", "Toelichting", "Aantal"]
    ]
    rows.append(["Rapportage", "", "", "Periode", _period_text(report), ""])
    for key, value in _checkpoint_nl(report):
        rows.append(["Herkomst", "", "", key, value, ""])
    about = _counts_missing(report) or _counts_method(report)
    if about is not None:
        rows.append(["Herkomst", "", "", "Pseudonimiseringen", about, ""])
    for item in report["flags"]:
        rows.append(
            [
                "Opvallend patroon",
                _oin(item),
                _name(item),
                flag_title(item["kind"]),
                flag_sentence(item),
                "",
            ]
        )
    for item in report["events"]:
        rows.append(
            [
                "Gebeurtenissen",
                _oin(item),
                _name(item),
                action_label(item["action"]),
                "",
                item["count"],
            ]
        )
    for item in report["consultations"]:
        for purpose, count in item["purposes"].items():
            rows.append(
                [
                    "Raadplegingen per doel",
                    _oin(item),
                    _name(item),
                    label(PURPOSES, purpose),
                    "",
                    count,
                ]
            )
    for item in report["refusals"]:
        rows.append(
            [
                "Geweigerde verzoeken",
                "",
                "",
                label(REFUSALS, item["reason"]),
                item["endpoint"],
                item["count"],
            ]
        )
    for item in report["uninformed"]["organisations"]:
        rows.append(
            [
                "Informatieplicht niet bevestigd",
                _oin(item),
                _name(item),
                "Actieve meldingen",
                f"na {report['uninformed']['days']} dagen",
                item["count"],
            ]
        )
    for item in report["volumes"]:
        for measure, title in _MEASURES_NL.items():
            rows.append(
                [
                    "Volumes per maand",
                    _oin(item),
                    _name(item),
                    title,
                    month_label(item["month"]),
                    _volume(item, measure),
                ]
            )
    for channel, count in _dead_letters(report).items():
        rows.append(
            [
                "Niet afgeleverde matchberichten",
                "",
                "",
                _CHANNELS_NL.get(channel, channel),
                "",
                count,
            ]
        )
    return _csv(rows, "nl")


_CHANNELS_NL = {"webhook": "Webhook", "email": "E-mail"}


def _volume_series(report: Mapping[str, Any]) -> dict[str, list[tuple[str, int]]]:
    return {
        "registraties": _monthly(report, "registrations"),
        "raadplegingen": _monthly(report, "consultations"),
    }


def _labelled(
    series: Mapping[str, Sequence[tuple[str, int]]],
) -> dict[str, list[tuple[str, int]]]:
    """A chart's series with months as a reader writes them (``januari 2026``)."""
    return {name: [(month_label(m), n) for m, n in points] for name, points in series.items()}


def _provenance(doc: Document, report: Mapping[str, Any]) -> None:
    """The section that ties the figures to the signed audit log."""
    doc.heading("Herkomst van de cijfers")
    if report.get("checkpoint"):
        doc.paragraph(
            "De cijfers zijn berekend over het auditlog tot en met het ondertekende "
            "controlepunt hieronder. Met de opdracht onder 'Controleren met' toont de "
            "beheerder aan dat het huidige auditlog dit controlepunt ongewijzigd bevat."
        )
    doc.key_values(_checkpoint_nl(report))


def _first_page(report: Mapping[str, Any], created_at: datetime) -> list[tuple[str, str]]:
    checkpoint = report.get("checkpoint")
    items = [("Periode", _period_text(report))]
    if "region" in report:
        items.append(("Regio", report.get("region") or "alle regio's"))
    items.append(("Opgesteld", dutch_datetime(created_at)))
    if checkpoint:
        items.append(
            (
                "Auditlog",
                f"{checkpoint['origin']}, ondertekend controlepunt na "
                f"{checkpoint['tree_size']} regels (zie 'Herkomst van de cijfers')",
            )
        )
    return items


def privacy_pdf(report: Mapping[str, Any], created_at: datetime) -> bytes:
    """The privacy report as a Dutch PDF, with a chart of the volumes per month."""
    doc = Document(
        "Rapportage voor de functionaris gegevensbescherming",
        subtitle=f"Periode {_period_text(report)}",
        created_at=created_at,
    )
    doc.key_values(
        [*_first_page(report, created_at), ("Opvallende patronen", str(len(report["flags"])))]
    )

    doc.heading("Opvallende patronen")
    if report["flags"]:
        doc.paragraph(
            "Patronen in het gebruik die een nadere blik verdienen. Een patroon is geen "
            "vaststelling van misbruik."
        )
        doc.table(
            ["Patroon", "Wat er is gezien"],
            [[flag_title(f["kind"]), flag_sentence(f)] for f in report["flags"]],
            widths=(2, 5),
        )
    else:
        doc.paragraph("Geen opvallende patronen gevonden in deze periode.")

    doc.heading("Volumes per maand")
    series = _volume_series(report)
    if report["months"]:
        doc.chart(
            chart_png(_labelled(series), "Registraties en raadplegingen per maand", "aantal"),
            description=_chart_description(
                "Staafdiagram van het aantal registraties en raadplegingen per maand", series
            ),
        )
    about = _counts_missing(report) or _counts_method(report)
    if about is not None:
        doc.paragraph(about)
    counted = all(v["evaluations"] is not None for v in report["volumes"])
    evaluations = {"pseudonimiseringen": _monthly(report, "evaluations") if counted else []}
    if any(count for _month, count in evaluations["pseudonimiseringen"]):
        doc.chart(
            chart_png(
                _labelled(evaluations),
                "Gepseudonimiseerde elementen per maand",
                "aantal",
                kind="line",
            ),
            description=_chart_description(
                "Lijndiagram van het aantal gepseudonimiseerde elementen per maand", evaluations
            ),
        )
    doc.table(
        ["Organisatie", "Maand", "Registraties", "Raadplegingen", "Pseudonimiseringen"],
        [
            [
                _name(v),
                month_label(v["month"]),
                str(v["registrations"]),
                str(v["consultations"]),
                str(_volume(v, "evaluations")),
            ]
            for v in report["volumes"]
        ],
        widths=(2.4, 1.6, 1.7, 1.9, 2.4),  # wide enough for each header word unbroken
    )

    doc.heading("Handelingen per organisatie")
    doc.table(
        ["Organisatie", "OIN", "Handeling", "Aantal"],
        [[_name(e), _oin(e), action_label(e["action"]), str(e["count"])] for e in report["events"]],
        widths=(3, 3, 3, 1),
    )

    doc.heading("Raadplegingen per doel")
    if report["consultations"]:
        doc.table(
            ["Organisatie", "Doel", "Aantal"],
            [
                [_name(c), label(PURPOSES, purpose), str(count)]
                for c in report["consultations"]
                for purpose, count in c["purposes"].items()
            ],
            widths=(3, 3, 1),
        )
    else:
        doc.paragraph("Geen raadplegingen in deze periode.")

    doc.heading("Geweigerde verzoeken")
    if report["refusals"]:
        doc.table(
            ["Reden", "Koppelvlak", "Aantal"],
            [
                [label(REFUSALS, r["reason"]), r["endpoint"], str(r["count"])]
                for r in report["refusals"]
            ],
            widths=(3, 3, 1),
        )
    else:
        doc.paragraph("Geen geweigerde verzoeken in deze periode.")

    uninformed = report["uninformed"]
    doc.heading("Informatieplicht niet bevestigd")
    doc.paragraph(
        f"Actieve meldingen waarvan de informatieplicht na {uninformed['days']} dagen niet "
        "is bevestigd (stand op het moment van opstellen)."
    )
    if uninformed["organisations"]:
        doc.table(
            ["Organisatie", "OIN", "Meldingen"],
            [[_name(u), _oin(u), str(u["count"])] for u in uninformed["organisations"]],
            widths=(3, 3, 1),
        )
    else:
        doc.paragraph("Geen.")  # looked at, and none found: not a section left out
    dead = _dead_letters(report)
    doc.heading("Niet afgeleverde matchberichten")
    doc.paragraph(
        "Matchberichten die na herhaalde pogingen niet zijn afgeleverd (webhook of e-mail); "
        "ze blijven op te halen via de API."
    )
    if dead:
        doc.table(
            ["Kanaal", "Aantal"],
            [[_CHANNELS_NL.get(c, c), str(n)] for c, n in dead.items()],
            widths=(3, 1),
        )
    else:
        doc.paragraph("Geen in deze periode.")
    _provenance(doc, report)
    return doc.render()


def _chart_description(what: str, series: Mapping[str, Sequence[tuple[str, int]]]) -> str:
    """A chart's alternative text: what it shows, and its figures, for a screen reader."""
    parts = []
    for name, points in series.items():
        figures = ", ".join(f"{month_label(period)}: {count}" for period, count in points)
        parts.append(f"{name}: {figures}")
    return f"{what}. " + ". ".join(parts) + "."


def _monthly(report: Mapping[str, Any], measure: str) -> list[tuple[str, int]]:
    totals = dict.fromkeys(report["months"], 0)
    for item in report["volumes"]:
        totals[item["month"]] += item[measure]
    return list(totals.items())


_GRANULARITY_NL: Final = {"month": "maand", "quarter": "kwartaal", "year": "jaar"}
_GROUPING_NL: Final = {
    "categories": "categorie van organisaties",
    "groups": "groep van categorieën van organisaties",
}


def _shares(report: Mapping[str, Any]) -> str:
    """``12 van 80 getallen (15 %)``: how much of the report is not shown."""
    return _share_text(report.get("suppressed"))


def _share_text(share: Mapping[str, Any] | None) -> str:
    if not share:
        return "onbekend"
    percent = round(100 * share["hidden"] / share["numbers"]) if share["numbers"] else 0
    return f"{share['hidden']} van {share['numbers']} getallen ({percent} %)"


def _level_text(report: Mapping[str, Any]) -> str:
    granularity = _GRANULARITY_NL[report.get("granularity", "month")]
    grouping = _GROUPING_NL[report.get("grouping", "categories")]
    return f"per {grouping} en per {granularity}"


def monitor_csv(report: Mapping[str, Any], dialect: CsvDialect = "nl") -> str:
    """The monitor as one CSV file in ``dialect``: each table's rendered rows, prefixed by
    its measure, then its legend and how many of its numbers are hidden (``nl``: labels, a
    title row per table, the checkpoint first; ``data``: codes, the period and region
    first and the checkpoint last)."""
    rows: list[list[object]] = []
    if dialect == "data":
        # What the figures are of, first: the period ([from, to)) and the region (empty:
        # every region).
        period = report["period"]
        rows.append(["report", "from", period["from"]])
        rows.append(["report", "to", period["to"]])
        rows.append(["report", "region", report.get("region") or ""])
        for measure in report["measures"]:
            for line in measure["rows"]:
                rows.append([measure["measure"], *line])
            for note in measure["legend"]:
                rows.append([measure["measure"], "legenda", note])
            if share := measure.get("suppressed"):
                rows.append([measure["measure"], "suppressed", share["hidden"], share["numbers"]])
        if share := report.get("suppressed"):
            rows.append(["report", "suppressed", share["hidden"], share["numbers"]])
        for key in ("granularity", "grouping"):
            if key in report:
                rows.append(["report", key, report[key]])
        rows.extend(
            [["checkpoint", key, value] for _, _, _, key, _, value in _checkpoint_data(report)]
        )
        return _csv(rows)
    rows.append(["Monitor Verwijsindex", "Periode", _period_text(report)])
    rows.append(["Monitor Verwijsindex", "Regio", report.get("region") or "alle regio's"])
    rows.append(["Monitor Verwijsindex", "Indeling", f"Aantallen {_level_text(report)}"])
    rows.append(["Monitor Verwijsindex", "Niet getoond", _shares(report)])
    for key, value in _checkpoint_nl(report):
        rows.append(["Herkomst", key, value])
    for measure in report["measures"]:
        header, *body = measure["rows"]
        title = measure["title"]
        corner = "Groep" if header[0] == "groep" else "Categorie"
        rows.append([title, corner, *(period_label(m) for m in header[1:-1]), "Totaal"])
        for line in body:
            rows.append([title, category_label(line[0]), *line[1:]])
        for note in measure["legend"]:
            rows.append([title, "Legenda", note])
        rows.append([title, "Niet getoond", _share_text(measure.get("suppressed"))])
    return _csv(rows, "nl")


def monitor_pdf(report: Mapping[str, Any], created_at: datetime) -> bytes:
    """The monitor as a Dutch PDF: per measure a chart, a table and its legend, and how
    many numbers are not shown."""
    region = report.get("region")
    doc = Document(
        "Monitor Verwijsindex",
        subtitle=f"Periode {_period_text(report)}" + (f", regio {region}" if region else ""),
        created_at=created_at,
    )
    doc.key_values(
        [
            *_first_page(report, created_at),
            ("Indeling", f"Aantallen {_level_text(report)}"),
            ("Niet getoond", _shares(report)),
        ]
    )
    doc.paragraph(
        f"Aantallen {_level_text(report)}. Kleine aantallen worden niet getoond, en evenmin "
        "getallen waaruit een klein aantal terug te rekenen zou zijn. Maanden en categorieën "
        "worden samengevoegd tot kwartalen, jaren of groepen waar dat nodig is om de meeste "
        "getallen te kunnen tonen."
    )
    for measure in report["measures"]:
        doc.heading(measure["title"])
        header, *body = measure["rows"]
        periods = header[1:-1]
        _monitor_chart(doc, measure["title"], header, body)
        corner = "Groep" if header[0] == "groep" else "Categorie"
        names = [category_label(row[0]) for row in body]
        for first, last in _period_columns(periods):
            total = last == len(periods)
            doc.table(
                [corner, *(_short_period(m) for m in periods[first:last])]
                + (["Totaal"] if total else []),
                [
                    [name, *row[1 + first : 1 + last]] + ([row[-1]] if total else [])
                    for name, row in zip(names, body, strict=True)
                ],
                widths=(_NAME_MM, *(_period_mm(m) for m in periods[first:last]))
                + ((_TOTAL_MM,) if total else ()),
            )
        for note in measure["legend"]:
            doc.paragraph(note, muted=True)
        if share := measure.get("suppressed"):
            doc.paragraph(f"Niet getoond in deze tabel: {_share_text(share)}.", muted=True)
    _provenance(doc, report)
    return doc.render()


def _monitor_chart(
    doc: Document, title: str, header: Sequence[str], body: Sequence[Sequence[str]]
) -> None:
    """A bar chart of a measure's shown totals: per period, or (one period) per row.
    Hidden totals are left out of the chart and named under it; with fewer than two
    shown, there is nothing to compare and no chart."""
    periods = header[1:-1]
    if len(periods) > 1:
        points = list(zip((period_label(p) for p in periods), body[-1][1:-1], strict=True))
        what, axis = "per periode", "totaal per periode"
    else:
        points = [(category_label(row[0]), row[-1]) for row in body[:-1]]
        what, axis = "per " + ("groep" if header[0] == "groep" else "categorie"), "totaal"
    shown = [(name, int(value)) for name, value in points if value.isdigit()]
    hidden = [f"{name} ({value})" for name, value in points if not value.isdigit()]
    if len(shown) < 2:
        return
    series = {title.lower(): shown}
    doc.chart(
        chart_png(series, f"{title} {what}", "aantal"),
        description=f"Staafdiagram van {title.lower()} {what}, {axis}. "
        + ", ".join(f"{name}: {count}" for name, count in shown)
        + (". Niet getoond: " + ", ".join(hidden) if hidden else "")
        + ".",
    )
    if hidden:
        doc.paragraph("Niet in de grafiek (niet getoond): " + ", ".join(hidden) + ".", muted=True)


# The monitor's columns in millimetres of the 170 mm text width, each wide enough for its
# header's words in bold 9 pt and the cell padding: "Jeugdgezondheidszorg", "2026" (under
# "mrt"), "1e kw.", "Totaal". A word is never broken inside.
_NAME_MM: Final = 40.0
_MONTH_MM: Final = 12.0
_QUARTER_MM: Final = 14.5
_TOTAL_MM: Final = 14.0
_TEXT_MM: Final = 170.0


def _period_mm(period: str) -> float:
    return _QUARTER_MM if "-Q" in period else _MONTH_MM


def _period_columns(periods: Sequence[str]) -> list[tuple[int, int]]:
    """The periods of a monitor table split into as few tables as fit the page, of about
    equal size ([first, last) each); the last one also holds the totals. More months than
    fit side by side would break their headers mid-word ("jan" / "202" / "6")."""
    if not periods:
        return [(0, 0)]
    fits = max(1, int((_TEXT_MM - _NAME_MM - _TOTAL_MM) // max(map(_period_mm, periods))))
    tables = -(-len(periods) // fits)
    size = -(-len(periods) // tables)
    return [(i, min(i + size, len(periods))) for i in range(0, len(periods), size)]


def _short_period(period: str) -> str:
    """``2026-03`` as ``mrt`` over ``2026``, ``2026-Q1`` as ``1e kw.`` over ``2026``:
    narrow enough for a column per period."""
    year, _, part = period.partition("-")
    if not part:
        return year
    if part.startswith("Q"):
        return f"{part[1:]}e kw.\n{year}"
    return f"{_MONTHS[int(part) - 1]}\n{year}"
