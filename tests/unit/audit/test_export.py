"""A portable export verifies without a database, and any single edit is caught and named."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.audit_export import synthetic_export

from vir.audit.chain import chain_hash
from vir.audit.export import ExportedEntry, render, verify
from vir.crypto.signing import CheckpointSigner, ed25519_verify

SIGNER = CheckpointSigner.from_seed(hashlib.sha256(b"vir test signer").digest(), "test/log")
OTHER = CheckpointSigner.from_seed(hashlib.sha256(b"someone else").digest(), "test/log")


def export_lines(n: int, signer: CheckpointSigner = SIGNER) -> list[bytes]:
    return list(synthetic_export(n, signer))


def check(lines: list[bytes], key: str = SIGNER.verifier_key()):  # type: ignore[no-untyped-def]
    return verify(lines, ed25519_verify, key)


@given(st.integers(min_value=0, max_value=40))
def test_an_untouched_export_verifies(n: int) -> None:
    report = check(export_lines(n))
    assert report.ok and report.entries == n


@given(st.data())
def test_flipping_any_byte_of_any_entry_is_named(data: st.DataObject) -> None:
    lines = export_lines(data.draw(st.integers(min_value=1, max_value=25)))
    k = data.draw(st.integers(min_value=1, max_value=len(lines) - 1))
    line = bytearray(lines[k])
    at = data.draw(st.integers(min_value=0, max_value=len(line) - 2))  # not the newline
    line[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    lines[k] = bytes(line)
    report = check(lines)
    assert not report.ok
    assert report.first_bad_entry == k


@given(st.data())
def test_changing_any_byte_anywhere_fails_and_names_the_place(data: st.DataObject) -> None:
    """Header, checkpoint, separators, newlines, hex digits: one encoding verifies."""
    lines = export_lines(data.draw(st.integers(min_value=0, max_value=12)))
    k = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    line = bytearray(lines[k])
    at = data.draw(st.integers(min_value=0, max_value=len(line) - 1))
    line[at] ^= data.draw(st.integers(min_value=1, max_value=255))
    lines[k] = bytes(line)
    report = check(b"".join(lines).splitlines(keepends=True))  # as a file would be read
    assert not report.ok
    assert report.first_bad_entry == (k if k > 0 else None)


def _hex_case_flipped(line: bytes) -> bytes:
    seq, chain, body = line.split(b" ", 2)
    letter = next(i for i, c in enumerate(chain) if c in b"abcdef")
    chain = chain[:letter] + chain[letter : letter + 1].upper() + chain[letter + 1 :]
    return b" ".join((seq, chain, body))


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda ls: ls.__setitem__(2, _hex_case_flipped(ls[2])), 2),  # a -> A in the chain
        (lambda ls: ls.__setitem__(2, b"0" + ls[2]), 2),  # seq 02
        (lambda ls: ls.__setitem__(2, b"+" + ls[2]), 2),  # seq +2
        (lambda ls: ls.__setitem__(2, ls[2].replace(b" ", b"  ", 1)), 2),  # two spaces
        (lambda ls: ls.__setitem__(3, ls[3].rstrip(b"\n")), 3),  # no final newline
        (lambda ls: ls.__setitem__(3, ls[3][:-1] + b"\r\n"), 3),  # CRLF
        (lambda ls: ls.append(b"\n"), None),  # a trailing empty line: no entry is wrong
        (lambda ls: ls.__setitem__(0, ls[0].replace(b'", "', b'","', 1)), None),  # JSON spacing
        (lambda ls: ls.__setitem__(0, ls[0].replace(b"\\u2014", "\u2014".encode(), 1)), None),
        (lambda ls: ls.__setitem__(0, ls[0].replace(b'"size": 3', b'"size": 3.0', 1)), None),
        (lambda ls: ls.__setitem__(0, ls[0].replace(b'"size": 3', b'"size": 2', 1)), None),
        (
            lambda ls: ls.__setitem__(0, ls[0].replace(b'{"checkpoint"', b'{"x": 1, "checkpoint"')),
            None,
        ),
    ],
    ids=[
        "hex-uppercase",
        "seq-leading-zero",
        "seq-plus-sign",
        "double-space",
        "no-final-newline",
        "crlf",
        "trailing-empty-line",
        "header-json-spacing",
        "header-unescaped-dash",
        "header-size-float",
        "header-size-changed",
        "header-extra-field",
    ],
)
def test_no_second_encoding_of_an_export_verifies(edit: Any, named: int | None) -> None:
    lines = export_lines(3)
    original = list(lines)
    edit(lines)
    assert lines != original
    report = check(lines)
    assert not report.ok
    assert report.first_bad_entry == named


def test_a_cosignature_by_another_key_is_not_carried_into_the_export() -> None:
    """After a rotation the checkpoint is cosigned; the export keeps the one signature
    it can have checked, by the key in its header."""
    entries = [line for line in export_lines(2)[1:]]
    header = json.loads(export_lines(2)[0])
    cosigned = SIGNER.cosign(OTHER.cosign(header["checkpoint"].encode()))
    lines = list(
        render(
            SIGNER.origin,
            SIGNER.verifier_key(),
            cosigned,
            [_entry(line) for line in entries],
        )
    )
    assert json.loads(lines[0])["checkpoint"].count("\u2014") == 1
    assert check(lines).ok


def _entry(line: bytes) -> ExportedEntry:
    seq, chain, body = line.rstrip(b"\n").split(b" ", 2)
    return ExportedEntry(int(seq), bytes.fromhex(chain.decode()), body)


@given(st.data())
def test_deleting_any_entry_is_named(data: st.DataObject) -> None:
    lines = export_lines(data.draw(st.integers(min_value=1, max_value=25)))
    k = data.draw(st.integers(min_value=1, max_value=len(lines) - 1))
    del lines[k]
    report = check(lines)
    assert not report.ok and report.first_bad_entry == k


@given(st.data())
def test_reordering_entries_is_named(data: st.DataObject) -> None:
    lines = export_lines(data.draw(st.integers(min_value=2, max_value=25)))
    k = data.draw(st.integers(min_value=1, max_value=len(lines) - 2))
    lines[k], lines[k + 1] = lines[k + 1], lines[k]
    report = check(lines)
    assert not report.ok and report.first_bad_entry == k


def test_a_consistent_rewrite_still_fails_the_signed_root() -> None:
    lines = export_lines(6)
    forged = export_lines(6, SIGNER)  # same content: the rewrite below changes entry 3
    body = forged[3].split(b" ", 2)[2].replace(b'"success"', b'"refused"')
    previous = bytes.fromhex(forged[2].split(b" ")[1].decode())
    rebuilt = lines[:3]
    for k in range(3, 7):
        entry = body if k == 3 else lines[k].split(b" ", 2)[2].rstrip(b"\n")
        previous = chain_hash(previous, entry.rstrip(b"\n"))
        rebuilt.append(b"%d %s %s\n" % (k, previous.hex().encode(), entry.rstrip(b"\n")))
    report = check(rebuilt)
    assert not report.ok and "Merkle root" in (report.problem or "")


@pytest.mark.parametrize("edit", ["signature", "size", "key"])
def test_tampered_checkpoint_or_key_fails(edit: str) -> None:
    lines = export_lines(5)
    header = lines[0]
    if edit == "signature":
        lines[0] = header.replace(b"\\u2014 test/log ", b"\\u2014 test/log A", 1)
        if lines[0] == header:  # the dash may be stored unescaped
            lines[0] = header.replace("— test/log ".encode(), "— test/log A".encode(), 1)
    elif edit == "size":
        lines[0] = header.replace(b"\\n5\\n", b"\\n4\\n", 1)
    assert lines[0] != header or edit == "key"
    key = OTHER.verifier_key() if edit == "key" else SIGNER.verifier_key()
    assert not check(lines, key).ok


def test_a_rewrite_signed_with_a_fresh_key_fails_against_the_published_key() -> None:
    """What a forger can do without the log's key: sign the whole file anew."""
    report = check(export_lines(3, OTHER))
    assert not report.ok
    assert report.problem == (
        "wrong key: the export names another key than the one given to verify with"
    )


