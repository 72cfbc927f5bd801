"""``/metrics`` of a server run as several processes on one port (``VIR_WORKERS``,
``VIR_KEYHOLDER_WORKERS``): one answer for all of them.

Each worker process keeps its own registry, and the kernel hands a scrape to whichever
worker it hands the connection to; a scrape that saw one worker's counters would
have them jump between the workers' values, which Prometheus reads as resets. So the
worker that takes a scrape asks its siblings for their figures and answers the sum.

Before forking, the parent makes a private folder (``tempfile.mkdtemp``: mode 0700,
its own user's; in ``/tmp`` when the temporary folder's path is too long for a
socket's, ``private_folder``) and removes it when it stops. Every worker listens
there on a Unix socket of its own (``worker-<n>.sock``, mode 0600), on a thread that
answers each connection with a snapshot of its registry as JSON and closes it; it
reads nothing from the connection. The scraped worker connects to every sibling, reads each
snapshot (bounded in size and time, and checked: a name, a type, samples of labels
and numbers), and merges them with its own:

- counters and histograms: summed per label set (requests, matches, buckets...);
- gauges: by ``GAUGES``: the same database read by each (the newest checkpoint, the
  outbox) or a moment (a job's last success): the largest; a process's memory and
  file descriptors: summed; its start: the earliest.

A sibling that does not answer fails the scrape (``SiblingsUnavailable``, 503) rather
than answer a partial sum that would look like a counter reset. Counts only: no
snapshot holds an identifier (vir.api.metrics).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from vir.domain.errors import ConfigurationError

# How a gauge of several processes is one number; a gauge not listed takes the largest.
GAUGES: dict[str, Callable[[Iterable[float]], float]] = {
    "vir_job_last_success_timestamp_seconds": max,
    "vir_audit_checkpoint_last_timestamp_seconds": max,
    "vir_deliveries": max,
    "vir_deliveries_dead": max,
    "process_start_time_seconds": min,
    "process_max_fds": min,
    "process_virtual_memory_bytes": sum,
    "process_resident_memory_bytes": sum,
    "process_open_fds": sum,
    "python_info": max,
}
SUMMED = ("counter", "histogram")
TYPES = (*SUMMED, "gauge", "info", "unknown")
MAX_SNAPSHOT_BYTES = 4 * 2**20
TIMEOUT_SECONDS = 2.0
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,199}")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,99}")

Families = list[dict[str, Any]]


class SiblingsUnavailable(Exception):
    """A sibling worker did not give its figures: the scrape is refused, not summed
    (``GET /metrics`` answers 503; never raised out of a request handler)."""


def snapshot(registry: CollectorRegistry) -> Families:
    """The registry's families as plain data (what a sibling sends)."""
    return [
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "samples": [[s.name, dict(s.labels), float(s.value)] for s in family.samples],
        }
        for family in registry.collect()
    ]


def merged(snapshots: Sequence[Families]) -> CollectorRegistry:
    """One registry holding the sum of ``snapshots`` (the rules in the module docstring),
    families and samples in the order they first appear."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], list[float]]] = {}
    for families_of_one in snapshots:
        for family in families_of_one:
            name = family["name"]
            if name not in families:
                families[name] = Metric(name, family["help"], family["type"])
                values[name] = {}
            elif families[name].type != family["type"]:
                raise SiblingsUnavailable(f"the workers disagree on the type of {name}")
            for sample, labels, value in family["samples"]:
                key = (sample, tuple(sorted(labels.items())))
                values[name].setdefault(key, []).append(value)
    for name, metric in families.items():
        combine = sum if metric.type in SUMMED else GAUGES.get(name, max)
        metric.samples = [
            Sample(sample, dict(labels), float(combine(found)))
            for (sample, labels), found in values[name].items()
        ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(families.values())))
    return registry


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def checked(data: bytes) -> Families:
    """A sibling's snapshot, or SiblingsUnavailable when it is not one."""
    try:
        families = json.loads(data)
        if not isinstance(families, list):
            raise ValueError
        for family in families:
            _check_family(family)
    except (ValueError, TypeError, KeyError):
        raise SiblingsUnavailable("a worker's figures could not be read") from None
    return families


