"""``vir-client import``'s two threads: chunks pseudonymised on the caller's thread are
sent, in order, by a sender thread. A failure on either side ends the run with that
failure, no thread left behind, and the state file holding exactly rows the index
accepted (so that the next run resends nothing it holds and skips nothing it lacks).
"""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vir.client import bulk
from vir.client.connection import Pseudonymised, RetryPolicy, ServiceError
from vir.client.demo import made_up_bsn
from vir.crypto import oprf
from vir.domain.encoding import b64url_encode

ROWS = 300  # one identity a row: five chunks of 64 and one of 44
SENT = bulk.SEND_AT  # rows a request to the index carries (the last: the rest)
CHUNKS = SENT // 64  # chunks pseudonymised for one request


class FakeClient:
    """The index and key holder as the import sees them; ``fail_pseudonymise`` /
    ``fail_register``: the call (1, 2, ...) that fails."""

    retry = RetryPolicy(max_retries=0, max_wait=0)

    def __init__(self, fail_pseudonymise: int = 0, fail_register: int = 0) -> None:
        self.fail_pseudonymise = fail_pseudonymise
        self.fail_register = fail_register
        self.pseudonymised = 0
        self.sent = 0
        self.stored: list[str] = []

    def pseudonymise(self, inputs: list[str]) -> Pseudonymised:
        self.pseudonymised += 1
        if self.pseudonymised == self.fail_pseudonymise:
            raise ServiceError(500, {"title": "key holder down"})
        return Pseudonymised(1, [b64url_encode(oprf.hash_to_group(x.encode())) for x in inputs])

    def register_signals(self, signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.sent += 1
        time.sleep(0.02)  # the index at work: the next chunk is pseudonymised meanwhile
        if self.sent == self.fail_register:
            raise ServiceError(500, {"title": "index down"})
        self.stored += [s["local_ref"] for s in signals]
        return [{"status": 201, "local_ref": s["local_ref"]} for s in signals]


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    lines = ["local_ref,bsn,professional_name,professional_email"]
    lines += [f"r-{i:03d},{made_up_bsn()},Anna de Wit,a@example.nl" for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _state_refs(path: Path) -> list[str]:
    state = path.with_name(path.name + bulk.STATE_SUFFIX)
    lines = state.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split('"local_ref": "')[1].split('"')[0] for line in lines]


def _senders() -> list[threading.Thread]:
    """The import's own threads still alive: the sender and the pseudonymisers."""
    return [t for t in threading.enumerate() if t.name.startswith("vir-client-")]


def test_every_row_is_sent_once_in_order(tmp_path: Path) -> None:
    client = FakeClient()
    summary = bulk.import_file(client, _file(tmp_path), bulk.Options(progress=False), None)
    assert client.stored == [f"r-{i:03d}" for i in range(ROWS)]
    assert (summary.registered, summary.not_done) == (ROWS, 0)
    assert _senders() == []


def _run_until_it_fails(tmp_path: Path, client: FakeClient) -> bulk.Summary:
    """Import the file through ``client``, which fails with a 500: the error is raised,
    no sender thread is left, and what was sent before the failure is in the state, in
    order, and nothing else."""
    path = _file(tmp_path)
    summary = bulk.Summary()
    with pytest.raises(ServiceError, match="500"):
        bulk.import_file(client, path, bulk.Options(progress=False), None, summary=summary)
    assert _senders() == []
    if client.stored:
        assert _state_refs(path) == client.stored
    return summary


@pytest.mark.parametrize("chunk", [1, 3, 5])
def test_a_failing_key_holder_ends_the_run_with_the_state_true(tmp_path: Path, chunk: int) -> None:
    client = FakeClient(fail_pseudonymise=chunk)
    summary = _run_until_it_fails(tmp_path, client)
    assert client.stored == [f"r-{i:03d}" for i in range(len(client.stored))]
    assert summary.registered == len(client.stored) <= (chunk - 1) * 64
    assert summary.not_done == ROWS - len(client.stored)


def test_rows_are_sent_send_at_at_a_time(tmp_path: Path) -> None:
    client = FakeClient()
    bulk.import_file(client, _file(tmp_path), bulk.Options(progress=False), None)
    assert SENT % 64 == 0 and client.sent == -(-ROWS // SENT)


@pytest.mark.parametrize("call", [1, 2, 3])
def test_a_failing_index_ends_the_run_with_the_state_true(tmp_path: Path, call: int) -> None:
    client = FakeClient(fail_register=call)
    summary = _run_until_it_fails(tmp_path, client)
    assert client.stored == [f"r-{i:03d}" for i in range((call - 1) * SENT)]
    assert client.sent == call  # nothing is sent after the failure
    # and the reading stops soon after it: one batch queued, one being gathered, and
    # IN_FLIGHT chunks under way
    assert client.pseudonymised <= (call + 2) * CHUNKS + bulk.IN_FLIGHT
    done = (call - 1) * SENT
    assert (summary.registered, summary.not_done) == (done, ROWS - done)


def test_rows_refused_by_the_client_are_accounted_for_in_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row is accounted for (counted, and its refusal printed) in file order: a
    row the client refuses itself after the rows before it, also those still being
    pseudonymised or gathered for the next request, and before the rows after it."""
    path = tmp_path / "rows.csv"
    lines = ["local_ref,bsn,professional_name,professional_email"]
    bad = {i for i in range(ROWS) if i % 70 == 69}  # inside chunks, and between requests
    lines += [
        f"r-{i:03d},{'123456789' if i in bad else made_up_bsn()},Anna de Wit,a@example.nl"
        for i in range(ROWS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    order: list[int] = []  # the file's row number of each row accounted for
    outcome, account = bulk._Run._outcome, bulk._Run._account

    def counted_outcome(run: bulk._Run, row: bulk.Row, *rest: Any) -> bool:
        found = outcome(run, row, *rest)
        order.append(row.number)
        return found

    def counted_account(run: bulk._Run, skipped: bulk.Skipped) -> None:
        order.append(skipped.number)
        account(run, skipped)

    monkeypatch.setattr(bulk._Run, "_outcome", counted_outcome)
    monkeypatch.setattr(bulk._Run, "_account", counted_account)
    client = FakeClient()
    notes = io.StringIO()
    summary = bulk.import_file(client, path, bulk.Options(progress=False), notes)
    assert client.stored == [f"r-{i:03d}" for i in range(ROWS) if i not in bad]
    assert (summary.registered, summary.invalid) == (ROWS - len(bad), len(bad))
    assert order == [i + 2 for i in range(ROWS)]  # the header is row 1
    printed = [int(n) for n in re.findall(r"vir-client: row (\d+)", notes.getvalue())]
    assert printed == sorted(i + 2 for i in bad)
    assert notes.getvalue().count("vir-client: row ") == len(bad)


class NewEpochClient(FakeClient):
    """Key holders that activate epoch 2 before the index took its rekey token, after
    the rows of the first request (SEND_AT of them): the index refuses each signal made
    under epoch 2 as it answers (422 naming ``epoch``), and registers the others. By
    the rows, not by when the first request is answered: chunks are pseudonymised on
    threads while requests are sent, so that would depend on timing."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        with path.open(encoding="utf-8") as rows:
            self._early = {line.split(",")[1] for line in list(rows)[1 : SENT + 1]}

    def pseudonymise(self, inputs: list[str]) -> Pseudonymised:
        made = super().pseudonymise(inputs)
        early = any(bsn in text for text in inputs for bsn in self._early)
        return Pseudonymised(1 if early else 2, made.pseudonyms)

    def register_signals(self, signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.sent += 1
        message = "pseudonyms must be made under an accepted key epoch (1)"
        refused = {
            "status": 422,
            "title": "Invalid input",
            "detail": f"epoch: {message}",
            "errors": [{"field": "epoch", "message": message}],
        }
        results = []
        for signal in signals:
            if signal["epoch"] == 1:
                self.stored.append(signal["local_ref"])
                results.append({"status": 201, "local_ref": signal["local_ref"]})
            else:
                results.append(refused | {"local_ref": signal["local_ref"]})
        return results


def test_an_epoch_the_index_does_not_accept_yet_stops_the_run_in_one_line(
    tmp_path: Path,
) -> None:
    """Not an invalid row: every row is made under the key holders' epoch. The run stops
    (resumable) with one line naming the missing step of the rotation; the rows the
    index registered are in the state, the refused ones left for the next run."""
    path = _file(tmp_path)
    client = NewEpochClient(path)
    notes = io.StringIO()
    summary = bulk.Summary()
    with pytest.raises(bulk.Stopped) as stopped:
        bulk.import_file(client, path, bulk.Options(progress=False), notes, summary=summary)
    assert str(stopped.value) == (
        "the index does not accept the key holders' epoch 2 yet: the index must run vir "
        "keys rekey with the rotation's token before the key holders activate it "
        '(docs/operations.md, "Rotating the OPRF key")'
    )
    registered = len(client.stored)
    assert SENT <= registered < ROWS and client.sent >= 2
    assert (summary.registered, summary.invalid) == (registered, 0)
    assert summary.not_done == ROWS - registered
    assert notes.getvalue() == ""  # no row blamed
    assert _state_refs(path) == client.stored
    assert _senders() == []


def test_a_full_disk_still_tells_what_was_not_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state file cannot be written (ENOSPC) after the first request: the run ends
    with that error, and its summary still counts the rows not done and keeps the
    state to resume from; closing the state file, which fails again, did not hide it
    (it reported "not done: 0" and no way to resume)."""

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            self.flush()

    add = bulk.State.add

    def add_until_full(state: bulk.State, accepted: list[bulk.Row]) -> None:
        if state._handle is None:
            add(state, accepted)  # the first request's rows: the file is made
            state.close()
            state._handle = FullDisk()
            return
        add(state, accepted)

    monkeypatch.setattr(bulk.State, "add", add_until_full)
    path = _file(tmp_path)
    summary = bulk.Summary()
    with pytest.raises(OSError, match="No space left"):
        bulk.import_file(FakeClient(), path, bulk.Options(progress=False), None, summary=summary)
    assert summary.registered == 2 * SENT  # the second request went through, unrecorded
    assert summary.not_done == ROWS - 2 * SENT
    assert summary.state_kept
    assert _state_refs(path) == [f"r-{i:03d}" for i in range(SENT)]
    assert _senders() == []
