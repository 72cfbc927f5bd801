"""PDF documents for reports: a small builder on fpdf2, and bar/line charts made by matplotlib.

Every report the project prints (data-subject access, audit-log and monitor reports)
is an A4 portrait :class:`Document`: a title block, headings, paragraphs, key-value
blocks, tables and charts, with "Pagina X van Y" in every footer. The builder keeps
fpdf2's many knobs out of the reports, so they all look alike. :func:`chart_png` draws
the charts those documents embed, and :func:`dutch_date` / :func:`dutch_datetime`
write dates the way Dutch readers expect them (``22 november 2026``, in Dutch time).

Fonts. The document embeds DejaVu Sans, which matplotlib ships in its data directory,
so no system font is needed and names in Latin, Greek, Cyrillic, Arabic and Hebrew
script print (Turkish *ş*, Polish *ł*). There is no full text shaper (uharfbuzz is not
a dependency), so Arabic-script names print legibly rather than perfectly. A character
the font has no glyph for (CJK, say) prints as U+FFFD rather than being handed to
fpdf2, which would log it: the text of a report holds personal data, and personal data
stays out of the logs.

Accessibility. The PDF says its language (``/Lang``, ``nl``) and title (shown as the
window title: ``DisplayDocTitle``), and is tagged (``/MarkInfo``, a structure tree under
``/StructTreeRoot``): the title, subtitle and every heading (``/H1``..``/H3``) and
paragraph (``/P``) is a structure element in reading order, every chart a ``/Figure``
with alternative text, and the footer an ``/Artifact`` a screen reader skips. A
paragraph is kept on one page, because a marked sequence cannot span pages.

Not tagged: tables (and the key-value blocks, drawn as borderless tables). fpdf2 2.8.9
(``fpdf.structure_tree.StructureTreeBuilder``) builds only a flat list of elements under
``/Document`` and serialises only that list, and ``FPDF.table`` draws its cells without
marked content; a ``/Table`` with ``/TR``, ``/TH`` (scope) and ``/TD`` children needs
nested elements and a hook per cell, i.e. a table renderer of our own. Table text is
therefore outside the structure tree. Until then these PDFs are not PDF/UA.

Determinism. Time is a parameter: the creation date written into the metadata is
``created_at``, never the wall clock, and fpdf2 derives the file identifier (/ID) from
the content and that date. Font subsets, images and page numbers are laid out the same
way every run, so the same input gives the same bytes (the tests check it) for a given
fpdf2, matplotlib and font version.
"""

from __future__ import annotations

import io
import unicodedata
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

import matplotlib
from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, VAlign, XPos, YPos
from fpdf.fonts import FontFace, TTFFont
from fpdf.prefs import ViewerPreferences
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from vir.reports.labels import date_text

__all__ = ["AMSTERDAM", "Document", "chart_png", "dutch_date", "dutch_datetime"]

_FAMILY: Final = "DejaVu"
# No oblique: DejaVu Sans Oblique lacks the Arabic script, among others, and every
# style must print any name.
_FONT_FILES: Final = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

# Layout, in millimetres and points.
_MARGIN: Final = 20.0
_BOTTOM_MARGIN: Final = 20.0
_TITLE_PT: Final = 18.0
_SUBTITLE_PT: Final = 12.0
_HEADING_PT: Final = {1: 14.0, 2: 11.5, 3: 10.0}
_BODY_PT: Final = 10.0
_TABLE_PT: Final = 9.0
_FOOTER_PT: Final = 8.0
_LINE: Final = 1.45  # line height as a multiple of the font size
_CELL_PADDING: Final = 1.2
_MUTED: Final = (90, 90, 90)
_HEADER_FILL: Final = (225, 230, 238)
# A heading needs this much room below it, so that it is not left alone at a page's foot.
_KEEP_WITH_NEXT: Final = 25.0

# The total page count is substituted for this alias when the document closes. fpdf2's
# default alias is "{nb}", which a name or e-mail address could contain; private-use
# characters never reach the page (see _printable), so this one cannot be forged. Its
# two characters reserve room for two digits.
_PAGES_ALIAS: Final = "\ue000\ue001"

_UNPRINTABLE: Final = "\ufffd"


# Reports are for Dutch readers: local time is Dutch time, whatever zone the host is in.
AMSTERDAM: Final = ZoneInfo("Europe/Amsterdam")


