"""CSV and PDF forms of the participation monitor (:mod:`vir.services.participation`).

The same machinery as the privacy report and the monitor (:mod:`vir.reports.officer`):
CSV in the ``nl`` dialect (Dutch Excel: ``;``, BOM, decimal comma, Dutch labels, parts
told apart by ``Onderdeel``) or ``data`` (codes, one long table ``section, oin,
organisation, key, subkey, value``), and a Dutch :class:`~vir.reports.pdf.Document`.
Every form states the signed checkpoint and how to check it. The regional tables are
printed cell for cell as :func:`vir.reports.suppression.render_rows` rendered them
(``<10`` and ``x``), with the legend under each; nothing here sees a hidden number.

A flag is one Dutch sentence with its figures (:func:`flag_sentence`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from vir.reports.labels import category_label, number
from vir.reports.officer import (
    CsvDialect,
    _checkpoint_data,
    _checkpoint_nl,
    _csv,
    _first_page,
    _period_text,
    _provenance,
)
from vir.reports.pdf import Document

__all__ = ["flag_sentence", "participation_csv", "participation_pdf"]

_OUTCOMES_NL: Final = {
    "within": "Contact binnen de termijn",
    "later": "Contact na de termijn",
    "none": "Geen contact, termijn voorbij",
    "pending": "Geen contact, termijn loopt nog",
}
_SHARES_NL: Final = {"1/4": "een kwart", "1/3": "een derde", "1/2": "de helft"}
_FIGURES: Final = (
    "signals",
    "matches",
    "contact_within",
    "contact_later",
    "contact_none",
    "contact_pending",
    "median_days",
)
_PEER_FIGURES: Final = ("organisations", "signals", "matches", "median_days")
_TITLE: Final = "Monitor deelname Verwijsindex"


def _share_text(share: str) -> str:
    return _SHARES_NL.get(share, share)


def _value(value: object) -> str:
    """A figure as a reader writes it: a decimal comma, a dash where there is none."""
    return "-" if value is None else number(value)


def flag_sentence(flag: Mapping[str, Any]) -> str:
    """``School A registreerde 1 melding: minder dan een kwart van de mediaan (8) van de 3
    andere organisaties van de categorie Onderwijs in de regio.``"""
    f = flag["figures"]
    signals = f["signals"]
    return (
        f"{flag['name']} registreerde {signals} {'melding' if signals == 1 else 'meldingen'}: "
        f"minder dan {_share_text(str(f['share']))} van de mediaan ({_value(f['peer_median'])}) "
        f"van de {f['peers']} andere organisaties van de categorie "
        f"{category_label(str(f['category']))} in de regio."
    )


def _explanation(report: Mapping[str, Any]) -> list[str]:
    """How the figures and the flag are made, in Dutch, for the PDF and the ``nl`` CSV."""
    days = report["days"]
    rule = report["rule"]
    return [
        "Meldingen: registraties van de organisatie in de periode. Matches: de matches "
        "waaraan de organisatie in de periode deelnam (vanaf haar eerste deelname). "
        f"Contact binnen de termijn: binnen {days} dagen na haar deelname legde de "
        "organisatie vast dat zij contact had met een andere deelnemer, of legde een andere "
        "deelnemer contact met haar vast (zoals in de lijst van de functionaris opvolging); "
        "dagen tot contact: de mediaan van die tijden. Contact dat na de periode is "
        "vastgelegd telt mee.",
        "Vergelijkbare organisaties zijn de andere organisaties van dezelfde categorie in "
        "dezelfde regio. Een organisatie valt op als zij minder meldingen deed dan "
        f"{_share_text(str(rule['share']))} van de mediaan van vergelijkbare organisaties, "
        f"en er minstens {rule['min_peers']} vergelijkbare organisaties zijn. Opvallen is "
        "geen oordeel: het is een aanleiding voor een gesprek.",
    ]


def _region_text(report: Mapping[str, Any]) -> str:
    return str(report.get("region") or "alle regio's")


def participation_csv(report: Mapping[str, Any], dialect: CsvDialect = "nl") -> str:
    """The participation monitor as one CSV file in ``dialect`` (module docstring)."""
    if dialect == "nl":
        return _csv_nl(report)
    rows: list[list[object]] = [["section", "oin", "organisation", "key", "subkey", "value"]]
    rows.append(["period", "", "", "from", "", report["period"]["from"]])
    rows.append(["period", "", "", "to", "", report["period"]["to"]])
    rows.append(["report", "", "", "region", "", report.get("region") or ""])
    rows.append(["report", "", "", "days", "", report["days"]])
    rows.append(["report", "", "", "rule", "share", report["rule"]["share"]])
    rows.append(["report", "", "", "rule", "min_peers", report["rule"]["min_peers"]])
    rows.extend(_checkpoint_data(report))
    for item in report["organisations"]:
        who = [item["oin"], item["name"]]
        rows.append(["organisations", *who, "category", "", item["category"]])
        rows.extend(["organisations", *who, key, "", _data(item[key])] for key in _FIGURES)
        rows.extend(
            ["organisations", *who, "peers", key, _data(item["peers"][key])]
            for key in _PEER_FIGURES
        )
        rows.append(["organisations", *who, "reports_far_less", "", item["reports_far_less"]])
    for flag in report["flags"]:
        rows.append(
            ["flags", flag["oin"], flag["name"], flag["kind"], "", flag["figures"]["signals"]]
        )
    regions = report.get("regions")
    if regions:
        for table in ("signals", "matches"):
            header, *body = regions[table]["rows"]
            for line in body:
                for column, value in zip(header[1:], line[1:], strict=True):
                    rows.append([f"regions_{table}", "", "", line[0], column, value])
        for derived in regions["derived"]:
            for key in ("share_within", "median_days"):
                rows.append(
                    ["regions_derived", "", "", derived["region"], key, _data(derived[key])]
                )
    return _csv(rows)


def _data(value: object) -> object:
    """A figure for the data dialect: empty where there is none."""
    return "" if value is None else value


def _csv_nl(report: Mapping[str, Any]) -> str:
    rows: list[list[object]] = [
        ["Onderdeel", "OIN", "Organisatie", "Onderwerp", "Toelichting", "Aantal"]
    ]
    rows.append(["Rapportage", "", "", "Periode", _period_text(report), ""])
    rows.append(["Rapportage", "", "", "Regio", _region_text(report), ""])
    rows.append(["Rapportage", "", "", "Termijn voor contact", f"{report['days']} dagen", ""])
    for text in _explanation(report):
        rows.append(["Uitleg", "", "", "", text, ""])
    for key, value in _checkpoint_nl(report):
        rows.append(["Herkomst", "", "", key, value, ""])
    for flag in report["flags"]:
        rows.append(
            ["Valt op", flag["oin"], flag["name"], "Meldt veel minder", flag_sentence(flag), ""]
        )
    for item in report["organisations"]:
        who = [item["oin"], item["name"]]
        peers = item["peers"]
        category = category_label(item["category"])
        for title, value, compared in (
            ("Meldingen", item["signals"], peers["signals"]),
            ("Matches", item["matches"], peers["matches"]),
            ("Dagen tot contact (mediaan)", item["median_days"], peers["median_days"]),
        ):
            note = f"{category}; mediaan van {peers['organisations']} vergelijkbare: "
            rows.append(["Deelname", *who, title, note + _value(compared), _value(value)])
        for key, title in _OUTCOMES_NL.items():
            rows.append(["Contact na match", *who, title, "", item[f"contact_{key}"]])
    regions = report.get("regions")
    if regions:
        for table, part in (
            ("signals", "Meldingen per regio"),
            ("matches", "Matches per regio, elk één keer"),
        ):
            header, *body = regions[table]["rows"]
            for line in body:
                for column, value in zip(header[1:], line[1:], strict=True):
                    rows.append([part, "", line[0], _column_nl(column), "", value])
            for note in regions[table]["legend"]:
                rows.append([part, "", "", "Legenda", note, ""])
        for derived in regions["derived"]:
            region = derived["region"]
            share = derived["share_within"]
            rows.append(
                [
                    "Vergelijking per regio",
                    "",
                    region,
                    "Aandeel contact binnen de termijn",
                    "",
                    "niet getoond" if share is None else f"{number(round(100 * share, 1))} %",
                ]
            )
            rows.append(
                [
                    "Vergelijking per regio",
                    "",
                    region,
                    "Dagen tot contact (mediaan)",
                    "",
                    "niet getoond"
                    if derived["median_days"] is None
                    else _value(derived["median_days"]),
                ]
            )
    return _csv(rows, "nl")


def _column_nl(column: str) -> str:
    """A regional table's column: a group of categories, an outcome or the total."""
    if column == "totaal":
        return "Totaal"
    return _OUTCOMES_NL.get(column) or category_label(column)


