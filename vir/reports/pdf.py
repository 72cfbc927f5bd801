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

Tables (and the key-value blocks, drawn as borderless tables) are a ``/Table`` of
``/TR`` rows whose cells are ``/TH`` (header cells, with ``/Scope /Column``, or ``/Row``
for the labels of a key-value block) or ``/TD``, each cell's text one marked sequence.
fpdf2 2.8.9 cannot do this by itself: its ``StructureTreeBuilder`` keeps a flat list of
elements under ``/Document`` and serialises only that list, and ``FPDF.table`` draws its
cells without marked content. So :class:`_TreeBuilder` nests elements and serialises
the whole tree, and :meth:`Document.table` draws tables cell by cell. A row is kept on
one page; a header row repeated on a later page, cell fills and rules are artifacts.
A row taller than a page (not met in the reports) continues as a further row.

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
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import matplotlib
from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import TTFFont
from fpdf.prefs import ViewerPreferences
from fpdf.structure_tree import StructElem, StructureTreeBuilder
from fpdf.syntax import PDFObject
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


class _Element(StructElem):
    """A structure element that may carry attributes (``/A``, e.g. a header cell's scope)."""

    __slots__ = ("a",)

    def __init__(
        self,
        struct_type: str,
        parent: PDFObject,
        page_number: int,
        page: PDFObject,
        *,
        mcid: int | None = None,
        attributes: str | None = None,
    ) -> None:
        super().__init__(
            struct_type=struct_type,
            parent=parent,
            kids=[] if mcid is None else [mcid],
            page_number=page_number,
        )
        # Written verbatim (a plain str is not escaped): a PDF dictionary we compose.
        self.a = attributes
        # Nested elements are not in /Document's kids, where fpdf2 sets /Pg at output.
        self.pg = page  # type: ignore[assignment]  # fpdf2 declares /Pg as None until output


class _TreeBuilder(StructureTreeBuilder):
    """fpdf2's structure tree with nested elements: a ``/Table`` holds ``/TR`` rows, a row
    its cells. Every element is serialised, depth first; the parent tree maps each page's
    MCIDs, in order, to the element that holds them."""

    def next_mcid_for_page(self, page_number: int) -> int:
        # fpdf2 counts /Document's kids with content on the page; nested cells count too.
        spid = self.spid_per_page_number.get(page_number)
        return 0 if spid is None else len(self.struct_tree_root.parent_tree.nums[spid])

    def group(
        self, struct_type: str, parent: StructElem | None, page_number: int, page: PDFObject
    ) -> _Element:
        """A new element without content of its own (``/Table``, ``/TR``), last child of
        ``parent`` (``None``: of ``/Document``)."""
        holder = self.doc_struct_elem if parent is None else parent
        element = _Element(f"/{struct_type}", holder, page_number, page)
        holder.k.append(element)
        return element

    def content(
        self,
        struct_type: str,
        parent: StructElem,
        page_number: int,
        page: PDFObject,
        attributes: str | None = None,
    ) -> tuple[int, int]:
        """A new element holding one marked sequence on ``page_number``, last child of
        ``parent``: its MCID and the page's struct-parents key."""
        spid = self.spid_per_page_number.setdefault(page_number, len(self.spid_per_page_number))
        mcid = len(self.struct_tree_root.parent_tree.nums[spid])
        element = _Element(
            f"/{struct_type}", parent, page_number, page, mcid=mcid, attributes=attributes
        )
        parent.k.append(element)
        self.struct_tree_root.parent_tree.nums[spid].append(element)
        return mcid, spid

    def __iter__(self) -> Iterator[PDFObject]:
        yield self.struct_tree_root
        yield self.doc_struct_elem
        yield self.struct_tree_root.parent_tree
        stack = list(reversed(self.doc_struct_elem.k))
        while stack:
            element = stack.pop()
            yield element
            stack.extend(kid for kid in reversed(element.k) if isinstance(kid, StructElem))