def dutch_date(value: date) -> str:
    """A date as Dutch readers write it: ``22 november 2026``."""
    return date_text(value, "nl")


def dutch_datetime(moment: datetime, *, seconds: bool = False) -> str:
    """A moment in Dutch local time (CET/CEST): ``22 november 2026 10:00[:00]``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a moment must be timezone-aware to be shown in Dutch time")
    local = moment.astimezone(AMSTERDAM)
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    return f"{dutch_date(local.date())} {clock}"


def _font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


class _Canvas(FPDF):
    """fpdf2 with the report footer ("Pagina X van Y", centred, an artifact) and marked
    content for structure elements other than fpdf2's own ``/Figure``."""

    def footer(self) -> None:
        self._out("/Artifact <</Type /Pagination>> BDC")
        self.set_y(-_BOTTOM_MARGIN + 6)
        self.set_font(_FAMILY, "", _FOOTER_PT)
        self.set_text_color(*_MUTED)
        self.cell(0, 5, f"Pagina {self.page_no()} van {_PAGES_ALIAS}", align=Align.C)
        self.set_text_color(0, 0, 0)
        self._out("EMC")

    @contextmanager
    def tagged(self, struct_type: str) -> Iterator[None]:
        """What is drawn inside becomes one structure element (``/H1``, ``/P``, ...), next
        in reading order. It must stay on one page (fpdf2's ``_marked_sequence``, with a
        structure type of our choosing)."""
        mcid = self.struct_builder.next_mcid_for_page(self.page)
        self._add_marked_content(struct_type=f"/{struct_type}", mcid=mcid)
        page = self.page
        self._out(f"/{struct_type} <</MCID {mcid}>> BDC")
        yield
        if self.page != page:  # pragma: no cover - callers break the page first
            raise RuntimeError("a tagged element ran onto the next page")
        self._out("EMC")


