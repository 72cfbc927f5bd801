"""The PDFs are tagged for screen readers: a structural check with pypdf.

No PDF/UA validator (veraPDF) is installed here; this checks what the documents
promise (``vir.reports.pdf``): language, title shown as window title, marked and
tagged, every heading and paragraph a structure element with content on a page, every
image a ``/Figure`` with alternative text, the footer an artifact. Tables are not
tagged (fpdf2 2.8.9 cannot nest structure elements); see the module docstring there.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject
from test_access_pdf import realistic_report
from test_officer import _monitor, _privacy

from vir.reports.access_pdf import render_access_report
from vir.reports.officer import monitor_pdf, privacy_pdf
from vir.reports.pdf import Document

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
    untagged: list[int] = []
    for number, page in enumerate(reader.pages, 1):
        content = page.get_contents()
        data = content.get_data().decode("latin-1") if content is not None else ""
        if "/StructParents" not in page:
            # Only a table on it: the known gap (tables are not tagged), not a problem.
            untagged.append(number)
        if "/Artifact" not in data:
            problems.append(f"page {number}: footer not an artifact")
        if len(re.findall(r"\bBDC\b", data)) != len(re.findall(r"\bEMC\b", data)):
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
