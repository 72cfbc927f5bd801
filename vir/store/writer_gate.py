"""The queue of SQLite writers across processes: a lock file beside the database.

SQLite admits one writer at a time. A process whose ``BEGIN IMMEDIATE`` finds another
process writing is told "busy" and retries in SQLite's busy handler, which sleeps
1, 2, 5, 10, ... ms between tries: with several processes on one database (the key
holder's workers, instances of ``vir serve``), writers sleep while the lock is free
and the cores idle. Within a process writers already queue on a lock and share
commits (vir.store.db, "Group commit"); across processes they queue here, on an
exclusive ``flock`` of ``<database>-writers``, taken before ``BEGIN IMMEDIATE`` and
released after the commit. The file holds nothing (it is created 0600 all the same);
the kernel releases a dead process's lock.

A gate only orders writers that use it. Whatever else takes SQLite's lock (a
migration, the ``sqlite3`` shell) is met by SQLite's own busy handler as before, and
a writer that cannot enter within ``patience`` seconds goes on without the gate to
meet that handler and its timeout: the gate never makes a write wait longer than
SQLite would, nor fail where SQLite would not.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from vir.domain.errors import ConfigurationError

# Between tries for a held gate: short at first (a writer's turn is about a millisecond),
# at most this long.
_FIRST_PAUSE = 0.00005
_LONGEST_PAUSE = 0.0005


class WriterGate:
    def __init__(self, database: Path, patience: float) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        path = f"{database}-writers"
        try:
            self._fd = os.open(path, flags, 0o600)
        except OSError as error:
            # A read-only file system or folder (a mounted snapshot, a backup), or one
            # this user may not write: one line, not a traceback.
            why = (error.strerror or type(error).__name__).lower()
            raise ConfigurationError(
                f"cannot open {path}, the database's writer lock ({why}): vir "
                f"needs to write in {database.parent} (the folder of the database), also "
                "to read it; for a read-only copy (a backup, a snapshot) copy the database "
                "file to a folder this user may write first"
            ) from None
        self._patience = patience

    def enter(self) -> bool:
        """Wait for the gate; False when ``patience`` ran out (the writer goes on)."""
        pause = _FIRST_PAUSE
        deadline = time.monotonic() + self._patience
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)

    def leave(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)
