"""The report document builder and charts: layout, Unicode, page numbers, determinism."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from vir.reports.pdf import Document, chart_png, dutch_date, dutch_datetime

pytestmark = pytest.mark.sqlite_only("rendering a PDF from given data: no database")

CREATED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SERIES = {
    "meldingen": [("2026-09", 14), ("2026-10", 9), ("2026-11", 17)],
    "matches": [("2026-10", 3), ("2026-11", 5)],
}


def _pages(data: bytes) -> list[str]:
    """The text of each page, whitespace collapsed (extraction spacing is not layout)."""
    reader = PdfReader(io.BytesIO(data))
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def _sample(created_at: datetime = CREATED, rows: int = 120) -> bytes:
    doc = Document("Testrapport", subtitle="Een ondertitel", created_at=created_at)
    doc.heading("Eerste hoofdstuk")
    doc.paragraph("Een alinea met lopende tekst. " * 12)
    doc.key_values([("Naam", "Şükrü Yılmaz"), ("Collega", "Łukasz Wróbel")])
    doc.heading("Een lange tabel", level=2)
    doc.table(
        ["Volgnummer", "Omschrijving", "Aantal"],
        [[str(n), f"regel {n} " + "met tekst " * (n % 9), str(n * 3)] for n in range(rows)],
        widths=(1, 4, 1),
    )
    doc.paragraph("Slot.", muted=True)
    return doc.render()


@pytest.fixture(scope="module")
def sample() -> bytes:
    return _sample()


def test_is_an_a4_portrait_pdf_with_metadata(sample: bytes) -> None:
    reader = PdfReader(io.BytesIO(sample))
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    assert reader.metadata is not None
    assert reader.metadata.title == "Testrapport"
    assert reader.metadata.subject == "Een ondertitel"
    assert reader.metadata.creation_date == CREATED


def test_every_page_is_numbered_pagina_x_van_y(sample: bytes) -> None:
    pages = _pages(sample)
    assert len(pages) >= 3
    for number, text in enumerate(pages, 1):
        assert f"Pagina {number} van {len(pages)}" in text


def test_a_table_longer_than_a_page_repeats_its_header(sample: bytes) -> None:
    pages = _pages(sample)
    pages_with_rows = [text for text in pages if "regel " in text]
    assert len(pages_with_rows) >= 2
    for text in pages_with_rows:
        assert "Volgnummer Omschrijving Aantal" in text
    # Every row is there, once, in order: nothing is lost at a page break.
    body = " ".join(pages)
    assert body.count("regel 119 ") == 1
    assert body.index("regel 118 ") < body.index("regel 119 ")


def test_long_cell_text_wraps_inside_the_cell() -> None:
    address = "averyveryverylongaddress.without.any.spaces@jeugdhulp-rijnmond.example.nl"
    doc = Document("Tabel", created_at=CREATED)
    doc.table(["Naam", "E-mail"], [["Anneke de Vries", address]], widths=(3, 1))
    text = "".join(_pages(doc.render())[0].split())
    assert address in text


def test_names_outside_latin_1_come_out_readable(sample: bytes) -> None:
    text = "\n".join(_pages(sample))
    assert "Şükrü Yılmaz" in text
    assert "Łukasz Wróbel" in text


def test_unprintable_characters_do_not_crash_or_reach_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    doc = Document("Namen", created_at=CREATED)
    with caplog.at_level(logging.WARNING):
        doc.heading("محمد")  # bold
        doc.paragraph("محمد علي · Ολυμπία · Юлия · 王小明 · x\x00y\tz")
        data = doc.render()
    text = _pages(data)[0]
    assert "Ολυμπία" in text
    assert "Юлия" in text
    # Arabic prints in both styles (letters in drawing order: there is no shaper).
    assert text.count("م") == 4
    # CJK has no glyph in DejaVu Sans: U+FFFD, one for each character.
    assert text.count("\ufffd") == 3
    assert "x y z" in text  # control characters became spaces
    # fpdf2 warns about missing glyphs, naming the characters: that is personal data.
    assert caplog.records == []


def test_the_page_count_alias_cannot_be_forged_from_text() -> None:
    doc = Document("Alias", created_at=CREATED)
    doc.paragraph("Naam {nb} met \ue000\ue001 erin")
    text = _pages(doc.render())[0]
    assert "Naam {nb} met erin" in text
    assert "Pagina 1 van 1" in text


def test_rendering_is_deterministic(sample: bytes) -> None:
    assert _sample() == sample


def test_the_creation_date_is_the_one_passed_in() -> None:
    later = CREATED + timedelta(days=1)
    data = _sample(later, rows=3)
    assert data != _sample(rows=3)
    reader = PdfReader(io.BytesIO(data))
    assert reader.metadata is not None
    assert reader.metadata.creation_date == later


def test_a_naive_creation_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Document("Rapport", created_at=datetime(2026, 11, 22, 9, 0))


def test_rendering_closes_the_document() -> None:
    doc = Document("Rapport", created_at=CREATED)
    doc.paragraph("Tekst.")
    first = doc.render()
    assert doc.render() == first
    with pytest.raises(RuntimeError):
        doc.paragraph("Te laat.")


def test_table_shape_is_checked() -> None:
    doc = Document("Rapport", created_at=CREATED)
    with pytest.raises(ValueError, match="one cell per column"):
        doc.table(["A", "B"], [["1", "2"], ["3"]])
    with pytest.raises(ValueError, match="one width per column"):
        doc.table(["A", "B"], [], widths=(1, 2, 3))
    with pytest.raises(ValueError, match="at least one column"):
        doc.table([], [])


def test_chart_png_is_a_deterministic_png() -> None:
    png = chart_png(SERIES, "Meldingen en matches per maand", "aantal")
    assert png.startswith(PNG_MAGIC)
    assert chart_png(SERIES, "Meldingen en matches per maand", "aantal") == png
    assert b"matplotlib" not in png  # no Software chunk naming the version
    line = chart_png(SERIES, "Per maand", "aantal", kind="line")
    assert line.startswith(PNG_MAGIC)
    assert line != png


def test_chart_png_takes_labels_literally_and_counts_as_counts() -> None:
    # A "$" would start matplotlib's TeX parser, and unbalanced ones raise.
    assert chart_png({"kosten $": [("2026-Q1", 0)]}, "Prijs in $ en $", "$").startswith(PNG_MAGIC)
    assert chart_png({}, "Leeg", "aantal").startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="negative"):
        chart_png({"meldingen": [("2026-11", -1)]}, "Fout", "aantal")


def test_chart_png_leaves_no_pyplot_state() -> None:
    code = (
        "import sys\n"
        "from vir.reports.pdf import chart_png\n"
        "chart_png({'a': [('2026-11', 1)]}, 't', 'y')\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"


def test_a_chart_embeds_in_a_document() -> None:
    png = chart_png(SERIES, "Meldingen per maand", "aantal")
    doc = Document("Monitor", created_at=CREATED)
    doc.heading("Gebruik")
    doc.chart(png, description="Staafdiagram: meldingen en matches per maand")
    doc.paragraph("Na de grafiek.")
    data = doc.render()
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages[0].images) == 1
    assert "Na de grafiek." in _pages(data)[0]


def test_dutch_dates() -> None:
    assert dutch_date(date(2026, 11, 22)) == "22 november 2026"
    assert dutch_date(date(2027, 3, 1)) == "1 maart 2027"
    # Winter time is UTC+1, summer time UTC+2; the day follows Dutch time too.
    assert dutch_datetime(datetime(2026, 11, 22, 9, 0, tzinfo=UTC)) == "22 november 2026 10:00"
    assert (
        dutch_datetime(datetime(2026, 7, 1, 22, 30, 5, tzinfo=UTC), seconds=True)
        == "2 juli 2026 00:30:05"
    )
    other_zone = datetime(2026, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert dutch_datetime(other_zone) == "1 januari 2026 09:00"
    with pytest.raises(ValueError):
        dutch_datetime(datetime(2026, 1, 1))
