"""The files ``vir`` and ``vir-client`` write whole or not at all (``vir.client.files``:
exports, reports, access reports): a command killed while writing one (``kill -9``, no
cleanup) left its new file beside the target for good, holding most of an export; the
next command writing that target removes it, but never one still being written, one
of another user or kind, or a link. A full disk is one line naming the target."""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vir.client import files
from vir.client.files import CannotWrite, private_file


def _killed_while_writing(target: Path) -> Path:
    """A process that starts writing ``target`` and is killed with -9: its new file."""
    code = (
        "import os, sys, signal\n"
        "from pathlib import Path\n"
        "from vir.client.files import private_file\n"
        "with private_file(Path(sys.argv[1])) as f:\n"
        "    f.write(b'most of an export' * 1000)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    (left,) = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}-")]
    return left


def test_the_new_file_of_a_killed_command_is_removed_by_the_next(tmp_path: Path) -> None:
    target = tmp_path / "audit.export"
    left = _killed_while_writing(target)
    assert left.stat().st_size > 0 and not target.exists()
    with private_file(target) as out:
        out.write(b"the whole export\n")
    assert target.read_bytes() == b"the whole export\n"
    assert not left.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.export"]


def test_a_new_file_still_being_written_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "audit.export"
    busy = tmp_path / ".audit.export-abcd1234"
    busy.write_bytes(b"another command's export, under way")
    with busy.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with private_file(target) as out:
            out.write(b"x")
        assert busy.exists()


@pytest.mark.parametrize("kind", ["link", "folder", "other name"])
def test_only_abandoned_new_files_are_removed(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "report.pdf"
    precious = tmp_path / "precious"
    precious.write_bytes(b"keep me")
    if kind == "link":
        thing = tmp_path / ".report.pdf-abcd1234"
        thing.symlink_to(precious)
    elif kind == "folder":
        thing = tmp_path / ".report.pdf-abcd1234"
        thing.mkdir()
    else:
        thing = tmp_path / ".report.pdf-notmine"  # not mkstemp's eight characters
        thing.write_bytes(b"keep me too")
    with private_file(target) as out:
        out.write(b"x")
    assert thing.exists() or thing.is_symlink()
    assert precious.read_bytes() == b"keep me"


def test_a_full_disk_is_one_line_naming_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "audit.export"

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(CannotWrite) as refused, private_file(target) as out:
        out.write(b"data")
    assert str(refused.value) == f"cannot write {target}: no space left on the device"
    assert list(tmp_path.iterdir()) == []
    assert os.listdir(tmp_path) == []


def test_a_disk_full_while_writing_is_one_line_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write fails, and so does the close that flushes what was buffered: the
    command says the first, not a traceback of the second."""
    target = tmp_path / "audit.export"
    opened = os.fdopen

    class Full:
        def __init__(self, fd: int, mode: str) -> None:
            self._real = opened(fd, mode)

        def write(self, _data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self._real.close()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> object:
            return getattr(self._real, name)

    monkeypatch.setattr(files.os, "fdopen", Full)
    with pytest.raises(CannotWrite) as refused, private_file(target) as out:
        out.write(b"data")
    assert str(refused.value) == f"cannot write {target}: no space left on the device"
    assert os.listdir(tmp_path) == []
