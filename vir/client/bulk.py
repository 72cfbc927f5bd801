"""``vir-client import`` and ``vir-client sync``: a back office's signals from a CSV file.

``import FILE.csv`` registers every row (a region migrating its existing signals);
``sync FILE.csv`` does the same and then withdraws every active signal of the
organisation whose ``local_ref`` the file no longer holds (a nightly reconciliation).
The file's format is in ``docs/import.md``.

How a run goes, and why:

* The file is read twice, streaming: once to count its rows (for the progress bar;
  ``sync`` also keeps the set of its ``local_ref`` values), once to send them. Only
  a few chunks of rows are in memory at a time (those gathered up to ``SEND_AT``
  signals, one batch queued, one being sent), however long the file.
* Rows are taken in chunks of at most ``BATCH`` (64) identities, the most one
  ``POST /v1/oprf/evaluate`` takes: each chunk is one pseudonymisation at the key
  holder. A row names one to six identities (the young person, up to four parents,
  the address), so a chunk holds 10 to 64 signals. Pseudonymised signals are sent
  ``SEND_AT`` (128) or more at a time with ``POST /v1/signals/batch``, split into
  requests whose bodies stay under ``BODY_BUDGET`` (below the index's default 64 KiB
  request limit), and when a skipped row or the end of the file comes.
* After each batch, the rows the index accepted (201 new, 200 already there) are
  appended to a state file (``FILE.csv.vir-state``, or ``--state``) and flushed to
  disk. A run that stops (interrupted, killed, rate limited, ``--limit``) is resumed
  by running the same command again: accepted rows are skipped. The state file holds
  each accepted row's number, its ``local_ref`` and a digest of its columns other than
  the identities, never an identity nor a hash of one (a hash of a BSN is reversed by
  trying every BSN). A row sent twice anyway (the process died between the answer and
  the state write) is answered 200: the index is idempotent per ``local_ref``. When
  the file changed since the state was written (size or modification time), the state
  is ignored and the run starts over, which is safe for the same reason. A run that
  went through the whole file removes its state file.
* ``sync`` remembers, between runs, the rows the index holds as the file has them
  (``vir.client.sync_memory``: keyed tags, no identity): those are counted unchanged
  without being pseudonymised or sent again.
* Identities never leave the client except blinded, and are never printed: a refused
  row is reported by its row number (the header is row 1) and its column.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import json
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vir.client.canonical import nl_address, nl_bsn, nl_person
from vir.client.connection import (
    BATCH,
    ClientError,
    Pseudonymised,
    ServiceError,
    VirClient,
    epoch_refusal,
)
from vir.client.lifecycle import OutOfScope, removal_dates
from vir.client.professional import check_professional
from vir.client.sync_memory import PURPOSE as MEMORY_PURPOSE
from vir.client.sync_memory import SUFFIX as MEMORY_SUFFIX
from vir.client.sync_memory import NotAMemory, SyncMemory, held
from vir.domain import strict_json
from vir.domain.dates import parse_iso_date
from vir.domain.errors import InputError
from vir.domain.local_ref import is_local_ref
from vir.domain.signals import MAX_PARENTS, WithdrawalReason

# The index refuses request bodies over VIR_MAX_BODY_BYTES (64 KiB by default): a batch
# is cut below that. A signal takes 170 to 600 bytes: SEND_AT of them may need two.
BODY_BUDGET = 60_000
# Pseudonymised rows are sent to the index once this many signals are ready (in as
# many requests as BODY_BUDGET needs): one write transaction, commit and state-file
# fsync per 128 signals instead of per chunk of 64 identities. Measured on 20,000 rows
# (docs/benchmarks.md, session 36): vir serve's CPU a row 22% lower, 9% more rows/s.
SEND_AT = 128
# Chunks pseudonymised at once, each on a thread of its own, while this thread reads
# the next: one chunk's blinding and unblinding (libsodium, outside the interpreter
# lock) run while another waits for the key holder. One at a time, the reading thread
# spent 90% of a run in pseudonymisation and the index sat idle for 29% of it.
IN_FLIGHT = 2
# Rows not sent (invalid, done in an earlier run, unchanged since the last sync) travel
# with the rows sent, to be accounted for in file order; this many gathered without
# enough rows to send are handed on all the same, so that they never pile up.
MARKS_AT = 1024
# After a wait for the rate limit, requests carry 1, 2, 4, ... items, and all of them
# again once this many went through in one request.
MAX_ALLOWANCE = 256
STATE_SUFFIX = ".vir-state"
STATE_VERSION = 1
PAGE = 1000  # GET /v1/signals page size (its maximum)

PERSON_COLUMNS = ("bsn", "surname", "birth_date", "gender")
ADDRESS_COLUMNS = ("postcode", "house_number", "house_number_suffix")
PROFESSIONAL_COLUMNS = (
    "professional_name",
    "professional_email",
    "professional_phone",
    "professional_function",
)
COLUMNS = (
    "local_ref",
    *PERSON_COLUMNS,
    *(f"parent{i}_{c}" for i in range(1, MAX_PARENTS + 1) for c in PERSON_COLUMNS),
    *ADDRESS_COLUMNS,
    "remove_on",
    "archive_until",
    *PROFESSIONAL_COLUMNS,
)


class BulkError(ClientError):
    """The file cannot be used at all (no header, unknown columns, not UTF-8)."""


class Stopped(ClientError):
    """The run stopped before the end of the file; running it again resumes it."""


@dataclass(frozen=True)
class RowError:
    """A row the client refuses before sending anything: its number and column only."""

    number: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"row {self.number}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class Row:
    """A row ready to pseudonymise: its canonical identities (never printed) and the rest
    of its signal."""

    number: int
    local_ref: str
    identities: tuple[str, ...]  # the young person, the parents, then the address
    parents: int
    has_address: bool
    fields: dict[str, Any]  # local_ref, remove_on, archive_until, professional
    digest: str  # of everything but the identities (the state file's check)

    def content(self) -> bytes:
        """Everything the row says, its identities included: only ever hashed with a key
        of the client's own (``sync_memory``), never written or sent."""
        whole = [list(self.identities), self.parents, self.has_address, self.fields]
        return json.dumps(whole, sort_keys=True).encode()

    def signal(self, epoch: int, pseudonyms: list[str]) -> dict[str, Any]:
        person, *rest = pseudonyms
        body = {**self.fields, "epoch": epoch, "person": person}
        if self.parents:
            body["parents"] = rest[: self.parents]
        if self.has_address:
            body["address"] = rest[self.parents]
        return body