def test_a_malformed_key_is_the_callers_mistake_not_the_files() -> None:
    with pytest.raises(ValueError, match="verifier key"):
        check(export_lines(3), key="abc")


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ([], "the file is empty: an export starts with a header"),
        ([b"not json\n"], "not a vir-audit-export/1 file: its first line is not JSON"),
        (
            [b"\x00\x9f\x92\x96\n", b"\xff\xfe\n"],
            "not a vir-audit-export/1 file: its first line is not UTF-8 text",
        ),
        ([b'{"format": "x"}\n'], "not a vir-audit-export/1 file: its header names no such format"),
    ],
    ids=["empty", "text", "binary", "json"],
)
def test_what_is_not_an_export_is_said_to_be_none(lines: list[bytes], problem: str) -> None:
    report = check(lines)
    assert not report.ok and report.problem == problem


def test_the_end_of_the_file_is_named_when_it_is_wrong() -> None:
    lines = export_lines(3)
    report = check([*lines[:-1], lines[-1].rstrip(b"\n")])
    assert report.first_bad_entry == 3
    assert report.problem == "the file ends wrongly: no newline after entry 3, its last line"
    report = check([*lines, b"\n"])
    assert report.first_bad_entry is None
    assert report.problem == "the file ends wrongly: an empty line after its last entry (3)"
    report = check([*lines[:2], b"\n", *lines[2:]])
    assert report.first_bad_entry == 2
    assert report.problem == "an empty line where entry 2 belongs"


def test_a_header_that_disagrees_with_its_checkpoint_is_said_so() -> None:
    lines = export_lines(3)
    lines[0] = lines[0].replace(b'"size": 3', b'"size": 2', 1)
    report = check(lines)
    assert report.problem == (
        "inconsistent header: its origin or size differs from its checkpoint's"
    )
