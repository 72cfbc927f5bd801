"""Files ``vir`` and ``vir-client`` write that only their owner may read: exports,
reports, access reports. Each is written whole or not at all, and a file that cannot be
written is said in one line naming the path as the user gave it."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


class CannotWrite(OSError):
    """``path`` cannot be written: ``cannot write PATH: why``, one line. An OSError, so
    that what catches those (``vir.client.failures``) says it as it is."""

    def __init__(self, path: Path, error: OSError | str) -> None:
        why = error if isinstance(error, str) else reason(error)
        super().__init__(f"cannot write {path}: {why}")
        self.path = path


def reason(error: OSError) -> str:
    """Why a file operation failed, without the path it names (which may be a temporary
    file's rather than the one the user gave)."""
    if isinstance(error, FileNotFoundError):
        return "no such file or folder"
    if isinstance(error, NotADirectoryError):
        return "a part of the path is not a folder"
    if isinstance(error, IsADirectoryError):
        return "it is a folder"
    if isinstance(error, PermissionError):
        return "permission denied"
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    return (error.strerror or str(error)).lower()


class PrivateFile:
    """What ``private_file`` hands out: ``write`` appends, and a failure is CannotWrite
    naming the path the user gave (not the temporary file's)."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle = handle

    def write(self, data: bytes) -> None:
        try:
            self._handle.write(data)
        except OSError as error:
            raise CannotWrite(self.path, error) from None


@contextmanager
def private_file(path: Path) -> Iterator[PrivateFile]:
    """A file to write ``path``'s new content to: a new file beside it, 0600 whatever
    the umask, synced and renamed over ``path`` when the block ends without an error, and
    removed when it raises; a reader never sees half of it, nor another local user any
    of it, and a failed command leaves an existing ``path`` as it was.

    The new file is made on entry: enter this before work that cannot be undone (an
    audited report, an access request), so that an unwritable ``path`` stops it
    (``CannotWrite``). It is locked (``flock``) while it is written: the new file of a
    command that was killed (``kill -9``: no cleanup runs) is unlocked, and removed by
    the next command that writes ``path``; it may hold most of an export."""
    if path.is_dir():
        raise CannotWrite(path, "it is a folder")
    _remove_abandoned(path)
    try:
        fd, name = tempfile.mkstemp(prefix=_prefix(path), dir=path.parent)
    except OSError as error:
        folder = path.parent
        if isinstance(error, FileNotFoundError) or not folder.is_dir():
            raise CannotWrite(path, f"no such folder: {folder}") from None
        raise CannotWrite(path, error) from None
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
    handle = os.fdopen(fd, "wb")
    try:
        yield PrivateFile(path, handle)
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(name, path)
        except OSError as error:
            raise CannotWrite(path, error) from None
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk fails the flush again
            handle.close()
        Path(name).unlink(missing_ok=True)
        raise


def _prefix(path: Path) -> str:
    return f".{path.name}-"


def _remove_abandoned(path: Path) -> None:
    """The new files of earlier commands writing ``path`` that were killed: named as
    ``mkstemp`` names them, regular files of this user, and not locked by a command
    still writing."""
    pattern = re.compile(re.escape(_prefix(path)) + r"[a-z0-9_]{8}")
    try:
        names = [e.name for e in os.scandir(path.parent) if pattern.fullmatch(e.name)]
    except OSError:
        return
    for name in names:
        candidate = path.parent / name
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # being written
            candidate.unlink(missing_ok=True)
        finally:
            os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` as one step (``private_file``)."""
    with private_file(path) as file:
        file.write(data)
