"""``vir-client import`` / ``sync`` against a fake index: how the run meets the rate
limit, a local_ref repeated in the file, a conflict the contact details cannot settle,
an interrupted withdrawal and SIGTERM.
"""

from __future__ import annotations

import _thread
import io
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vir.client import bulk, cli
from vir.client.connection import Pseudonymised, RetryPolicy, ServiceError
from vir.client.demo import made_up_bsn
from vir.crypto import oprf
from vir.domain.encoding import b64url_encode


class FakeIndex:
    """The key holder and the index as the run sees them. The registration bucket holds
    ``tokens`` and gains ``rate`` a second waited (``sleep``); a repeat of a stored
    local_ref is free (200). ``active``: the organisation's active local_refs."""

    retry = RetryPolicy(max_retries=100, max_wait=10_000)

    def __init__(
        self, tokens: float = 1e9, rate: float = 0.0, active: frozenset[str] = frozenset()
    ) -> None:
        self.tokens = tokens
        self.rate = rate
        self.active = set(active)
        self.stored: dict[str, str] = {}  # local_ref -> the professional's e-mail address
        self.requests: list[list[str]] = []  # the local_refs of each batch
        self.refused = 0  # items answered 429
        self.updated: list[str] = []
        self.withdrawn: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.tokens += seconds * self.rate

    def pseudonymise(self, inputs: list[str]) -> Pseudonymised:
        return Pseudonymised(1, [b64url_encode(oprf.hash_to_group(x.encode())) for x in inputs])

    def register_signals(self, signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.requests.append([s["local_ref"] for s in signals])
        results: list[dict[str, Any]] = []
        for signal_ in signals:
            ref = signal_["local_ref"]
            if results and results[-1]["status"] == 429:
                results.append(results[-1] | {"local_ref": ref})
            elif ref in self.stored:
                same = self.stored[ref] == signal_["professional"].get("email")
                results.append({"local_ref": ref, "status": 200 if same else 409})
            elif self.tokens < 1:
                results.append({"local_ref": ref, "status": 429, "retry_after": 1})
            else:
                self.tokens -= 1
                self.stored[ref] = signal_["professional"].get("email")
                results.append({"local_ref": ref, "status": 201})
        self.refused += sum(r["status"] == 429 for r in results)
        return results

    def request(self, method: str, path: str, params: dict[str, Any]) -> Any:
        assert (method, path) == ("GET", "/v1/signals")
        items = [{"local_ref": ref} for ref in sorted(self.active)]

        class Page:
            def json(self) -> dict[str, Any]:
                return {"items": items, "next": None}

        return Page()

    def update_signal(self, local_ref: str, change: dict[str, Any]) -> None:
        self.updated.append(local_ref)

    def register_signal(self, signal_: dict[str, Any]) -> None:
        raise ServiceError(409, {"title": "Conflict", "detail": "other content"})

    def withdraw_signal(self, local_ref: str, reason: str) -> None:
        self.withdrawn.append(local_ref)
        self.active.discard(local_ref)


def _file(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    path = tmp_path / "rows.csv"
    lines = ["local_ref,bsn,professional_name,professional_email"]
    lines += [f"{ref},{made_up_bsn()},Anna de Wit,{email}" for ref, email in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_after_a_wait_for_the_rate_limit_only_what_the_wait_bought_is_sent(
    tmp_path: Path,
) -> None:
    """A wait of ``retry_after`` buys about one registration: the next request carries
    one item, then two, four, ... So the rows past the burst are refused a bounded
    number of times, not the whole rest again after every wait."""
    rows = 600
    path = _file(tmp_path, [(f"r-{i:03d}", "a@example.nl") for i in range(rows)])
    index = FakeIndex(tokens=100, rate=1.0)
    summary = bulk.import_file(index, path, bulk.Options(progress=False), None, sleep=index.sleep)
    assert (summary.registered, summary.not_done) == (rows, 0)
    assert sorted(index.stored) == [f"r-{i:03d}" for i in range(rows)]
    # 500 rows past the burst, one bought a second: after the first refusal (the rest
    # of a request of SEND_AT) each wait is followed by a request of one item, which
    # goes through, and one of two, refused. Resending the rest of the batch after every
    # wait refused over 30,000 items.
    assert index.refused <= bulk.SEND_AT + 2 * (rows - 100)


def test_a_repeated_local_ref_is_refused_in_sync_naming_both_rows(tmp_path: Path) -> None:
    """The same local_ref in two rows with other contact details would be updated back
    and forth on every sync: both rows are refused, nothing is sent for it and it is
    not withdrawn."""
    path = _file(
        tmp_path,
        [
            ("r-1", "a@example.nl"),
            ("r-2", "a@example.nl"),
            ("r-1", "b@example.nl"),
            ("r-1", "c@example.nl"),
        ],
    )
    index = FakeIndex(active={"r-1", "r-2", "r-9"})
    index.stored = {"r-1": "a@example.nl", "r-2": "a@example.nl"}
    notes = io.StringIO()
    summary = bulk.sync_file(
        index, path, bulk.Options(progress=False, force=True), notes, sleep=index.sleep
    )
    assert index.requests == [["r-2"]]
    assert index.updated == []
    assert index.withdrawn == ["r-9"]
    assert (summary.unchanged, summary.invalid, summary.updated) == (1, 3, 0)
    lines = notes.getvalue().splitlines()
    also = "vir-client: row {}, column local_ref: the same local_ref is in {} too"
    assert lines[0].startswith(also.format(2, "rows 4, 5"))
    assert lines[1].startswith(also.format(4, "rows 2, 5"))
    assert lines[2].startswith(also.format(5, "rows 2, 4"))
    assert len(lines) == 3


def test_a_conflict_the_contact_details_cannot_settle_claims_no_update(tmp_path: Path) -> None:
    """Other parents (say) with the same contact details: the PATCH changes nothing, and
    the note must not say the contact details were updated."""
    path = _file(tmp_path, [("r-1", "a@example.nl")])
    index = FakeIndex(active={"r-1"})
    index.stored = {"r-1": "other@example.nl"}  # answered 409
    notes = io.StringIO()
    summary = bulk.sync_file(index, path, bulk.Options(progress=False), notes)
    assert (summary.conflicts, summary.updated) == (1, 0)
    note = notes.getvalue()
    assert note.startswith("vir-client: row 2: 409 other columns than the contact details differ")
    assert "updated" not in note
    assert "person, parents and address cannot change" in note


class InterruptedIndex(FakeIndex):
    """Ctrl-C while the index withdraws the ``at``-th signal: it is withdrawn all the
    same (the request was under way)."""

    at = 3

    def withdraw_signal(self, local_ref: str, reason: str) -> None:
        super().withdraw_signal(local_ref, reason)
        if len(self.withdrawn) == self.at:
            _thread.interrupt_main()
            time.sleep(0.3)  # the answer is still on its way


def test_an_interrupted_withdrawal_counts_what_the_index_withdrew(tmp_path: Path) -> None:
    path = _file(tmp_path, [("r-1", "a@example.nl")])
    gone = {f"old-{i}" for i in range(10)}
    index = InterruptedIndex(active={"r-1"} | gone)
    summary = bulk.Summary(sync=True)
    with pytest.raises(KeyboardInterrupt):
        bulk.sync_file(index, path, bulk.Options(progress=False, force=True), None, summary=summary)
    assert len(index.withdrawn) == index.at  # none after the interruption
    assert (summary.withdrawn, summary.not_done) == (index.at, len(gone) - index.at)
    assert [t for t in threading.enumerate() if t.name.startswith("vir-client-")] == []


def test_sigterm_is_handled_as_ctrl_c_with_exit_status_143(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, [("r-1", "a@example.nl")])

    def terminated_run(
        _client: object, _path: Path, _options: object, _stderr: object, *, summary: bulk.Summary
    ) -> bulk.Summary:
        summary.rows, summary.registered, summary.not_done = 1, 0, 1
        summary.state, summary.state_kept = path.with_name("rows.csv.vir-state"), True
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises meanwhile
        raise AssertionError("SIGTERM did not stop the run")

    class Nothing:
        def __enter__(self) -> object:
            return object()

        def __exit__(self, *_exc: object) -> None:
            return None

    monkeypatch.setattr(cli, "_connect", lambda _args: Nothing())
    monkeypatch.setattr(bulk, "import_file", terminated_run)

    def unhandled(_signum: int, _frame: object) -> None:
        raise AssertionError("vir-client left SIGTERM to its default: killed, no summary")

    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert cli.main(["import", str(path)]) == 143
        assert signal.getsignal(signal.SIGTERM) is unhandled  # given back afterwards
    finally:
        signal.signal(signal.SIGTERM, before)
    out, err = capsys.readouterr()
    assert "registered: 0" in out and "not done: 1" in out
    assert "vir-client: terminated" in err and "progress kept in" in err