class Document:
    """An A4 portrait report, built top to bottom and rendered once to PDF bytes.

    ``created_at`` (timezone-aware) becomes the creation date in the metadata; nothing
    reads the clock. ``title`` and ``subtitle`` open the first page and fill the
    metadata's Title and Subject; ``lang`` is the document language (BCP 47).
    """

    def __init__(
        self,
        title: str,
        *,
        created_at: datetime,
        subtitle: str = "",
        author: str = "",
        lang: str = "nl",
    ) -> None:
        if created_at.tzinfo is None or created_at.utcoffset() is None:
            # fpdf2 would attach the machine's local zone: the bytes would depend on the host.
            raise ValueError("created_at must be timezone-aware")
        pdf = _Canvas(orientation="portrait", unit="mm", format="A4")
        pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
        pdf.set_auto_page_break(True, margin=_BOTTOM_MARGIN)
        pdf.alias_nb_pages(_PAGES_ALIAS)
        font_dir = _font_dir()
        self._glyphs: dict[str, frozenset[int]] = {}
        for style, file in _FONT_FILES.items():
            pdf.add_font(_FAMILY, style, font_dir / file)
            pdf.set_font(_FAMILY, style)
            font = pdf.current_font
            # Styles cover different characters (bold lacks some Arabic): check per style.
            self._glyphs[style] = frozenset(font.cmap) if isinstance(font, TTFFont) else frozenset()
        # fontTools reads the font files lazily and keeps them open; fpdf2 closes only
        # the fonts a page used, and only if the document is rendered. Close them all
        # when rendering, or when the document is dropped unrendered (after an error).
        self._close_fonts = weakref.finalize(
            self, _close_fonts, [f for f in pdf.fonts.values() if isinstance(f, TTFFont)]
        )
        pdf.set_creation_date(created_at)
        # Metadata is not drawn with the embedded font: only control characters go.
        pdf.set_title(_printable(title, None))
        if subtitle:
            pdf.set_subject(_printable(subtitle, None))
        if author:
            pdf.set_author(_printable(author, None))
        pdf.set_creator("vir")
        pdf.set_lang(lang)
        pdf.viewer_preferences = ViewerPreferences(display_doc_title=True)
        pdf.add_page()
        self._pdf = pdf
        self._rendered: bytes | None = None

        self._write(title, "B", _TITLE_PT, tag="Title")
        if subtitle:
            self._write(subtitle, "", _SUBTITLE_PT, muted=True, tag="P")
        pdf.ln(4)

    def heading(self, text: str, *, level: Literal[1, 2, 3] = 1) -> None:
        """A section heading (level 1), sub-heading (2), or bold run-in label (3)."""
        self._check_open()
        size = _HEADING_PT[level]
        if self._pdf.will_page_break(_KEEP_WITH_NEXT):
            self._pdf.add_page()
        else:
            self._pdf.ln({1: 4, 2: 2, 3: 1}[level])
        self._write(text, "B", size, tag=f"H{level}")
        self._pdf.ln(1)

    def paragraph(self, text: str, *, muted: bool = False) -> None:
        """A paragraph of running text; ``muted`` prints it smaller and grey (notes)."""
        self._check_open()
        self._write(text, "", _TABLE_PT if muted else _BODY_PT, muted=muted, tag="P")
        self._pdf.ln(2)

    def key_values(self, items: Sequence[tuple[str, str]]) -> None:
        """Label-value pairs, labels in bold on the left; long values wrap."""
        self._check_open()
        if not items:
            return
        self._pdf.set_font(_FAMILY, "", _BODY_PT)
        label = FontFace(emphasis="BOLD")
        with self._pdf.table(
            col_widths=(1, 2),
            first_row_as_headings=False,
            borders_layout=TableBordersLayout.NONE,
            text_align=Align.L,
            v_align=VAlign.T,
            line_height=self._line_height(_BODY_PT),
            padding=(0.6, _CELL_PADDING, 0.6, 0),
        ) as table:
            for key, value in items:
                row = table.row()
                row.cell(self._clean(key, "B"), style=label)
                row.cell(self._clean(value, ""))
        self._pdf.ln(2)

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        widths: Sequence[float] | None = None,
    ) -> None:
        """A table with a header row, repeated at the top of every page it runs onto.

        ``widths`` are relative column widths (``(1, 2)`` gives the second column twice
        the first); by default the columns share the page width equally. Long cell text
        wraps, at words where it can and inside a word where it must.
        """
        self._check_open()
        if not header:
            raise ValueError("a table needs at least one column")
        if widths is not None and len(widths) != len(header):
            raise ValueError("widths must give one width per column")
        for row_cells in rows:
            if len(row_cells) != len(header):
                raise ValueError("every row must have one cell per column")
        self._pdf.set_font(_FAMILY, "", _TABLE_PT)
        with self._pdf.table(
            col_widths=tuple(widths) if widths is not None else None,
            first_row_as_headings=True,
            repeat_headings=1,
            headings_style=FontFace(emphasis="BOLD", fill_color=_HEADER_FILL),
            text_align=Align.L,
            v_align=VAlign.T,
            line_height=self._line_height(_TABLE_PT),
            padding=(0.6, _CELL_PADDING),
        ) as table:
            table.row([self._clean(cell, "B") for cell in header])
            for row_cells in rows:
                table.row([self._clean(cell, "") for cell in row_cells])
        self._pdf.ln(3)

    def chart(self, png: bytes, *, description: str, width: float | None = None) -> None:
        """Embed a PNG image (from :func:`chart_png`), ``width`` mm wide (default: the text width).

        ``description`` is the image's alternative text, for screen readers.
        """
        self._check_open()
        self._pdf.image(
            io.BytesIO(png),
            x=Align.C,
            w=width if width is not None else self._pdf.epw,
            alt_text=_printable(description, None),
        )
        self._pdf.ln(3)

    def render(self) -> bytes:
        """The finished PDF. The document is closed: later calls return the same bytes."""
        if self._rendered is None:
            self._rendered = bytes(self._pdf.output())
            self._close_fonts()
        return self._rendered

    def _check_open(self) -> None:
        if self._rendered is not None:
            raise RuntimeError("the document has been rendered; nothing can be added")

    def _line_height(self, size_pt: float) -> float:
        return size_pt * _LINE * 25.4 / 72

    def _write(
        self, text: str, style: str, size_pt: float, *, muted: bool = False, tag: str = "P"
    ) -> None:
        """``text`` across the text width, wrapped, in ``style`` at ``size_pt``: one
        structure element ``tag``, kept on one page (a new page if it does not fit)."""
        pdf = self._pdf
        pdf.set_font(_FAMILY, style, size_pt)
        clean = self._clean(text, style)
        height = self._line_height(size_pt)
        lines = pdf.multi_cell(0, height, clean, dry_run=True, output="LINES")
        assert isinstance(lines, list)
        per_page = max(1, int((pdf.page_break_trigger - pdf.t_margin) // height))
        if muted:
            pdf.set_text_color(*_MUTED)
        while lines:
            room = int((pdf.page_break_trigger - pdf.y) // height)
            # Keep the text together unless it is longer than a page: then fill this one.
            if room < 1 or (room < len(lines) <= per_page):
                pdf.add_page()
                continue
            chunk, lines = lines[:room], lines[room:]
            with pdf.tagged(tag):
                pdf.multi_cell(
                    0,
                    height,
                    "\n".join(chunk),
                    align=Align.L,
                    new_x=XPos.LMARGIN,
                    new_y=YPos.NEXT,
                )
        pdf.set_text_color(0, 0, 0)

    def _clean(self, text: str, style: str) -> str:
        return _printable(text, self._glyphs[style])


def _close_fonts(fonts: Sequence[TTFFont]) -> None:
    for font in fonts:
        font.close()


def _printable(text: str, glyphs: frozenset[int] | None) -> str:
    """``text`` reduced to what a font with ``glyphs`` can print, composed (NFC).

    Line breaks stay; other control characters become spaces. Invisible format
    characters the font lacks (bidi marks, zero-width joiners) are dropped; any other
    character it lacks becomes U+FFFD, so fpdf2 never meets a missing glyph. Private-use
    characters are always dropped: the page-count alias is made of them. With
    ``glyphs`` None (text that is not drawn, such as metadata) every other character stays.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text.replace("\r\n", "\n")):
        category = unicodedata.category(char)
        if char == "\n":
            out.append(char)
        elif category == "Cc":
            out.append(" ")
        elif category in ("Co", "Cs"):  # private use; lone surrogates cannot be encoded
            continue
        elif glyphs is None or ord(char) in glyphs:
            out.append(char)
        elif category.startswith("Z"):
            out.append(" ")
        elif category in ("Cf", "Mn", "Me"):
            continue
        else:
            out.append(_UNPRINTABLE)
    return "".join(out)


# Okabe-Ito: distinguishable with every common form of colour blindness, and fixed
# here rather than taken from matplotlib's (configurable) colour cycle.
_PALETTE: Final = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


def chart_png(
    series: Mapping[str, Sequence[tuple[str, int]]],
    title: str,
    ylabel: str,
    *,
    kind: Literal["bar", "line"] = "bar",
    dpi: int = 200,
) -> bytes:
    """A bar or line chart of counts per period, as PNG bytes for :meth:`Document.chart`.

    ``series`` maps a series name to its ``(period label, count)`` points, for example
    ``{"meldingen": [("2026-10", 12), ("2026-11", 9)]}``. Periods form the x axis in the
    order they are first seen; a period missing from a series counts as 0. Bars of
    several series stand side by side, and a legend names the series when there is more
    than one.

    The figure is drawn on matplotlib's Agg canvas without pyplot, so no global figure
    state is created or left behind, and the PNG carries no "Software" text chunk:
    the same input gives the same bytes.
    """
    periods: list[str] = []
    for points in series.values():
        for period, count in points:
            if count < 0:
                raise ValueError("counts cannot be negative")
            if period not in periods:
                periods.append(period)

    figure = Figure(figsize=(6.7, 3.0), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(periods)))
    bar_width = 0.8 / max(1, len(series))
    for index, (name, points) in enumerate(series.items()):
        counts = dict(points)
        values = [counts.get(period, 0) for period in periods]
        colour = _PALETTE[index % len(_PALETTE)]
        if kind == "bar":
            offset = (index - (len(series) - 1) / 2) * bar_width
            axes.bar(
                [p + offset for p in positions],
                values,
                width=bar_width,
                color=colour,
                label=name,
            )
        else:
            axes.plot(positions, values, color=colour, marker="o", label=name)

    # parse_math=False: a "$" in a label is a dollar sign, not the start of TeX.
    axes.set_title(title, fontsize=11, parse_math=False)
    axes.set_ylabel(ylabel, fontsize=9, parse_math=False)
    axes.set_xticks(positions, labels=periods, fontsize=8, parse_math=False)
    if len(periods) > 8:
        for label in axes.get_xticklabels():
            label.set(rotation=45, horizontalalignment="right", rotation_mode="anchor")
    axes.tick_params(axis="y", labelsize=8)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        for text in axes.legend(fontsize=8, frameon=False).get_texts():
            text.set_parse_math(False)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
