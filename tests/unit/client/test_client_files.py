"""What ``vir-client`` writes to a file (``access --pdf``, ``report participation
--out``) is for its owner alone (0600), written whole, and a path that cannot be written
stops the command, in one line naming that path, before the request is sent."""

from __future__ import annotations

import argparse
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from vir.client import cli, reports

PERIOD = ("--from", "2026-01-01", "--to", "2026-11-01")


class FakeClient:
    """Records what was asked; answers with a small PDF."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def access_report_pdf(self, _identity: str) -> bytes:
        self.asked.append("access")
        return b"%PDF-1.7 access\n"

    def download(self, _path: str, _params: dict[str, Any], _advance: Any) -> bytes:
        self.asked.append("participation")
        return b"%PDF-1.7 participation\n"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(cli, "_connect", lambda _args: fake)
    return fake


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("111222333\n"))
    code = cli.main(["--dev-org", "privacy_officer", *argv])
    said = capsys.readouterr()
    return code, said.out, said.err


def _report(out: Path, fake: FakeClient) -> int:
    parser = argparse.ArgumentParser()
    reports.add_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "participation", *PERIOD, "--out", str(out), "--quiet"])

    @contextmanager
    def connect(_args: argparse.Namespace) -> Iterator[Any]:
        yield fake

    return reports.command(args, connect)


@pytest.mark.usefixtures("umask_022")
def test_an_access_pdf_is_written_for_its_owner_alone(
    tmp_path: Path,
    client: FakeClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pdf = tmp_path / "x.pdf"
    code, out, err = _run(["access", "bsn", "--pdf", str(pdf)], capsys, monkeypatch)
    assert (code, out, err) == (0, f"vir-client: written {pdf}\n", "")
    assert pdf.read_bytes() == b"%PDF-1.7 access\n"
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o600


def test_an_access_pdf_to_a_folder_that_is_not_there_is_refused_before_the_request(
    tmp_path: Path,
    client: FakeClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pdf = tmp_path / "nodir" / "x.pdf"
    code, out, err = _run(["access", "bsn", "--pdf", str(pdf)], capsys, monkeypatch)
    assert (code, out) == (1, "")
    assert err == f"vir-client: cannot write {pdf}: no such folder: {pdf.parent}\n"
    assert client.asked == []


@pytest.mark.usefixtures("umask_022")
def test_a_participation_report_is_written_for_its_owner_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient()
    out = tmp_path / "deelname.pdf"
    assert _report(out, fake) == 0
    assert capsys.readouterr().out == f"vir-client: written {out}\n"
    assert out.read_bytes() == b"%PDF-1.7 participation\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [out]  # no temporary left


def test_a_participation_report_to_a_folder_that_is_not_there_is_refused_before_the_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeClient()
    out = tmp_path / "nodir" / "x.pdf"
    assert _report(out, fake) == 1
    said = capsys.readouterr()
    assert (said.out, said.err) == (
        "",
        f"vir-client: cannot write {out}: no such folder: {out.parent}\n",
    )
    assert fake.asked == []
