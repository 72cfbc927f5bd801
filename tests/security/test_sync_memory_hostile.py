"""What ``vir-client sync`` remembers between runs (``vir.client.sync_memory``), attacked:
a memory made under another key, a forged or altered tag, a signal withdrawn or
replaced at the index since, another file where the memory should be, garbage and an
endless line in it. Whatever the memory says, a row is left out only when the index
holds it as the file has it; otherwise it goes through the key holder and the index as
if there were no memory. The memory holds no identity and no unkeyed hash of one."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from vir.client import bulk
from vir.client.canonical import nl_bsn
from vir.client.connection import Pseudonymised, RetryPolicy
from vir.client.demo import made_up_bsn
from vir.client.sync_memory import SUFFIX, SyncMemory
from vir.crypto import oprf
from vir.domain.encoding import b64url_encode
from vir.domain.signals import Professional

REMOVE_ON = "2028-12-01"


class Index:
    """The key holder and the index as a sync sees them: what it stores, what it lists,
    and which local_refs were pseudonymised and sent."""

    def __init__(self, key: bytes = b"k" * 32) -> None:
        self.key = key
        self.stored: dict[str, dict[str, Any]] = {}  # local_ref -> signal as listed
        self.pseudonymised = 0  # identities
        self.sent: list[str] = []
        self.requests = 0

    def local_key(self, purpose: str) -> bytes:
        return hashlib.sha256(self.key + purpose.encode()).digest()

    retry = RetryPolicy(max_retries=0, max_wait=0.0)  # it never refuses here

    def pseudonymise(self, inputs: list[str]) -> Pseudonymised:
        self.pseudonymised += len(inputs)
        return Pseudonymised(1, [b64url_encode(oprf.hash_to_group(x.encode())) for x in inputs])

    def register_signals(self, signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.requests += 1
        results = []
        for signal in signals:
            ref = signal["local_ref"]
            self.sent.append(ref)
            held = self.stored.get(ref)
            if held is None:
                stored = Professional(**signal["professional"]).as_dict()  # as the index
                held = {
                    "signal_id": str(uuid.uuid4()),
                    "local_ref": ref,
                    "remove_on": REMOVE_ON,
                    "professional": {k: v for k, v in stored.items() if v is not None},
                }
                self.stored[ref] = held
                results.append({**held, "status": 201})
            else:
                results.append({**held, "status": 200})
        return results

    def request(self, method: str, path: str, params: dict[str, Any]) -> Any:
        items = list(self.stored.values())

        class Page:
            def json(self) -> dict[str, Any]:
                return {"items": items, "next": None}

        return Page()


def _file(tmp_path: Path, count: int = 6, name: str = "Anna de Wit") -> tuple[Path, list[str]]:
    bsns = [made_up_bsn() for _ in range(count)]
    path = tmp_path / "zaken.csv"
    lines = ["local_ref,bsn,professional_name,professional_email"]
    lines += [f"ref-{i},{bsn},{name},a.dewit@example.nl" for i, bsn in enumerate(bsns)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, bsns


def _sync(index: Index, path: Path, **options: Any) -> bulk.Summary:
    chosen = bulk.Options(progress=False, remember=True, **options)
    return bulk.sync_file(index, path, chosen, io.StringIO())  # type: ignore[arg-type]


def _memory(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def test_the_second_sync_sends_nothing_and_the_memory_holds_no_identity(
    tmp_path: Path,
) -> None:
    index = Index()
    path, bsns = _file(tmp_path)
    assert _sync(index, path).registered == 6
    memory = _memory(path)
    assert memory.stat().st_mode & 0o777 == 0o600
    text = memory.read_text()
    for bsn in bsns:
        canonical = nl_bsn(bsn)
        assert bsn not in text and canonical not in text
        for digest in (hashlib.sha256(bsn.encode()), hashlib.sha256(canonical.encode())):
            assert digest.hexdigest()[:16] not in text
    index.sent.clear()
    index.pseudonymised = 0
    assert _sync(index, path).unchanged == 6
    assert (index.sent, index.pseudonymised) == ([], 0)


def test_a_memory_made_under_another_key_is_no_use(tmp_path: Path) -> None:
    path, _bsns = _file(tmp_path)
    _sync(Index(key=b"a" * 32), path)
    other = Index(key=b"b" * 32)
    other.stored = Index(key=b"a" * 32).stored  # empty: the same rows again
    summary = _sync(other, path)
    assert summary.registered == 6 and other.pseudonymised == 6
    # rewritten under the new key: the next run with it sends nothing
    other.sent.clear()
    assert _sync(other, path).unchanged == 6 and other.sent == []


def test_an_altered_or_forged_tag_sends_the_row(tmp_path: Path) -> None:
    index = Index()
    path, _bsns = _file(tmp_path)
    _sync(index, path)
    memory = _memory(path)
    header, *entries = memory.read_text().splitlines()
    first = json.loads(entries[0])
    first["tag"] = ("0" if first["tag"][0] != "0" else "1") + first["tag"][1:]
    forged = {"local_ref": "ref-1", "tag": "f" * 32}
    memory.write_text(
        "\n".join([header, json.dumps(first), json.dumps(forged), *entries[2:]]) + "\n"
    )
    index.sent.clear()
    summary = _sync(index, path)
    assert summary.unchanged == 6  # the index answers 200 for both
    assert sorted(index.sent) == ["ref-0", "ref-1"]


def test_a_signal_withdrawn_or_replaced_at_the_index_is_sent_again(tmp_path: Path) -> None:
    index = Index()
    path, _bsns = _file(tmp_path)
    _sync(index, path)
    del index.stored["ref-2"]  # withdrawn in the portal, say
    index.stored["ref-3"] = {**index.stored["ref-3"], "signal_id": str(uuid.uuid4())}
    index.stored["ref-4"] = {**index.stored["ref-4"], "remove_on": "2027-01-01"}
    index.stored["ref-5"] = {
        **index.stored["ref-5"],
        "professional": {"name": "Bram Ander", "email": "b.ander@example.nl"},
    }
    index.sent.clear()
    summary = _sync(index, path)
    assert summary.registered == 1
    assert sorted(index.sent) == ["ref-2", "ref-3", "ref-4", "ref-5"]


@pytest.mark.parametrize(
    "content",
    [b"local_ref,bsn\n1,999999990\n", b"\x00" * 5000, b'{"vir_client_state": 1}\n'],
    ids=["a CSV", "binary", "a state file"],
)
def test_another_file_where_the_memory_should_be_is_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    index = Index()
    path, _bsns = _file(tmp_path)
    other = tmp_path / "elders.txt"
    other.write_bytes(content)
    with pytest.raises(bulk.BulkError, match="not a vir-client sync memory"):
        _sync(index, path, memory=other)
    assert other.read_bytes() == content
    assert index.sent == [] and index.pseudonymised == 0
    with pytest.raises(bulk.BulkError):
        _sync(index, path, memory=other, forget=True)  # --full does not overwrite it
    assert other.read_bytes() == content


def test_an_empty_memory_a_crash_left_is_a_memory_of_nothing(tmp_path: Path) -> None:
    index = Index()
    path, _bsns = _file(tmp_path)
    _memory(path).touch(mode=0o600)
    assert _sync(index, path).registered == 6
    index.sent.clear()
    assert _sync(index, path).unchanged == 6 and index.sent == []


def test_garbage_and_an_endless_line_are_skipped(tmp_path: Path) -> None:
    index = Index()
    path, _bsns = _file(tmp_path)
    _sync(index, path)
    memory = _memory(path)
    header, *entries = memory.read_text().splitlines()
    junk = ["{", "[]", '{"local_ref": 1, "tag": 2}', "x" * 3_000_000, '{"tag": "00"}']
    memory.write_text("\n".join([header, *junk, *entries]) + "\n")
    index.sent.clear()
    assert _sync(index, path).unchanged == 6
    assert index.sent == []
    assert len(memory.read_text().splitlines()) == 7  # rewritten: the header and six rows


def test_full_checks_every_row_and_remembers_them_again(tmp_path: Path) -> None:
    index = Index()
    path, _bsns = _file(tmp_path)
    _sync(index, path)
    index.sent.clear()
    assert _sync(index, path, forget=True).unchanged == 6
    assert sorted(index.sent) == [f"ref-{i}" for i in range(6)]
    index.sent.clear()
    _sync(index, path)
    assert index.sent == []


def test_the_memory_class_refuses_nothing_it_was_not_given(tmp_path: Path) -> None:
    memory = SyncMemory(tmp_path / "m", b"k" * 32, {})
    assert not memory.unchanged("ref", b"content", None)
    assert not memory.unchanged("ref", b"content", b"\x00" * 16)


def test_changed_rows_among_unchanged_ones_go_in_few_requests_in_file_order(
    tmp_path: Path,
) -> None:
    """A nightly file where one row in ten changed: the changed rows are gathered into
    as few requests as without the memory, and every row is accounted for in file
    order (a refused row's line among them)."""
    index = Index()
    path, _bsns = _file(tmp_path, 300)
    _sync(index, path)
    lines = path.read_text().splitlines()
    for i in range(1, 301, 10):
        lines[i] = lines[i].replace("a.dewit@example.nl", "anna.dewit@example.nl")
    lines[150] = lines[150].split(",")[0] + ",123456789,Anna de Wit,a.dewit@example.nl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    index.sent.clear()
    index.requests = 0
    notes = io.StringIO()
    summary = bulk.sync_file(
        index,  # type: ignore[arg-type]
        path,
        bulk.Options(progress=False, remember=True),
        notes,
    )
    assert len(index.sent) == 30 and index.requests == 1
    assert (summary.unchanged, summary.invalid) == (299, 1)  # the 30 answered 200 here
    assert "row 151, column bsn" in notes.getvalue()


@pytest.mark.parametrize(
    "name", ["Anna  de Wit", "Zoe\u0308 de Wit"], ids=["two spaces", "decomposed"]
)
def test_a_name_the_index_normalises_is_still_recognised(tmp_path: Path, name: str) -> None:
    """The index stores the name normalised (NFC, one space): the row's name is
    compared in that form, or the row would be sent every night."""
    index = Index()
    path, _bsns = _file(tmp_path, name=name)
    _sync(index, path)
    assert all(s["professional"]["name"] != name for s in index.stored.values())
    index.sent.clear()
    assert _sync(index, path).unchanged == 6 and index.sent == []
