"""Whether a key holder serves from a keys folder: a lock that ``vir keyholder serve``
holds while it runs, so that a command that rewrites the key files under it
(``vir keyholder hsm-import``: plain files become HSM-wrapped ones, which the running
process cannot read) refuses instead of breaking evaluations until a restart.

The lock is an advisory ``flock`` on ``.serving.lock`` in the keys folder: shared by
the server (and the worker processes it forks, which inherit the open file), taken
exclusively and without waiting by the command. The kernel releases it when the last
serving process ends, however it ends: no stale lock is left by a crash.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from vir.domain.errors import ConfigurationError

LOCK_NAME = ".serving.lock"


def hold_while_serving(keys_dir: Path) -> int:
    """Take the shared lock for this process's lifetime; the file descriptor (kept open,
    never closed: the lock ends with the process)."""
    try:
        fd = os.open(keys_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigurationError(
            f"the keys folder {keys_dir} (VIR_KEYHOLDER_KEYS_DIR) does not exist: set "
            "VIR_KEYHOLDER_KEYS_DIR to the key holder's keys, or make them (vir keyholder "
            "init for a whole key, vir keyholder dkg for a share)"
        ) from None
    except OSError as error:
        why = (error.strerror or type(error).__name__).lower()
        raise ConfigurationError(
            f"cannot open {keys_dir / LOCK_NAME} in the keys folder ({why}): the key "
            "holder must be able to write in VIR_KEYHOLDER_KEYS_DIR"
        ) from None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def refuse_while_serving(keys_dir: Path, command: str) -> None:
    """ConfigurationError when a key holder serves from ``keys_dir``."""
    path = keys_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return  # no key holder has served from this folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigurationError(
            f"a key holder is serving from {keys_dir}: stop it first "
            f"(systemctl stop vir-keyholder), then run {command} again. Nothing was changed"
        ) from None
    finally:
        os.close(fd)