def participation_pdf(report: Mapping[str, Any], created_at: datetime) -> bytes:
    """The participation monitor as a Dutch PDF: the flags, each organisation's figures
    against its peers, the regional comparison (suppressed), and where the figures come
    from."""
    region = report.get("region")
    doc = Document(
        _TITLE,
        subtitle=f"Periode {_period_text(report)}" + (f", regio {region}" if region else ""),
        created_at=created_at,
    )
    doc.key_values(
        [
            *_first_page(report, created_at),
            ("Termijn voor contact", f"{report['days']} dagen na deelname aan een match"),
            ("Organisaties", str(len(report["organisations"]))),
            ("Vallen op", str(len(report["flags"]))),
        ]
    )
    for text in _explanation(report):
        doc.paragraph(text)

    doc.heading("Organisaties die veel minder melden")
    if report["flags"]:
        doc.table(["Organisatie", "Wat er is gezien"], _flag_rows(report["flags"]), widths=(2, 5))
    else:
        doc.paragraph("Geen organisatie valt op in deze periode.")

    doc.heading("Meldingen en matches per organisatie")
    doc.paragraph(
        "Tussen haakjes: de mediaan van vergelijkbare organisaties (dezelfde categorie, "
        "dezelfde regio); een streepje waar er geen is.",
        muted=True,
    )
    doc.table(
        ["Organisatie", "Categorie", "Meldingen", "Matches", "Dagen tot contact"],
        [_participation_row(item) for item in report["organisations"]],
        widths=(3, 2.6, 1.6, 1.6, 1.8),
    )

    doc.heading("Contact na een match per organisatie")
    doc.table(
        ["Organisatie", "Matches", *(_OUTCOMES_NL[key] for key in _OUTCOMES_NL)],
        [
            [item["name"], str(item["matches"])]
            + [str(item[f"contact_{key}"]) for key in _OUTCOMES_NL]
            for item in report["organisations"]
        ],
        widths=(3, 1.4, 1.7, 1.7, 1.7, 1.7),
    )

    regions = report.get("regions")
    if regions:
        _regions(doc, report, regions)
    _provenance(doc, report)
    return doc.render()