def _check_family(family: Any) -> None:
    if not isinstance(family, dict) or set(family) != {"name", "type", "help", "samples"}:
        raise ValueError
    if not (isinstance(family["name"], str) and _NAME.fullmatch(family["name"])):
        raise ValueError
    if family["type"] not in TYPES or not isinstance(family["help"], str):
        raise ValueError
    if not isinstance(family["samples"], list):
        raise ValueError
    for sample in family["samples"]:
        name, labels, value = sample
        if not (isinstance(name, str) and _NAME.fullmatch(name)):
            raise ValueError
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and _LABEL.fullmatch(k) and isinstance(v, str)
            for k, v in labels.items()
        ):
            raise ValueError
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            raise ValueError


# The longest path a Unix socket may have on Linux (sun_path is 108 bytes with its NUL).
MAX_SOCKET_PATH = 107
_FALLBACK_TMP = Path("/tmp")  # noqa: S108 - only for mkdtemp: a new 0700 folder, random name


def private_folder(count: int) -> Path:
    """A new folder (mode 0700) for the sockets of ``count`` workers: in the temporary
    folder (``TMPDIR``), or in ``/tmp`` when the sockets' paths there would be too long
    (a deep ``TMPDIR``); ConfigurationError when they are too long in both."""
    longest = len(f"/vir-metrics-12345678/{_name(count - 1)}".encode())
    for base in (Path(tempfile.gettempdir()), _FALLBACK_TMP):
        if len(os.fsencode(base)) + longest <= MAX_SOCKET_PATH:
            return Path(tempfile.mkdtemp(prefix="vir-metrics-", dir=base))
    raise ConfigurationError(
        f"the temporary folder's path ({tempfile.gettempdir()}) is too long for the "
        f"sockets of {count} workers: set TMPDIR to a shorter path"
    )


def _name(index: int) -> str:
    return f"worker-{index}.sock"


class Siblings:
    """Worker ``index`` of ``count``, each listening in ``folder`` (see the module
    docstring): ``serve`` answers the siblings, ``gather`` asks them."""

    def __init__(self, folder: Path, index: int, count: int) -> None:
        self._folder = folder
        self._index = index
        self._count = count
        self._listener: socket.socket | None = None

    def _path(self, index: int) -> Path:
        return self._folder / _name(index)

    def serve(self, figures: Callable[[], Families]) -> None:
        """Answer every connection with ``figures()``, on a thread of this process."""
        path = self._path(self._index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a worker of an earlier start that did not clean up
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(16)
        self._listener = listener
        thread = threading.Thread(
            target=self._answer, args=(listener, figures), name="metrics-siblings", daemon=True
        )
        thread.start()

    @staticmethod
    def _answer(listener: socket.socket, figures: Callable[[], Families]) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the worker is stopping
                return
            with connection:
                connection.settimeout(TIMEOUT_SECONDS)
                try:
                    answer = json.dumps(figures()).encode("utf-8")
                except Exception:  # a collector failed: this scrape fails (503), not the next
                    answer = b""
                with contextlib.suppress(OSError):
                    connection.sendall(answer)

    def gather(self) -> list[Families]:
        """Every sibling's figures; SiblingsUnavailable when one does not give them."""
        return [self._ask(i) for i in range(self._count) if i != self._index]

    def _ask(self, index: int) -> Families:
        received = bytearray()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(TIMEOUT_SECONDS)
                connection.connect(str(self._path(index)))
                while chunk := connection.recv(65536):
                    received += chunk
                    if len(received) > MAX_SNAPSHOT_BYTES:
                        raise SiblingsUnavailable(f"worker {index} sent too much")
        except OSError:
            raise SiblingsUnavailable(f"worker {index} did not answer") from None
        return checked(bytes(received))

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self._path(self._index).unlink()
