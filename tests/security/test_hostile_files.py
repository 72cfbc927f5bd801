"""Files handed to vir's command lines by a careless or hostile user: nested a few
thousand brackets deep, numbers of thousands of digits or beyond a float's range,
duplicate keys, no line ends at all (``/dev/zero``). Each is refused in one line that
names the problem (``vir: ...`` on standard error, a non-zero exit), never with a
traceback, never by reading the file whole into memory, and never quoting it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import seed
from support.clirun import Ran, run_vir
from support.instore import fresh_store, template

from vir.audit import export
from vir.client import bulk
from vir.client.connection import ClientError, Endpoints, VirClient
from vir.crypto.rekey_token import read_token
from vir.crypto.signing import CheckpointSigner
from vir.domain import strict_json
from vir.domain.errors import ConfigurationError, InputError
from vir.keyholder import dkg, exchange
from vir.store.db import Database

SIGNER = CheckpointSigner.from_seed(hashlib.sha256(b"hostile files").digest(), "test/log")

DEEP = b"[" * 2000 + b"]" * 2000  # within a rekey token's 4096 bytes
DEEP_OBJECT = b'{"a":' * 3000 + b"1" + b"}" * 3000
LONG_INT = b'{"format":"vir-audit-export/1","size":' + b"9" * 5000 + b"}"
HUGE_FLOAT = b'{"checkpoint":{"tree_size":1e400,"root_hash":"x"}}'

HOSTILE_JSON = {
    "deep": DEEP,
    "deep object": DEEP_OBJECT,
    "long int": LONG_INT,
    "huge float": HUGE_FLOAT,
    "NaN": b'{"a": NaN}',
    "Infinity": b'{"a": -Infinity}',
    "duplicate key": b'{"a": 1, "a": 2}',
    "not UTF-8": b"\xff\xfe{}",
}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with fresh_store(template(tmp_path), tmp_path / "db.sqlite") as store:
        yield store.db


def _one_line(ran: Ran, starts: str = "vir: ") -> str:
    """The refusal: a non-zero exit and one line on standard error, no traceback."""
    assert ran.code != 0, ran
    assert ran.out == ""
    assert ran.err.count("\n") == 1 and ran.err.startswith(starts), ran.err
    assert "Traceback" not in ran.err and "Error" not in ran.err, ran.err
    return ran.err


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_the_strict_reader_refuses_without_quoting(name: str) -> None:
    with pytest.raises(strict_json.NotJson) as refused:
        strict_json.loads(HOSTILE_JSON[name])
    said = str(refused.value)
    assert "999" not in said and "[[" not in said and len(said) < 80, said


def test_the_strict_reader_keeps_what_is_json() -> None:
    text = b'{"a": [1, -2, 3.5, "[[[{{{", "\\"]"], "b": {"c": null, "d": true}}'
    assert strict_json.loads(text) == json.loads(text)
    nested = b"[" * strict_json.MAX_DEPTH + b"]" * strict_json.MAX_DEPTH
    assert strict_json.loads(nested) == json.loads(nested)
    with pytest.raises(strict_json.NotJson):
        strict_json.loads(b"[" + nested + b"]")


def test_the_strict_reader_stops_at_its_size(tmp_path: Path) -> None:
    with pytest.raises(strict_json.TooLarge):
        strict_json.load_file(Path("/dev/zero"), 1 << 16)
    path = tmp_path / "ok.json"
    path.write_text('{"a": 1}')
    assert strict_json.load_file(path, 8) == {"a": 1}
    with pytest.raises(strict_json.TooLarge):
        strict_json.load_file(path, 7)


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_a_rekey_token_that_is_hostile_json_is_an_input_error(name: str) -> None:
    with pytest.raises(InputError) as refused:
        read_token(HOSTILE_JSON[name], seed.VERIFIER_KEY)
    assert refused.value.field == "token"


def test_vir_keys_rekey_refuses_a_deep_token_in_one_line(db: Database, tmp_path: Path) -> None:
    key_file = tmp_path / "keyholder.pub"
    key_file.write_text(seed.VERIFIER_KEY + "\n")
    deep = tmp_path / "deep"
    deep.write_bytes(b"[" * 2000 + b"]" * 2000)
    ran = run_vir(db, "keys", "rekey", "--token", str(deep), keyholder_verifier_key=str(key_file))
    assert _one_line(ran, "vir: token: ")


@pytest.mark.parametrize("name", ["deep", "deep object", "long int", "huge float", "NaN"])
def test_vir_audit_verify_refuses_a_hostile_header_in_one_line(
    db: Database, tmp_path: Path, name: str
) -> None:
    path = tmp_path / "x.export"
    path.write_bytes(HOSTILE_JSON[name] + b"\n")
    ran = run_vir(db, "audit", "verify", str(path), "--verifier-key", SIGNER.verifier_key())
    assert "does NOT verify" in _one_line(ran)


def test_vir_audit_verify_reads_a_file_without_line_ends_no_further_than_a_line(
    db: Database, tmp_path: Path
) -> None:
    """``/dev/zero`` never ends: read whole it is a MemoryError; a file whose entry is
    longer than any entry is refused at that entry."""
    ran = run_vir(db, "audit", "verify", "/dev/zero", "--verifier-key", SIGNER.verifier_key())
    assert "longer than" in _one_line(ran)
    from support.audit_export import synthetic_export

    lines = list(synthetic_export(2, SIGNER))
    path = tmp_path / "long.export"
    path.write_bytes(lines[0] + lines[1] + b"2 " + b"a" * (export.MAX_LINE_BYTES + 10))
    ran = run_vir(db, "audit", "verify", str(path), "--verifier-key", SIGNER.verifier_key())
    assert "entry 2 is longer than" in _one_line(ran)
    with Path("/dev/zero").open("rb") as zeros:
        lines_read = export.read_lines(zeros)
        assert not export.verify(lines_read, lambda *_: True, SIGNER.verifier_key()).ok


@pytest.mark.parametrize(
    "content",
    [
        HUGE_FLOAT,
        DEEP,
        b'{"checkpoint":' * 3000 + b"{}" + b"}" * 3000,
        LONG_INT.replace(b'"size"', b'"checkpoint"'),
        b'{"checkpoint":{"tree_size":1.5,"root_hash":"' + b"A" * 43 + b'="}}',
        b'{"checkpoint":{"tree_size":"5","root_hash":"' + b"A" * 43 + b'="}}',
        b'{"checkpoint":{"tree_size":true,"root_hash":"' + b"A" * 43 + b'="}}',
        b'{"checkpoint":{"tree_size":-1,"root_hash":"' + b"A" * 43 + b'="}}',
        b'{"checkpoint":{"tree_size":99999999999999999999999,"root_hash":"' + b"A" * 43 + b'="}}',
        b'{"checkpoint":{"tree_size":5,"root_hash":5}}',
        b'{"checkpoint":{"tree_size":5,"tree_size":6,"root_hash":"' + b"A" * 43 + b'="}}',
    ],
)
def test_vir_report_verify_refuses_a_hostile_report_in_one_line(
    db: Database, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(content)
    said = _one_line(run_vir(db, "report", "verify", str(path)), "vir: file: ")
    assert "9999" not in said and "[[" not in said


def test_vir_report_verify_reads_no_more_than_a_report_can_be(db: Database) -> None:
    assert "larger than" in _one_line(run_vir(db, "report", "verify", "/dev/zero"))


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_a_hostile_key_generation_file_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "start.json"
    path.write_bytes(HOSTILE_JSON[name])
    with pytest.raises(ConfigurationError) as refused:
        exchange.load(dkg.FAMILY, path, "start")
    assert str(path) in refused.value.detail


def test_a_file_without_its_header_row_is_refused_without_quoting_it(tmp_path: Path) -> None:
    """The first row of a file without its header is data: once quoted (five cells of 40
    characters), a BSN and a name went to the terminal. Positions only, and vir's own
    column names where a header cell means one."""
    data = tmp_path / "noheader.csv"
    data.write_text("LLN-2026-1;123456782;Anna de Vries\n", encoding="utf-8")
    for read in (lambda: bulk.check_header(data, ";"), lambda: list(bulk.records(data, ";"))):
        with pytest.raises(bulk.BulkError) as refused:
            read()
        said = str(refused.value)
        for secret in ("123456", "Anna", "LLN-2026"):
            assert secret not in said
        assert "position(s) 1, 2, 3" in said
    header = tmp_path / "header.csv"
    header.write_text("Local Ref;BSN;professional_name\n", encoding="utf-8")
    with pytest.raises(bulk.BulkError) as refused:
        bulk.check_header(header, ";")
    assert "column 1 looks like 'local_ref'; column 2 looks like 'bsn'" in str(refused.value)


@pytest.mark.parametrize(
    "content",
    [
        DEEP,
        b'{"index": "https://x", "keyholders": ["https://y"], "threshold": 1e400}',
        b'{"index": "https://x", "keyholders": ["https://y"], "threshold": "1"}',
        b'{"index": ["https://x"], "keyholders": ["https://y"]}',
        b'{"index": "https://x", "keyholders": "https://y"}',
    ],
)
def test_a_hostile_endpoints_file_is_a_client_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "endpoints.json"
    path.write_bytes(content)
    with pytest.raises(ClientError):
        Endpoints.load(path)


@pytest.mark.parametrize("content", [DEEP, b'[{"oin": 1, "name": "x"}]', b"{}", b"[[]]"])
def test_a_hostile_development_listing_is_a_client_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "orgs.json").write_bytes(content)
    with pytest.raises(ClientError):
        VirClient.from_dev("x", tmp_path)


def test_an_import_file_without_line_ends_is_refused_unread() -> None:
    with pytest.raises(bulk.BulkError):
        bulk.check_header(Path("/dev/zero"), ";")
    with pytest.raises(bulk.BulkError):
        list(bulk.records(Path("/dev/zero"), ";"))


@pytest.mark.parametrize(
    "content",
    [
        DEEP,
        b'{"keyholders": ["https://y"], "threshold": 1e400}',
        b'{"keyholders": ["https://y"], "threshold": "1"}',
        b'{"keyholders": "https://y"}',
        b"[]",
    ],
)
def test_a_hostile_endpoints_file_stops_the_portal_with_one_line(
    tmp_path: Path, content: bytes
) -> None:
    from vir.portal.settings import PortalSettings

    path = tmp_path / "endpoints.json"
    path.write_bytes(content)
    settings = PortalSettings(dev_endpoints=path)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError) as refused:
        settings.key_holders()
    assert str(path) in refused.value.detail and "https://y" not in refused.value.detail