@dataclass(frozen=True)
class Skipped:
    """A row not sent, accounted for in its place among the rows that are: invalid
    (``error``), done in an earlier run, or (``tag``) unchanged since the last sync."""

    number: int
    local_ref: str = ""
    error: RowError | None = None
    tag: str | None = None


Ready = tuple[Row, dict[str, Any]]  # a row and its signal, to send


@dataclass
class Summary:
    registered: int = 0
    unchanged: int = 0
    updated: int = 0
    conflicts: int = 0
    invalid: int = 0
    done_earlier: int = 0
    withdrawn: int = 0
    not_done: int = 0  # rows, and (sync) withdrawals, left for the next run
    withdrawals_left: int = 0  # of not_done
    sync: bool = False
    rows: int | None = None  # the file's data rows, once counted
    state: Path | None = None
    state_kept: bool = False

    def lines(self) -> list[str]:
        shown = [
            ("registered", self.registered),
            ("unchanged", self.unchanged),
            *([("updated", self.updated)] if self.sync else []),
            ("conflicts", self.conflicts),
            ("invalid rows", self.invalid),
            ("done in an earlier run", self.done_earlier),
            *([("withdrawn", self.withdrawn)] if self.sync else []),
            ("not done", self.not_done),
        ]
        return [f"{name}: {count}" for name, count in shown]


@dataclass(frozen=True)
class Options:
    state: Path | None = None  # default: FILE + STATE_SUFFIX
    restart: bool = False  # ignore an existing state file
    limit: int | None = None  # send at most this many rows, then stop (resumable)
    delimiter: str | None = None  # default: from the header
    progress: bool = True
    # sync only
    reason: WithdrawalReason = WithdrawalReason.RISK_ENDED
    max_withdraw_fraction: float = 0.5
    force: bool = False
    # What a sync remembers between runs (``sync_memory``): rows the index holds as the
    # file has them are not pseudonymised or sent again.
    remember: bool = False
    memory: Path | None = None  # default: FILE + sync_memory.SUFFIX
    forget: bool = False  # check every row at the index this time (--full)


# --- The file -----------------------------------------------------------------------


def _delimiter(path: Path, given: str | None) -> str:
    if given:
        return given
    try:
        with _open(path) as handle:
            header = handle.readline(MAX_LINE_CHARS)
    except UnicodeDecodeError:
        raise BulkError("the file is not UTF-8 text") from None
    return ";" if header.count(";") > header.count(",") else ","


# A row of the file is a few hundred characters: a line far longer (a file without line
# ends, /dev/zero) is refused rather than read whole into memory.
MAX_LINE_CHARS = 1 << 20


def _lines(handle: TextIO) -> Iterator[str]:
    """The lines of ``handle`` for csv.reader, each at most ``MAX_LINE_CHARS`` long."""
    while line := handle.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            raise BulkError(f"the file has a line longer than {MAX_LINE_CHARS} characters")
        yield line


def _open(path: Path) -> TextIO:
    # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column.
    return path.open(encoding="utf-8-sig", newline="")


def _header(fieldnames: list[str] | None) -> list[str]:
    if not fieldnames:
        raise BulkError("the file is empty: the first row names the columns (docs/import.md)")
    names = [name.strip() for name in fieldnames]
    unknown = [number for number, name in enumerate(names, start=1) if name not in COLUMNS]
    if unknown:
        # By position, never by text: a file without its header row has data there (a
        # BSN, a name). Only vir's own column names are quoted, where one is meant.
        meant = {
            number: column
            for number in unknown
            if (column := _column_meant(names[number - 1])) is not None
        }
        said = ", ".join(str(number) for number in unknown[:10]) + (
            ", ..." if len(unknown) > 10 else ""
        )
        hints = "".join(f"; column {n} looks like {c!r}" for n, c in list(meant.items())[:5])
        raise BulkError(
            f"the first row names no column vir knows in position(s) {said} (what it holds "
            f"is not shown: without a header row it is data){hints}; the first row names "
            "the columns, listed in docs/import.md"
        )
    if len(set(names)) != len(names):
        raise BulkError("a column is named twice in the header")
    missing = [c for c in ("local_ref", "professional_name") if c not in names]
    if "bsn" not in names and not {"surname", "birth_date", "gender"} <= set(names):
        missing.append("bsn (or surname, birth_date and gender)")
    if missing:
        raise BulkError("missing column(s): " + ", ".join(missing))
    return names