def _flag_rows(flags: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [[str(flag["name"]), flag_sentence(flag)] for flag in flags]


def _participation_row(item: Mapping[str, Any]) -> list[str]:
    peers = item["peers"]
    return [
        str(item["name"]) + (" (valt op)" if item["reports_far_less"] else ""),
        category_label(item["category"]),
        f"{item['signals']} ({_value(peers['signals'])})",
        f"{item['matches']} ({_value(peers['matches'])})",
        f"{_value(item['median_days'])} ({_value(peers['median_days'])})",
    ]


def _regions(doc: Document, report: Mapping[str, Any], regions: Mapping[str, Any]) -> None:
    """The regional comparison: the two suppressed tables as published, and the derived
    figures."""
    doc.heading("Vergelijking tussen regio's")
    doc.paragraph(
        "Dezelfde cijfers per regio: de meldingen opgeteld, de matches van de regio elk één "
        "keer, ook als meer organisaties uit de regio eraan deelnamen. Een match had contact "
        "binnen de termijn als elke deelnemer uit de regio binnen de termijn contact had. "
        "Kleine aantallen worden niet getoond, en "
        "evenmin getallen waaruit een klein aantal terug te rekenen zou zijn. Het aandeel "
        "contact binnen de termijn is berekend uit getoonde aantallen alleen; de mediaan "
        "alleen waar ten minste 10 matches met contact getoond zijn."
    )
    for table, title in (
        ("signals", "Meldingen per regio en groep van categorieën"),
        ("matches", "Matches per regio (elke match één keer), naar contact"),
    ):
        doc.heading(title, level=2)
        header, *body = regions[table]["rows"]
        doc.table(
            ["Regio", *(_column_nl(c) for c in header[1:])],
            [[_column_nl(row[0]) if row[0] == "totaal" else row[0], *row[1:]] for row in body],
            widths=(1.6, *(1.9 for _ in header[1:-1]), 1.2),  # "kinderopvang" unbroken
        )
        for note in regions[table]["legend"]:
            doc.paragraph(note, muted=True)
    doc.heading("Contact binnen de termijn per regio", level=2)
    doc.table(
        ["Regio", f"Aandeel contact binnen {report['days']} dagen", "Dagen tot contact (mediaan)"],
        [
            [
                d["region"],
                "niet getoond"
                if d["share_within"] is None
                else f"{number(round(100 * d['share_within'], 1))} %",
                "niet getoond" if d["median_days"] is None else _value(d["median_days"]),
            ]
            for d in regions["derived"]
        ],
        widths=(2.4, 2.4, 2.4),
    )
