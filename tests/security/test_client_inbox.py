"""What ``vir-client notifications`` / ``matches`` take from outside is checked before
anything is sent: the cursor (argument or file) and the signal reference. The cursor file
is replaced whole or not at all, private to its owner, and a bad one is never repeated."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import launch

from vir.client import inbox
from vir.domain.cursor import encode_cursor
from vir.domain.errors import InputError

pytestmark = pytest.mark.sqlite_only("the client's own checks: no database")

GOOD = encode_cursor(41)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """vir-client with a dev folder that does not exist and an index nobody serves:
    a command that got as far as connecting would fail otherwise (exit 1)."""
    return launch.run(
        [
            sys.executable,
            "-m",
            "vir.client.cli",
            "--dev-dir",
            str(tmp_path / "nowhere"),
            "--url",
            "https://127.0.0.1:9",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "cursor",
    ["", "../../etc", "A" * 13, "A" * 11, "AAAAAAAAAAA=", "１２３", "12345678901234567890", "1 2"],
)
def test_a_cursor_that_the_index_never_issued_is_refused_here(cursor: str) -> None:
    with pytest.raises(InputError) as refused:
        inbox.check_cursor(cursor, "after")
    assert refused.value.field == "after" and (not cursor or cursor not in str(refused.value))


def test_bad_arguments_stop_before_connecting(tmp_path: Path) -> None:
    for args, field in (
        (["notifications", "--after", "../../x"], "after"),
        (["notifications", "--limit", "0"], "limit"),
        (["notifications", "--limit", "501"], "limit"),
        (["notifications", "--follow", "--interval", "0.01"], "interval"),
        (["matches", "../other/signal"], "local_ref"),
        (["matches", "x" * 65], "local_ref"),
    ):
        result = _cli(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert f"vir-client: {field}:" in result.stderr
        assert "../" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "content",
    [
        b"junk-value-xyz\n",
        b"\xff\xfe" + GOOD.encode(),
        GOOD.encode() * 40,
        b"\x1b[2J" + GOOD.encode(),
    ],
)
def test_a_damaged_cursor_file_is_refused_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cursor"
    path.write_bytes(content)
    result = _cli(tmp_path, "notifications", "--cursor-file", str(path))
    assert result.returncode == 2 and "vir-client: cursor_file:" in result.stderr
    assert "\x1b" not in result.stderr and "junk-value-xyz" not in result.stderr
    assert path.read_bytes() == content


def test_a_cursor_file_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    result = _cli(tmp_path, "notifications", "--cursor-file", str(tmp_path))
    assert result.returncode == 2 and "cursor_file" in result.stderr


def test_the_cursor_file_is_replaced_whole_and_private(tmp_path: Path) -> None:
    path = tmp_path / "cursor"
    assert inbox.read_cursor_file(path) is None  # no file yet: from the start
    inbox.write_cursor_file(path, GOOD)
    assert path.read_text() == GOOD + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert inbox.read_cursor_file(path) == GOOD
    # A cursor the index should never send is not written; the old one stays.
    with pytest.raises(InputError):
        inbox.write_cursor_file(path, "../../etc/passwd")
    assert path.read_text() == GOOD + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cursor"]  # no temporary left
    # Legacy decimal cursors (issued before per-organisation positions) still read.
    path.write_text("1234\n")
    assert inbox.read_cursor_file(path) == "1234"