def _column_meant(name: str) -> str | None:
    """The column ``name`` is written for, differing only in case, spaces or hyphens
    (``BSN``, ``Local Ref``); None otherwise."""
    folded = "_".join(name.casefold().replace("-", " ").split())
    return folded if folded in COLUMNS else None


def check_header(path: Path, delimiter: str | None = None) -> None:
    """Raise BulkError when the file cannot be used (before connecting to anything)."""
    delimiter = _delimiter(path, delimiter)
    try:
        with _open(path) as handle:
            _header(next(csv.reader(_lines(handle), delimiter=delimiter, strict=True), None))
    except UnicodeDecodeError:
        raise BulkError("the file is not UTF-8 text") from None
    except csv.Error as error:
        raise BulkError(f"the file is not valid CSV: {error}") from None


def records(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """Each data row of the file as (row number, its non-empty cells by column), or the
    RowError of a row that does not fit the header. The header is row 1."""
    try:
        with _open(path) as handle:
            reader = csv.reader(_lines(handle), delimiter=delimiter, strict=True)
            names = _header(next(reader, None))
            for number, cells in enumerate(reader, start=2):
                if not any(cell.strip() for cell in cells):
                    continue  # an empty line
                if len(cells) != len(names):
                    yield (
                        number,
                        RowError(
                            number, "-", f"{len(cells)} fields, the header names {len(names)}"
                        ),
                    )
                    continue
                yield number, {n: c.strip() for n, c in zip(names, cells, strict=True) if c.strip()}
    except UnicodeDecodeError:
        raise BulkError("the file is not UTF-8 text") from None
    except csv.Error as error:
        # csv's messages name the problem (an unclosed quote), never a cell's value.
        raise BulkError(f"the file is not valid CSV: {error}") from None


def _identity(cells: dict[str, str], prefix: str) -> str | None:
    """The canonical input of a person's columns (``prefix``: "" or "parent2_"), or None
    when they are all empty. InputError names the column."""
    try:
        if cells.get(prefix + "bsn"):
            return nl_bsn(cells[prefix + "bsn"])
        parts = [cells.get(prefix + c, "") for c in ("surname", "birth_date", "gender")]
        if not any(parts):
            return None
        for column, part in zip(("surname", "birth_date", "gender"), parts, strict=True):
            if not part:
                raise InputError(column, "give the BSN, or surname, birth_date and gender")
        return nl_person(*parts)
    except InputError as error:
        raise InputError(prefix + error.field, error.detail) from None


def _address(cells: dict[str, str]) -> str | None:
    if not any(cells.get(c) for c in ADDRESS_COLUMNS):
        return None
    for column in ("postcode", "house_number"):
        if not cells.get(column):
            raise InputError(column, "an address needs postcode and house_number")
    try:
        return nl_address(
            cells["postcode"], cells["house_number"], cells.get("house_number_suffix", "")
        )
    except InputError as error:
        column = "house_number_suffix" if error.field == "suffix" else error.field
        raise InputError(column, error.detail) from None


def _date(cells: dict[str, str], column: str) -> str | None:
    text = cells.get(column)
    if text is None:
        return None
    try:
        parse_iso_date(text)
    except ValueError:
        raise InputError(column, "not a YYYY-MM-DD date") from None
    return text


def _in_scope(cells: dict[str, str], fields: dict[str, Any], today: dt.date) -> None:
    """With the young person's ``birth_date`` (a BSN row may give it too): refuse one who
    is 23 or older, and state the 23rd birthday (``archive_until``) when it comes before
    the archive term ends, as ``vir.client.lifecycle.removal_dates`` says; the index then
    removes the signal on that day at the latest, and its archived copy. The date of
    birth itself is never sent."""
    born = _date(cells, "birth_date")
    if born is None:
        return
    try:
        dates = removal_dates(parse_iso_date(born), today)
    except OutOfScope:
        raise InputError(
            "birth_date", "the young person is 23 or older, or not born yet: outside the index"
        ) from None
    derived = None if dates.archive_until is None else dates.archive_until.isoformat()
    given = fields.get("archive_until")
    if given is not None and given != derived:
        raise InputError("archive_until", "does not agree with birth_date (leave it out)")
    if derived is not None:
        fields["archive_until"] = derived


def parse_row(number: int, cells: dict[str, str], today: dt.date | None = None) -> Row:
    """The row's signal and identities; InputError names the column, never the value.
    ``today`` (UTC; the index's calendar) decides whether the young person is in scope."""
    local_ref = cells.get("local_ref", "")
    if not is_local_ref(local_ref):
        raise InputError("local_ref", "1..64 of A-Z a-z 0-9 . _ : -")
    person = _identity(cells, "")
    if person is None:
        raise InputError("bsn", "give the BSN, or surname, birth_date and gender")
    parents = []
    for i in range(1, MAX_PARENTS + 1):
        parent = _identity(cells, f"parent{i}_")
        if parent is not None:
            parents.append(parent)
    address = _address(cells)
    keys = ("name", "email", "phone", "function")
    professional = {
        key: cells[column]
        for key, column in zip(keys, PROFESSIONAL_COLUMNS, strict=True)
        if column in cells
    }
    if "name" not in professional:
        raise InputError("professional_name", "the professional's name is required")
    if "email" not in professional and "phone" not in professional:
        raise InputError("professional_email", "give an e-mail address or a phone number")
    try:
        check_professional(professional)
    except InputError as error:
        raise InputError(error.field.replace(".", "_"), error.detail) from None
    fields: dict[str, Any] = {"local_ref": local_ref}
    for column in ("remove_on", "archive_until"):
        value = _date(cells, column)
        if value is not None:
            fields[column] = value
    _in_scope(cells, fields, today or dt.datetime.now(dt.UTC).date())
    fields["professional"] = professional
    digest_of = {**fields, "parents": len(parents), "address": address is not None}
    digest = hashlib.sha256(json.dumps(digest_of, sort_keys=True).encode()).hexdigest()[:32]
    identities = (person, *parents, *([address] if address is not None else []))
    return Row(number, local_ref, identities, len(parents), address is not None, fields, digest)


def rows(path: Path, delimiter: str) -> Iterator[Row | RowError]:
    for number, found in records(path, delimiter):
        if isinstance(found, RowError):
            yield found
            continue
        try:
            yield parse_row(number, found)
        except InputError as error:
            yield RowError(number, error.field, error.detail)


# --- The state file ----------------------------------------------------------------


class State:
    """Which rows the index accepted in an earlier, unfinished run (module docstring)."""

    def __init__(self, path: Path, csv_path: Path, done: dict[str, str]) -> None:
        self.path = path
        self.done = done  # local_ref -> digest of the row accepted under it
        self._csv = csv_path
        self._handle: TextIO | None = None

    @classmethod
    def open(cls, path: Path, csv_path: Path, restart: bool) -> State:
        done: dict[str, str] = {}
        if path.exists() and not restart:
            done = _read_state(path, _file_mark(csv_path))
        return cls(path, csv_path, done)

    def accepted(self, row: Row) -> bool:
        return self.done.get(row.local_ref) == row.digest

    def add(self, accepted: list[Row]) -> None:
        if not accepted:
            return
        if self._handle is None:
            fresh = not self.done
            descriptor = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if fresh else os.O_APPEND),
                0o600,
            )
            self._handle = os.fdopen(descriptor, "w", encoding="utf-8")
            if fresh:
                header = {"vir_client_state": STATE_VERSION, "file": _file_mark(self._csv)}
                self._handle.write(json.dumps(header) + "\n")
        for row in accepted:
            entry = {"row": row.number, "local_ref": row.local_ref, "digest": row.digest}
            # Not added to ``done``: that holds the earlier runs' rows, which this run
            # skips; a dictionary of every row sent would grow with the file.
            self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _file_mark(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_state(path: Path, mark: dict[str, int]) -> dict[str, str]:
    """The accepted rows of the state file at ``path``; none when it was written for
    another version of the file. A line that does not parse (the last one, cut short
    by a crash) is left out: its rows are sent again, and answered 200."""
    with path.open(encoding="utf-8") as handle:
        lines = iter(handle)
        try:
            header = strict_json.loads(next(lines, ""))
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("vir_client_state") != STATE_VERSION:
            raise BulkError(f"{path} is not a vir-client state file: delete it or give --restart")
        if header.get("file") != mark:
            return {}
        done: dict[str, str] = {}
        for line in lines:
            try:
                entry = strict_json.loads(line)
                done[str(entry["local_ref"])] = str(entry["digest"])
            except (ValueError, KeyError, TypeError):
                continue
        return done


# --- Progress -----------------------------------------------------------------------


class Progress:
    """A progress bar on standard error (``stream``): on a terminal one line, rewritten;
    to a file a line at most every 5 seconds, and the last one. ``bar`` False: only the
    notes (refused rows) are written."""

    def __init__(
        self, label: str, total: int, stream: TextIO | None, bar: bool = True, width: int = 30
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream
        self._bar = bar and stream is not None
        self._width = width
        self._terminal = self._bar and stream is not None and stream.isatty()
        self._last = 0.0
        self._shown = False

    def advance(self, count: int = 1) -> None:
        self.done += count
        self._show(final=self.done >= self.total)

    def note(self, text: str) -> None:
        """A line of its own (a refused row), above the bar."""
        if self._stream is None:
            return
        if self._terminal and self._shown:
            self._stream.write("\r\x1b[K")
        self._stream.write(f"vir-client: {text}\n")
        if self._terminal and self._shown:
            self._show(final=False, force=True)

    def end(self) -> None:
        if self._stream is not None and self._bar and self._shown:
            if self._terminal:
                self._stream.write("\n")
            elif self._last and self.done < self.total:
                self._stream.write(f"{self._line()}\n")
            self._stream.flush()

    def _line(self) -> str:
        total = max(self.total, self.done)
        filled = self._width * self.done // total if total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        return f"vir-client: {self.label} [{bar}] {self.done}/{total}"

    def _show(self, final: bool, force: bool = False) -> None:
        if self._stream is None or not self._bar:
            return
        if self._terminal:
            self._stream.write(f"\r{self._line()}")
            self._stream.flush()
            self._shown = True
            return
        now = time.monotonic()
        if final or force or now - self._last >= 5.0:
            self._last = now
            self._stream.write(f"{self._line()}\n")
            self._stream.flush()
            self._shown = True


# --- Sending ------------------------------------------------------------------------


@dataclass
class _Waits:
    """How long the run may wait for the rate limit: the client's RetryPolicy, with its
    retry count per stall (it starts again once something got through)."""

    max_retries: int
    max_wait: float
    sleep: Callable[[float], None]
    waited: float = 0.0
    stalled: int = 0

    def wait(self, seconds: float, progressed: bool) -> bool:
        if progressed:
            self.stalled = 0
        if self.stalled >= self.max_retries or self.waited + seconds > self.max_wait:
            return False
        self.sleep(seconds)
        self.waited += seconds
        self.stalled += 1
        return True


class _Sender:
    """Runs tasks in the order given on a thread of its own: the index registers one
    chunk while the key holder and this process pseudonymise the next.

    The first task that fails ends the sending: the tasks after it are skipped and its
    error is raised to the caller (by ``put`` or ``close``). ``cancel`` skips what is
    still queued; a request already sent is answered and accounted for first, so the
    state file stays true.
    """

    def __init__(self) -> None:
        # One batch queued while one is sent (and the caller holds the next until
        # there is room): the pseudonyms of at most three batches are in memory.
        self._tasks: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._loop, name="vir-client-sender", daemon=True)
        self._thread.start()

    def put(self, task: Callable[[], None]) -> None:
        self._raise()
        self._tasks.put(task)

    def close(self) -> None:
        """Wait for every task; raise the first failure."""
        self._tasks.put(None)
        self._thread.join()
        self._raise()

    def cancel(self) -> None:
        self._cancelled = True
        self._tasks.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        while (task := self._tasks.get()) is not None:
            if self._error is not None or self._cancelled:
                continue
            try:
                task()
            except BaseException as error:  # raised in the caller's thread
                self._error = error


@dataclass
class _Run:
    client: VirClient
    summary: Summary
    state: State
    progress: Progress
    waits: _Waits
    # sync: the organisation's active local_refs before the run (a conflict on one of
    # them may be a change of the professional's contact details: updated in place).
    active: frozenset[str] = frozenset()
    update: bool = False
    memory: SyncMemory | None = None  # sync: what it remembers between runs
    # After the rate limit refused a request: how many items the next request carries
    # (None: all). A wait of ``retry_after`` buys about one registration, so the next
    # request carries one item, and each request answered in full doubles it: no
    # request resends the whole rest only to have it refused item by item again.
    allowance: int | None = None
    got_through: bool = False  # an item was answered since the last wait
    # In file order: rows to pseudonymise and send, and rows skipped among them.
    pending: list[Row | Skipped] = field(default_factory=list)
    making: deque[tuple[list[Row | Skipped], Future[Pseudonymised] | None]] = field(
        default_factory=deque
    )
    ready: list[Ready | Skipped] = field(default_factory=list)
    # The sender's: skipped rows handed over, accounted for before the next row after them.
    marks: deque[Skipped] = field(default_factory=deque)
    makers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(IN_FLIGHT, "vir-client-pseudonymise")
    )
    # Everything that counts rows or writes to the terminal or the state file runs on
    # the sender's thread, in row order.
    sender: _Sender = field(default_factory=_Sender)

    def add(self, row: Row) -> None:
        identities = sum(len(r.identities) for r in self.pending if isinstance(r, Row))
        if identities + len(row.identities) > BATCH:
            self._pseudonymise()
        self.pending.append(row)

    def skip(self, row: Row | RowError) -> None:
        """A row not sent: invalid, or accepted in an earlier run."""
        if isinstance(row, RowError):
            self._mark(Skipped(row.number, error=row))
        else:
            self._mark(Skipped(row.number, row.local_ref))

    def unchanged(self, row: Row) -> None:
        """Sync: a row the index holds as it is (``sync_memory``): counted, not sent."""
        assert self.memory is not None
        self._mark(Skipped(row.number, row.local_ref, tag=self.memory.known[row.local_ref]))

    def _mark(self, skipped: Skipped) -> None:
        """Accounted for in file order: after the rows before it, which may still be on
        their way to the key holder or the index."""
        self.pending.append(skipped)
        if len(self.pending) >= MARKS_AT:
            self._pseudonymise()

    def _account(self, skipped: Skipped) -> None:
        self.progress.advance()
        if skipped.error is not None:
            self.summary.invalid += 1
            self.progress.note(str(skipped.error))
        elif skipped.tag is not None:
            assert self.memory is not None
            self.summary.unchanged += 1
            self.memory.keep(skipped.local_ref, skipped.tag)
        else:
            self.summary.done_earlier += 1
            if self.memory is not None:
                self.memory.keep_known(skipped.local_ref)

    def _marks_before(self, number: int | None) -> None:
        """The skipped rows handed over before row ``number`` (None: all of them)."""
        while self.marks and (number is None or self.marks[0].number < number):
            self._account(self.marks.popleft())

    def _pseudonymise(self) -> None:
        """Start pseudonymising the gathered chunk; collect the oldest chunks while more
        than IN_FLIGHT are under way."""
        chunk, self.pending = self.pending, []
        if chunk:
            identities = [x for row in chunk if isinstance(row, Row) for x in row.identities]
            making = (
                self.makers.submit(self.client.pseudonymise, identities) if identities else None
            )
            self.making.append((chunk, making))
        while len(self.making) > IN_FLIGHT:
            self._collect()

    def _collect(self) -> None:
        """The oldest chunk's signals, in row order; handed to the sender once SEND_AT
        signals are ready."""
        chunk, making = self.making.popleft()
        made = None
        if making is not None:
            with _busy("the key holder"):
                made = making.result()
        at = 0
        for row in chunk:
            if isinstance(row, Skipped):
                self.ready.append(row)
                continue
            assert made is not None
            count = len(row.identities)
            self.ready.append((row, row.signal(made.epoch, made.pseudonyms[at : at + count])))
            at += count
        sendable = sum(1 for item in self.ready if not isinstance(item, Skipped))
        if sendable >= SEND_AT or len(self.ready) >= MARKS_AT:
            self._hand_off()

    def _hand_off(self) -> None:
        items, self.ready = self.ready, []
        if items:
            self.sender.put(lambda: self._send_all(items))

    def _drain(self) -> None:
        """Every chunk under way collected, and what is ready handed to the sender."""
        while self.making:
            self._collect()
        self._hand_off()

    def flush(self) -> None:
        """Everything gathered so far pseudonymised and handed to the sender."""
        self._pseudonymise()
        self._drain()

    def close(self) -> None:
        """After the last ``flush``: wait until every row is sent and accounted for;
        raise the first failure."""
        self.makers.shutdown()
        self.sender.close()

    def cancel(self) -> None:
        """A failure or an interruption: nothing more is pseudonymised or sent; a request
        already sent is answered and accounted for first (``_Sender.cancel``)."""
        self.makers.shutdown(cancel_futures=True)
        self.sender.cancel()

    def _send_all(self, items: list[Ready | Skipped]) -> None:
        """Send the rows of ``items``; the skipped ones among them are accounted for in
        their place (``_send`` accounts for those before each row answered)."""
        self.marks.extend(item for item in items if isinstance(item, Skipped))
        sendable = [item for item in items if not isinstance(item, Skipped)]
        for part in _by_size(sendable):
            self._send(part)
        self._marks_before(None)

    def _send(self, items: list[tuple[Row, dict[str, Any]]]) -> None:
        while items:
            part = items if self.allowance is None else items[: self.allowance]
            with _busy("the index"):
                results = self.client.register_signals([signal for _row, signal in part])
            accepted: list[Row] = []
            retry_at: int | None = None
            refused: ClientError | None = None
            for index, ((row, signal), result) in enumerate(zip(part, results, strict=True)):
                self._marks_before(row.number)  # the skipped rows before it, in order
                status = result.get("status")
                if status in (429, 503):
                    retry_at = index
                    break
                self.got_through = True
                # The index does not accept the key holders' epoch: not the row's fault
                # (every row is made under it), so not counted; the run stops after
                # this request, to be resumed once the index accepts the epoch.
                refusal = epoch_refusal(signal["epoch"], status, result)
                if refusal is not None:
                    refused = refused or refusal
                elif self._outcome(row, signal, result):
                    accepted.append(row)
            self.state.add(accepted)
            if self.memory is not None:
                self.memory.flush()
            if refused is not None:
                raise Stopped(str(refused))
            if retry_at is None:
                items = items[len(part) :]
                if self.allowance is not None:
                    self.allowance = None if self.allowance >= MAX_ALLOWANCE else self.allowance * 2
                continue
            items = items[retry_at:]
            seconds = float(results[retry_at].get("retry_after") or 1)
            progressed, self.got_through = self.got_through, False
            if not self.waits.wait(seconds, progressed=progressed):
                raise Stopped(
                    f"the index refused more registrations for now ({results[retry_at]['status']}"
                    f", retry after {int(seconds)} s)"
                )
            self.allowance = 1

    def _outcome(self, row: Row, signal: dict[str, Any], result: dict[str, Any]) -> bool:
        """Count one row's result; whether the index holds the row now."""
        status = result.get("status")
        self.progress.advance()
        if status == 201:
            self.summary.registered += 1
            self._remember(row, result)
            return True
        if status == 200:
            self.summary.unchanged += 1
            self._remember(row, result)
            return True
        detail = str(result.get("detail", "conflict"))
        if status == 409 and self.update and row.local_ref in self.active:
            updated = self._update(row, signal)
            if isinstance(updated, dict):
                self.summary.updated += 1
                self._remember(row, updated)
                return True
            if updated is False:
                # The PATCH answered, but it may have changed nothing (the contact details
                # were already the file's): say what is so, not that they were updated.
                detail = (
                    "other columns than the contact details differ from the stored signal "
                    "(the young person, parents, address or dates; the contact details are "
                    "now the file's); a signal's person, parents and address cannot change: "
                    "withdraw it (reason correction) and register the row again"
                )
        if status == 409:
            self.summary.conflicts += 1
            self.progress.note(f"row {row.number}: 409 {detail}")
            return False
        self.summary.invalid += 1
        for problem in result.get("errors") or [{"field": "-", "message": result.get("detail")}]:
            column = _column(str(problem.get("field")))
            self.progress.note(
                f"row {row.number}, column {column}: {status} {problem.get('message')}"
            )
        return False

    def _update(self, row: Row, signal: dict[str, Any]) -> dict[str, Any] | bool | None:
        """Sync: the row's professional in place of the stored one (``PATCH``: match
        partners are told), then the registration again. Its answer: it now repeats the
        stored signal; False: the contact details were updated but something else
        differs (identities, dates: no update in place for those); None: nothing was
        updated."""
        try:
            self.client.update_signal(row.local_ref, {"professional": signal["professional"]})
        except ServiceError:
            return None
        try:
            return self.client.register_signal(signal)
        except ServiceError:
            return False

    def _remember(self, row: Row, answer: dict[str, Any]) -> None:
        """Sync: the row as the index now holds it (its answer: the signal's id and
        removal date; the contact details as sent)."""
        if self.memory is None:
            return
        stored = held({**answer, "professional": row.fields["professional"]})
        self.memory.keep(row.local_ref, self.memory.tag(row.content(), stored))


