"""``vir-client report participation`` checks its input before anything is sent."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from vir.client.reports import add_parsers, params_of
from vir.domain.errors import InputError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="command"))
    return parser.parse_args(["report", "participation", *argv])


PERIOD = ("--from", "2026-01-01", "--to", "2026-11-01")


def test_the_query_sent() -> None:
    assert params_of(_args(*PERIOD)) == {"from": "2026-01-01", "to": "2026-11-01", "format": "json"}
    args = _args(*PERIOD, "--days", "7", "--region", "Rotterdam", "--format", "csv")
    assert params_of(args) == {
        "from": "2026-01-01",
        "to": "2026-11-01",
        "format": "csv",
        "region": "Rotterdam",
        "days": 7,
        "dialect": "nl",  # the Dutch CSV unless --dialect data (docs/privacy/README.md)
    }
    data = _args(*PERIOD, "--format", "csv", "--dialect", "data")
    assert params_of(data)["dialect"] == "data"
    pdf = _args(*PERIOD, "--format", "pdf", "--out", "deelname.pdf")
    assert params_of(pdf)["format"] == "pdf" and pdf.out == Path("deelname.pdf")


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (("--out", "deelname.pdf"), "pdf"),
        (("--out", "DEELNAME.PDF"), "pdf"),
        (("--out", "deelname.csv"), "csv"),
        (("--out", "deelname.json"), "json"),
        (("--out", "deelname.txt"), "json"),
        (("--out", "deelname.txt", "--format", "csv"), "csv"),
        (("--out", "deelname.csv", "--format", "csv"), "csv"),
    ],
)
def test_the_file_named_chooses_the_format(argv: tuple[str, ...], kind: str) -> None:
    """A report written to deelname.pdf is a PDF without --format (it used to be JSON
    in a file named .pdf)."""
    assert params_of(_args(*PERIOD, *argv))["format"] == kind


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (("--from", "2026-13-01", "--to", "2026-11-01"), "from"),
        (("--from", "2026-11-01", "--to", "123456782"), "to"),
        (("--from", "2026-11-01", "--to", "2026-01-01"), "from"),
        ((*PERIOD, "--days", "0"), "days"),
        ((*PERIOD, "--days", "366"), "days"),
        ((*PERIOD, "--format", "pdf"), "out"),
        ((*PERIOD, "--format", "csv", "--out", "deelname.pdf"), "format"),
    ],
)
def test_bad_input_is_refused_naming_the_field(argv: tuple[str, ...], field: str) -> None:
    with pytest.raises(InputError) as refused:
        params_of(_args(*argv))
    assert refused.value.field == field
    assert "123456782" not in refused.value.detail
