"""Files ``vir`` and ``vir-client`` write that only their owner may read: exports,
reports, access reports. Each is written whole or not at all, and a file that cannot be
written is said in one line naming the path as the user gave it."""

from __future__ import annotations

import errno
import os
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
    (``CannotWrite``)."""
    if path.is_dir():
        raise CannotWrite(path, "it is a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    except OSError as error:
        folder = path.parent
        if isinstance(error, FileNotFoundError) or not folder.is_dir():
            raise CannotWrite(path, f"no such folder: {folder}") from None
        raise CannotWrite(path, error) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield PrivateFile(path, handle)
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as error:
                raise CannotWrite(path, error) from None
        try:
            os.replace(name, path)
        except OSError as error:
            raise CannotWrite(path, error) from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` as one step (``private_file``)."""
    with private_file(path) as file:
        file.write(data)