@contextlib.contextmanager
def _busy(who: str) -> Iterator[None]:
    """A whole request refused for now (429, 503) after the client's own retries: the
    run stops, to be resumed later."""
    try:
        yield
    except ServiceError as error:
        if error.status not in (429, 503):
            raise
        raise Stopped(f"{who} refused more requests for now ({error.status})") from None


def _by_size(
    items: list[tuple[Row, dict[str, Any]]],
) -> Iterator[list[tuple[Row, dict[str, Any]]]]:
    """``items`` in requests whose bodies stay under BODY_BUDGET."""
    part: list[tuple[Row, dict[str, Any]]] = []
    size = len('{"signals":[]}')
    for item in items:
        # As httpx encodes a body (UTF-8, no spaces), plus the separating comma.
        item_size = len(json.dumps(item[1], ensure_ascii=False, separators=(",", ":")).encode())
        if part and size + item_size + 1 > BODY_BUDGET:
            yield part
            part, size = [], len('{"signals":[]}')
        part.append(item)
        size += item_size + 1
    if part:
        yield part


def _column(field: str) -> str:
    """The file's column for a field the index named (``professional.name`` →
    ``professional_name``, ``parents[1]`` → ``parent2``, ``person`` → the person's)."""
    number = field.removeprefix("parents[").removesuffix("]")
    if field == f"parents[{number}]" and number.isascii() and number.isdigit():
        return f"parent{int(number) + 1}"
    return {"person": "bsn", "address": "postcode"}.get(field, field.replace(".", "_"))


