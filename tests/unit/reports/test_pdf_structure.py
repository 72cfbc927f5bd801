"""The PDFs are tagged for screen readers: a structural check with pypdf.

No PDF/UA validator (veraPDF) is installed here; this checks what the documents
promise (``vir.reports.pdf``): language, title shown as window title, marked and
tagged, every heading and paragraph a structure element with content on a page, every
image a ``/Figure`` with alternative text, every table a ``/Table`` of ``/TR`` rows of
``/TH`` (with a scope) and ``/TD`` cells, the footer an artifact. No text is drawn
outside marked content, every marked sequence with an MCID belongs to exactly the
element the parent tree names, and on every page the structure tree meets the MCIDs in
the order they are drawn (reading order).
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, ContentStream, DictionaryObject
from test_access_pdf import realistic_report
from test_officer import _monitor, _privacy

from vir.reports.access_pdf import render_access_report
from vir.reports.officer import monitor_pdf, privacy_pdf
from vir.reports.pdf import Document, chart_png

pytestmark = pytest.mark.sqlite_only("rendering a PDF from given data: no database")

CREATED = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _elements(node: Any) -> list[DictionaryObject]:
    """Every structure element under ``node``, depth first (reading order)."""
    node = node.get_object()
    kids = node.get("/K")
    if kids is None:
        return []
    kids = kids.get_object()
    out: list[DictionaryObject] = []
    for kid in kids if isinstance(kids, ArrayObject) else [kids]:
        kid = kid.get_object()
        if isinstance(kid, DictionaryObject) and kid.get("/Type") == "/StructElem":
            out.append(kid)
            out.extend(_elements(kid))
    return out


_SHOW_TEXT = {b"Tj", b"TJ", b"'", b'"'}


def _marked(page: Any, reader: PdfReader) -> tuple[list[int], int, bool]:
    """The MCIDs on ``page`` in drawing order, how many text-showing operators sit
    outside any marked-content sequence (neither tagged nor an artifact), and whether
    every sequence is closed where it is opened."""
    contents = page.get_contents()
    if contents is None:
        return [], 0, True
    mcids: list[int] = []
    depth = 0
    loose = 0
    balanced = True
    for operands, operator in ContentStream(contents, reader).operations:
        if operator in (b"BDC", b"BMC"):
            depth += 1
            properties = operands[1] if operator == b"BDC" else None
            if isinstance(properties, DictionaryObject) and "/MCID" in properties:
                mcids.append(int(properties["/MCID"]))
        elif operator == b"EMC":
            depth -= 1
            balanced = balanced and depth >= 0
        elif operator in _SHOW_TEXT and depth == 0:
            loose += 1
    return mcids, loose, balanced and depth == 0


def _tables(elements: list[DictionaryObject]) -> list[str]:
    """What is wrong with the tables among ``elements``."""
    problems: list[str] = []
    for table in (e for e in elements if e["/S"] == "/Table"):
        rows = [k.get_object() for k in table.get("/K", [])]
        if not rows or any(r["/S"] != "/TR" for r in rows):
            problems.append("a /Table whose children are not all /TR")
            continue
        for row in rows:
            cells = [k.get_object() for k in row.get("/K", [])]
            if not cells or any(c["/S"] not in ("/TH", "/TD") for c in cells):
                problems.append("a /TR whose children are not all /TH or /TD")
            for cell in cells:
                if cell["/S"] == "/TH":
                    scope = cell.get("/A", {}).get("/Scope")
                    if scope not in ("/Column", "/Row"):
                        problems.append("a /TH without /Scope")
        widths = {len(r["/K"]) for r in rows}
        if len(widths) != 1:
            problems.append("a /Table with rows of different lengths")
    return problems


def structure(pdf: bytes) -> dict[str, Any]:
    """What a screen reader gets from ``pdf``; ``problems`` lists what is missing."""
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"].get_object()
    problems: list[str] = []
    if root.get("/Lang") != "nl":
        problems.append("no /Lang nl")
    if not root.get("/MarkInfo", {}).get("/Marked"):
        problems.append("not /Marked")
    if not (reader.metadata and reader.metadata.title):
        problems.append("no /Title")
    if not root.get("/ViewerPreferences", {}).get("/DisplayDocTitle"):
        problems.append("title not shown (/DisplayDocTitle)")
    tree = root.get("/StructTreeRoot")
    if tree is None:
        return {"problems": [*problems, "no /StructTreeRoot"], "tags": Counter()}
    elements = _elements(tree)
    tags = Counter(str(e["/S"]) for e in elements)
    figures = [e for e in elements if e["/S"] == "/Figure"]
    if any(not str(e.get("/Alt", "")).strip() for e in figures):
        problems.append("a /Figure without /Alt")
    images = sum(len(page.images) for page in reader.pages)
    if len(figures) != images:
        problems.append(f"{images} images but {len(figures)} figures")
    problems.extend(_tables(elements))
    # Which element each (page, MCID) belongs to, from the tree and from the parent tree.
    page_numbers = {page.indirect_reference.idnum: n for n, page in enumerate(reader.pages, 1)}
    in_tree: dict[int, list[int]] = {}
    owner: dict[tuple[int, int], int] = {}
    for element in elements:
        kids = element.get("/K", [])
        for kid in kids if isinstance(kids, ArrayObject) else [kids]:
            if isinstance(kid, int):
                number = page_numbers[element.raw_get("/Pg").idnum]
                in_tree.setdefault(number, []).append(kid)
                owner[(number, kid)] = element.indirect_reference.idnum
    nums = tree["/ParentTree"].get_object()["/Nums"]
    parents = {int(nums[i]): nums[i + 1].get_object() for i in range(0, len(nums), 2)}
    untagged: list[int] = []
    for number, page in enumerate(reader.pages, 1):
        content = page.get_contents()
        data = content.get_data().decode("latin-1") if content is not None else ""
        mcids, loose, balanced = _marked(page, reader)
        if "/StructParents" not in page or not mcids:
            untagged.append(number)
            problems.append(f"page {number}: no tagged content")
        if loose:
            problems.append(f"page {number}: {loose} text runs outside marked content")
        if in_tree.get(number, []) != mcids:
            problems.append(f"page {number}: structure tree and content disagree on order")
        elif "/StructParents" in page:
            listed = parents.get(int(page["/StructParents"]), [])
            if [e.idnum for e in listed] != [owner[(number, m)] for m in mcids]:
                problems.append(f"page {number}: parent tree names the wrong elements")
        if "/Artifact" not in data:
            problems.append(f"page {number}: footer not an artifact")
        if not balanced:
            problems.append(f"page {number}: unbalanced marked content")
    return {
        "problems": problems,
        "tags": tags,
        "pages": len(reader.pages),
        "untagged_pages": untagged,
    }


REPORTS = {
    "privacy": lambda: privacy_pdf(_privacy(), CREATED),
    "monitor": lambda: monitor_pdf(_monitor(), CREATED),
    "access": lambda: render_access_report(realistic_report()),
}


@pytest.mark.parametrize("name", REPORTS)
def test_every_report_is_tagged(name: str) -> None:
    found = structure(REPORTS[name]())
    assert found["problems"] == []
    tags = found["tags"]
    assert tags["/Title"] == 1 and tags["/H1"] >= 2 and tags["/P"] >= 2


def test_the_privacy_reports_charts_say_their_figures() -> None:
    reader = PdfReader(io.BytesIO(privacy_pdf(_privacy(), CREATED)))
    tree = reader.trailer["/Root"]["/StructTreeRoot"]
    alts = [str(e["/Alt"]) for e in _elements(tree) if e["/S"] == "/Figure"]
    assert len(alts) == 2
    assert "oktober 2026: 2" in alts[0] and "november 2026: 12" in alts[0]


def test_a_paragraph_longer_than_a_page_still_tags_every_line() -> None:
    doc = Document("Lang", created_at=CREATED)
    doc.paragraph("\n".join(f"regel {n}" for n in range(150)))
    found = structure(doc.render())
    assert found["problems"] == [] and found["pages"] >= 2
    assert found["tags"]["/P"] >= 2


def test_the_check_finds_an_untagged_pdf() -> None:
    from fpdf import FPDF

    bare = FPDF()
    bare.add_page()
    assert "no /StructTreeRoot" in structure(bytes(bare.output()))["problems"]


def _table_cells(pdf: bytes) -> list[list[list[tuple[str, str | None]]]]:
    """Every table as rows of (cell type, scope) pairs."""
    reader = PdfReader(io.BytesIO(pdf))
    tree = reader.trailer["/Root"]["/StructTreeRoot"]
    return [
        [
            [
                (str(c.get_object()["/S"]), c.get_object().get("/A", {}).get("/Scope"))
                for c in r.get_object()["/K"]
            ]
            for r in t["/K"]
        ]
        for t in _elements(tree)
        if t["/S"] == "/Table"
    ]


def test_a_table_is_a_table_of_header_and_data_cells() -> None:
    doc = Document("Tabel", created_at=CREATED)
    doc.key_values([("Naam", "Şükrü Yılmaz"), ("Collega", "Łukasz Wróbel")])
    doc.table(["Maand", "Aantal"], [["oktober 2026", "3"], ["november 2026", "<10"]])
    found = structure(pdf := doc.render())
    assert found["problems"] == []
    pairs, table = _table_cells(pdf)
    assert pairs == [[("/TH", "/Row"), ("/TD", None)]] * 2
    assert table[0] == [("/TH", "/Column")] * 2
    assert table[1:] == [[("/TD", None)] * 2] * 2


def test_a_table_across_pages_tags_its_header_once() -> None:
    doc = Document("Lang", created_at=CREATED)
    doc.table(["Nummer", "Tekst"], [[str(n), f"regel {n}"] for n in range(120)])
    found = structure(pdf := doc.render())
    assert found["problems"] == [] and found["pages"] >= 3
    (table,) = _table_cells(pdf)
    # The header repeated on later pages is an artifact, not a second header row.
    assert len(table) == 121
    assert sum(row == [("/TH", "/Column")] * 2 for row in table) == 1


def test_the_check_finds_text_outside_marked_content() -> None:
    from fpdf import FPDF

    bare = FPDF()
    bare.add_page()
    bare.set_font("helvetica", size=10)
    bare.image(io.BytesIO(chart_png({"a": [("x", 1)]}, "t", "y")), w=50, alt_text="grafiek")
    bare.cell(0, 5, "los")
    problems = structure(bytes(bare.output()))["problems"]
    assert "page 1: 1 text runs outside marked content" in problems