class _Canvas(FPDF):
    """fpdf2 with the report footer ("Pagina X van Y", centred, an artifact), marked
    content for structure elements other than fpdf2's own ``/Figure``, and nested
    structure elements for tables."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.struct_builder: _TreeBuilder = _TreeBuilder()

    def table_element(self) -> _Element:
        """A new ``/Table`` element, next in reading order under ``/Document``."""
        return self.struct_builder.group("Table", None, self.page, self.pages[self.page])

    def row_element(self, table: _Element) -> _Element:
        """A new ``/TR`` row, last in ``table``."""
        return self.struct_builder.group("TR", table, self.page, self.pages[self.page])

    @contextmanager
    def tagged_cell(self, row: _Element, struct_type: str, scope: str | None) -> Iterator[None]:
        """What is drawn inside becomes a new cell (``/TH`` with ``scope``, or ``/TD``) of
        ``row``: one marked sequence on this page."""
        attributes = None if scope is None else f"<</O /Table /Scope /{scope}>>"
        mcid, spid = self.struct_builder.content(
            struct_type, row, self.page, self.pages[self.page], attributes
        )
        self.pages[self.page].struct_parents = spid
        self._set_min_pdf_version("1.4")  # due to using /MarkInfo
        page = self.page
        self._out(f"/{struct_type} <</MCID {mcid}>> BDC")
        yield
        if self.page != page:  # pragma: no cover - the renderer breaks the page first
            raise RuntimeError("a table cell ran onto the next page")
        self._out("EMC")

    @contextmanager
    def artifact(self) -> Iterator[None]:
        """What is drawn inside is decoration (rules, fills, a repeated header row)."""
        self._out("/Artifact BMC")
        yield
        self._out("EMC")

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
        """Label-value pairs, labels in bold on the left; long values wrap.

        Tagged as a table without header row: each label a row header (``/TH``, scope
        ``/Row``), each value a ``/TD``."""
        self._check_open()
        if not items:
            return
        self._grid(
            None,
            [(key, value) for key, value in items],
            fractions=(1, 2),
            size_pt=_BODY_PT,
            bordered=False,
        )
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
        self._grid(
            header,
            rows,
            fractions=tuple(widths) if widths is not None else (1,) * len(header),
            size_pt=_TABLE_PT,
            bordered=True,
        )
        self._pdf.ln(3)

    def _grid(
        self,
        header: Sequence[str] | None,
        rows: Sequence[Sequence[str]],
        *,
        fractions: Sequence[float],
        size_pt: float,
        bordered: bool,
    ) -> None:
        """Draw a table cell by cell as a tagged ``/Table``.

        With ``header`` the table has a header row of ``/TH`` cells (scope ``/Column``),
        ruled, filled and repeated (as an artifact) on every page the table runs onto.
        Without it, the first column holds row headers (``/TH``, scope ``/Row``, bold) and
        the table is drawn without rules, as a label-value block.
        """
        pdf = self._pdf
        if any(f <= 0 for f in fractions):
            raise ValueError("column widths must be positive")
        total = sum(fractions)
        widths = [pdf.epw * f / total for f in fractions]
        height = self._line_height(size_pt)
        pad_v = 0.6
        pad_l = _CELL_PADDING if bordered else 0.0
        pad_r = _CELL_PADDING

        def wrap(text: str, style: str, width: float) -> list[str]:
            pdf.set_font(_FAMILY, style, size_pt)
            clean = self._clean(text, style)
            if not clean.strip():
                return []
            lines = pdf.multi_cell(
                max(width - pad_l - pad_r, 1.0), height, clean, dry_run=True, output="LINES"
            )
            assert isinstance(lines, list)
            return [str(line) for line in lines]

        def styles(is_header: bool) -> list[str]:
            if is_header:
                return ["B"] * len(widths)
            return ["" if bordered else "B", *([""] * (len(widths) - 1))][: len(widths)]

        def draw(
            cells: Sequence[list[str]],
            cell_styles: Sequence[str],
            row_height: float,
            *,
            filled: bool,
            row: _Element | None,
        ) -> None:
            """One row at the current y; ``row`` None draws it as an artifact."""
            top = pdf.y
            if bordered:
                with pdf.artifact():
                    x = pdf.l_margin
                    if filled:
                        pdf.set_fill_color(*_HEADER_FILL)
                    for width in widths:
                        pdf.rect(x, top, width, row_height, style="FD" if filled else "D")
                        x += width
            x = pdf.l_margin
            for column, (lines, style, width) in enumerate(
                zip(cells, cell_styles, widths, strict=True)
            ):
                pdf.set_font(_FAMILY, style, size_pt)
                if row is None:
                    context = pdf.artifact()
                elif header is not None and filled:
                    context = pdf.tagged_cell(row, "TH", "Column")
                elif header is None and column == 0:
                    context = pdf.tagged_cell(row, "TH", "Row")
                else:
                    context = pdf.tagged_cell(row, "TD", None)
                with context:
                    if lines:
                        pdf.set_xy(x + pad_l, top + pad_v)
                        pdf.multi_cell(
                            width - pad_l - pad_r,
                            height,
                            "\n".join(lines),
                            align=Align.L,
                            new_x=XPos.LMARGIN,
                            new_y=YPos.NEXT,
                        )
                x += width
            pdf.set_xy(pdf.l_margin, top + row_height)

        auto_break, break_margin = pdf.auto_page_break, pdf.b_margin
        c_margin = pdf.c_margin
        # Rows are placed by hand: a page must never break inside a marked sequence.
        pdf.set_auto_page_break(False, margin=break_margin)
        pdf.c_margin = 0
        try:
            header_cells = (
                [wrap(text, "B", width) for text, width in zip(header, widths, strict=True)]
                if header is not None
                else None
            )
            header_height = (
                max(1, *(len(c) for c in header_cells)) * height + 2 * pad_v
                if header_cells is not None
                else 0.0
            )
            table: _Element | None = None
            body = [
                [wrap(t, st, w) for t, st, w in zip(cells, styles(False), widths, strict=True)]
                for cells in rows
            ]
            all_rows: list[tuple[list[list[str]], bool]] = []
            if header_cells is not None:
                all_rows.append((header_cells, True))
            all_rows.extend((cells, False) for cells in body)
            for cells, is_header in all_rows:
                remaining = cells
                while True:
                    need = max(1, *(len(c) for c in remaining))
                    room = int((pdf.page_break_trigger - pdf.y - 2 * pad_v) // height)
                    if is_header and body:
                        # Keep the header with the first row.
                        first_row = max(1, *(len(c) for c in body[0])) * height + 2 * pad_v
                        room = int(
                            (pdf.page_break_trigger - pdf.y - first_row - 2 * pad_v) // height
                        )
                    fresh = int(
                        (pdf.page_break_trigger - pdf.t_margin - header_height - 2 * pad_v)
                        // height
                    )
                    if need > room and (need <= fresh or room < 1):
                        pdf.add_page()
                        if header_cells is not None and not is_header:
                            draw(
                                header_cells,
                                styles(True),
                                header_height,
                                filled=True,
                                row=None,
                            )
                        continue
                    take = min(need, room)
                    piece = [c[:take] for c in remaining]
                    if table is None:
                        # The table begins on the page of its first row.
                        table = pdf.table_element()
                    draw(
                        piece,
                        styles(is_header),
                        take * height + 2 * pad_v,
                        filled=is_header,
                        row=pdf.row_element(table),
                    )
                    remaining = [c[take:] for c in remaining]
                    if not any(remaining):
                        break
        finally:
            pdf.c_margin = c_margin
            pdf.set_auto_page_break(auto_break, margin=break_margin)

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