# --- The commands -------------------------------------------------------------------


def _count(
    path: Path,
    delimiter: str,
    refs: dict[str, int] | None,
    repeated: dict[str, list[int]] | None = None,
) -> int:
    """The number of data rows (the progress bar's total); with ``refs``, also collects
    every valid local_ref of the file (with the number of its first row), and in
    ``repeated`` each local_ref that more than one row holds, with their numbers."""
    total = 0
    for number, found in records(path, delimiter):
        total += 1
        if refs is not None and not isinstance(found, RowError):
            ref = found.get("local_ref", "")
            if not is_local_ref(ref):
                continue
            first = refs.setdefault(ref, number)
            if first != number and repeated is not None:
                repeated.setdefault(ref, [first]).append(number)
    return total


def _repeated_ref(number: int, rows_of_ref: list[int]) -> RowError:
    others = [str(n) for n in rows_of_ref if n != number]
    where = f"row {others[0]}" if len(others) == 1 else f"rows {', '.join(others)}"
    return RowError(
        number,
        "local_ref",
        f"the same local_ref is in {where} too: nothing is done for it (neither sent "
        "nor withdrawn); keep one row per local_ref",
    )


def active_signals(client: VirClient) -> dict[str, bytes]:
    """Every active signal of the organisation, page by page: its local_ref, and what
    the index holds of it in 16 bytes (``sync_memory.held``)."""
    found: dict[str, bytes] = {}
    query: dict[str, Any] = {"status": "active", "limit": PAGE}
    while True:
        page = client.request("GET", "/v1/signals", params=query).json()
        found.update((str(item["local_ref"]), held(item)) for item in page["items"])
        if page.get("next") is None:
            return found
        query["after"] = page["next"]


