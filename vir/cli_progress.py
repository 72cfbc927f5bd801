"""The progress bar of a long ``vir`` command: a lifecycle run, a report, a checkpoint,
an export, a verification (a rekey has a bar of its own, with rates)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from vir.domain.progress import Progress


@contextmanager
def progress_for(args: argparse.Namespace) -> Iterator[Progress | None]:
    """A progress bar for a long job, on standard error when that is a terminal and the
    command was not given --quiet; else None (nothing is written)."""
    from vir.services.lifecycle import progress_bar

    if not sys.stderr.isatty() or getattr(args, "quiet", False):
        yield None
        return
    try:
        yield progress_bar(sys.stderr.write)
    finally:
        sys.stderr.write("\n")