def import_file(
    client: VirClient,
    path: Path,
    options: Options,
    stderr: TextIO | None = sys.stderr,
    *,
    summary: Summary | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """Register every row of ``path`` (``vir-client import``); see the module docstring.

    Raises Stopped when the run ends before the end of the file (the state is kept),
    BulkError when the file cannot be read; ``summary`` is filled in as it goes.
    ``sleep``: how the run waits for the rate limit (``client.retry`` says how long)."""
    found = summary or Summary()
    return _run(client, path, options, stderr, found, sleep, sync=False)


def sync_file(
    client: VirClient,
    path: Path,
    options: Options,
    stderr: TextIO | None = sys.stderr,
    *,
    summary: Summary | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Summary:
    """``import_file``, then withdraw (``options.reason``) every active signal whose
    local_ref is not in the file. Refuses (Stopped, before anything is sent) to withdraw
    more than ``options.max_withdraw_fraction`` of the active signals unless
    ``options.force``: a truncated file must not wipe the organisation's signals."""
    found = summary or Summary(sync=True)
    return _run(client, path, options, stderr, found, sleep, sync=True)


def _run(
    client: VirClient,
    path: Path,
    options: Options,
    stderr: TextIO | None,
    summary: Summary,
    sleep: Callable[[float], None],
    *,
    sync: bool,
) -> Summary:
    delimiter = _delimiter(path, options.delimiter)
    file_refs: dict[str, int] | None = {} if sync else None
    # sync: a local_ref in two rows with different content would be updated back and
    # forth on every run (each time a contact_changed to the match partners): refused.
    repeated: dict[str, list[int]] = {}
    total = _count(path, delimiter, file_refs, repeated)
    summary.rows = total
    active: dict[str, bytes] = {}
    withdraw: list[str] = []
    memory: SyncMemory | None = None
    if sync and options.remember:
        memory_path = options.memory or path.with_name(path.name + MEMORY_SUFFIX)
        key = client.local_key(MEMORY_PURPOSE)
        try:
            memory = SyncMemory.open(memory_path, key, forget=options.forget)
        except NotAMemory as error:
            raise BulkError(str(error)) from None
    if sync:
        assert file_refs is not None
        active = active_signals(client)
        withdraw = sorted(active.keys() - file_refs.keys())
        share = len(withdraw) / len(active) if active else 0.0
        if share > options.max_withdraw_fraction and not options.force:
            summary.not_done = total
            raise Stopped(
                f"the file would withdraw {len(withdraw)} of the organisation's "
                f"{len(active)} active signals ({share:.0%}, more than "
                f"{options.max_withdraw_fraction:.0%}): is the file complete? Nothing was "
                "sent. Give --force to withdraw them anyway"
            )
        del file_refs  # only the refs to withdraw are kept
    state_path = options.state or path.with_name(path.name + STATE_SUFFIX)
    state = State.open(state_path, path, options.restart)
    summary.state = state_path
    progress = Progress("sync" if sync else "import", total, stderr, bar=options.progress)
    retry = client.retry
    run = _Run(
        client,
        summary,
        state,
        progress,
        _Waits(retry.max_retries, retry.max_wait, sleep),
        frozenset(active),
        update=sync,
        memory=memory,
    )
    sent = 0
    finished = False
    try:
        try:
            for row in rows(path, delimiter):
                if isinstance(row, Row) and row.local_ref in repeated:
                    run.skip(_repeated_ref(row.number, repeated[row.local_ref]))
                    continue
                if isinstance(row, RowError) or state.accepted(row):
                    run.skip(row)
                    continue
                if memory is not None and memory.unchanged(
                    row.local_ref, row.content(), active.get(row.local_ref)
                ):
                    run.unchanged(row)
                    continue
                if options.limit is not None and sent >= options.limit:
                    break
                run.add(row)
                sent += 1
            else:
                finished = True
            run.flush()
            # An interruption while the last batches are sent (the file is read long
            # before they are) cancels too: the request under way is answered and
            # accounted for, and what is queued is not sent.
            run.close()
        except BaseException:
            run.cancel()
            raise
        if not finished:
            raise Stopped(f"stopped after {sent} rows (--limit)")
        if sync:
            _withdraw(client, withdraw, options.reason, summary, stderr, options.progress)
    except BaseException:
        summary.not_done = total - progress.done + summary.withdrawals_left
        # Closing flushes what is buffered, which fails again on a full disk: what the
        # state file lacks is sent again next time (and answered 200), so the summary
        # and the way to resume are still told.
        with contextlib.suppress(OSError):
            state.close()
        if memory is not None:
            with contextlib.suppress(OSError):
                memory.close()
        summary.state_kept = state.path.exists()
        progress.end()
        raise
    progress.end()
    state.remove()
    if memory is not None:
        memory.rewrite()
    return summary


def _withdraw(
    client: VirClient,
    refs: list[str],
    reason: WithdrawalReason,
    summary: Summary,
    stderr: TextIO | None,
    bar: bool,
) -> None:
    """Withdraw ``refs`` one by one, on a thread of its own: an interruption (Ctrl-C,
    SIGTERM) stops the loop after the request under way is answered and counted, so
    that ``withdrawn`` and ``not done`` add up to what the index did."""
    if not refs:
        return
    progress = Progress("withdrawing", len(refs), stderr, bar=bar)
    summary.withdrawals_left = len(refs)
    stop = threading.Event()
    failed: list[BaseException] = []

    def withdraw_all() -> None:
        try:
            for ref in refs:
                if stop.is_set():
                    return
                try:
                    client.withdraw_signal(ref, reason.value)
                except ServiceError as error:
                    if error.status != 404:  # 404: withdrawn meanwhile, gone all the same
                        raise
                else:
                    summary.withdrawn += 1
                summary.withdrawals_left -= 1
                progress.advance()
        except ServiceError as error:
            if error.status not in (429, 503):
                failed.append(error)
                return
            failed.append(
                Stopped(
                    f"the index refused more withdrawals for now ({error.status}); "
                    f"{summary.withdrawals_left} left: run sync again later"
                )
            )
        except BaseException as error:  # raised in the caller's thread
            failed.append(error)

    worker = threading.Thread(target=withdraw_all, name="vir-client-withdraw", daemon=True)
    try:
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.1)
        except BaseException:
            stop.set()
            if worker.ident is not None:
                worker.join()
            raise
        if failed:
            raise failed[0]
    finally:
        progress.end()
