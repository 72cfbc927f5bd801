"""``vir report``: the Dutch CSV by default, the JSON to a file, and ``vir report verify``
checking a report's checkpoint against the current log."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from support.clirun import run_vir
from support.world import world

from vir.crypto.signing import init_signing_key
from vir.store.db import Database

PERIOD = ("--from", "2026-01-01", "--to", "2027-01-01")


def _vir(db: Database, keys: Path, *args: str) -> tuple[int, str, str]:
    ran = run_vir(db, *args, keys_dir=str(keys))
    return ran.code, ran.out, ran.err


def test_report_then_verify(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    period = ("--from", "2026-01-01", "--to", "2027-01-01")
    with world(tmp_path) as w:
        w.register(0, "kim")
        db = w.store.db
        out = tmp_path / "rapport.json"
        sheet = tmp_path / "rapport.csv"
        code, _, err = _vir(
            db, keys, "report", "privacy", *period, "--json", str(out), "--csv", str(sheet)
        )
        assert code == 0, err
        assert sheet.read_bytes().startswith(b"\xef\xbb\xbfOnderdeel;")
        code, _, err = _vir(
            db, keys, "report", "monitor", *period, "--csv", str(sheet), "--csv-dialect", "data"
        )
        assert code == 0, err
        assert not sheet.read_text(encoding="utf-8").startswith("\ufeff")
        monitor = tmp_path / "monitor.json"
        code, _, err = _vir(
            db,
            keys,
            "report",
            "monitor",
            *period,
            "--granularity",
            "quarter",
            "--grouping",
            "groups",
            "--json",
            str(monitor),
        )
        assert code == 0, err
        chosen = json.loads(monitor.read_text(encoding="utf-8"))
        assert (chosen["granularity"], chosen["grouping"]) == ("quarter", "groups")
        assert chosen["measures"][0]["rows"][0][1] == "2026-Q1"
        checkpoint = json.loads(out.read_text(encoding="utf-8"))["checkpoint"]

        w.register(1, "kim")  # the log grows: the old checkpoint must still be a prefix
        code, said, err = _vir(db, keys, "report", "verify", str(out))
        assert code == 0, err
        assert f"first {checkpoint['tree_size']} entries are unchanged" in said
        code, said, err = _vir(
            db,
            keys,
            "report",
            "verify",
            "--tree-size",
            str(checkpoint["tree_size"]),
            "--root-hash",
            checkpoint["root_hash"],
        )
        assert code == 0, err

        altered = dict(checkpoint, root_hash="A" * 43 + "=")
        out.write_text(json.dumps({"checkpoint": altered}), encoding="utf-8")
        code, _, err = _vir(db, keys, "report", "verify", str(out))
        assert code == 1 and "does NOT verify" in err
        code, _, err = _vir(db, keys, "report", "verify")
        assert code == 2 and "--tree-size" in err


def _audit_rows(db: Database) -> int:
    with db.engine.connect() as connection:
        return sum(
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("audit_entries", "audit_staged")
        )


def test_reports_are_written_for_their_owner_alone(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    out = tmp_path / "out"
    out.mkdir()
    files = [out / "r.csv", out / "r.pdf", out / "r.json"]
    with world(tmp_path) as w:
        w.register(0, "kim")
        old = os.umask(0o022)
        try:
            code, said, err = _vir(
                w.store.db,
                keys,
                "report",
                "privacy",
                *PERIOD,
                *("--csv", str(files[0]), "--pdf", str(files[1]), "--json", str(files[2])),
            )
        finally:
            os.umask(old)
    assert code == 0, err
    assert said == "".join(f"vir: wrote {f}\n" for f in files)
    assert {f: stat.S_IMODE(f.stat().st_mode) for f in files} == dict.fromkeys(files, 0o600)
    assert sorted(out.iterdir()) == sorted(files)  # no temporary left


def test_a_report_to_a_folder_that_is_not_there_is_refused_before_it_is_made(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    pdf = tmp_path / "nodir" / "p.pdf"
    with world(tmp_path) as w:
        w.register(0, "kim")
        w.store.db.integrate()
        before = _audit_rows(w.store.db)
        json_out = tmp_path / "r.json"
        code, said, err = _vir(
            w.store.db,
            keys,
            "report",
            "privacy",
            *PERIOD,
            "--json",
            str(json_out),
            "--pdf",
            str(pdf),
        )
        assert (code, said) == (1, "")
        assert err == f"vir: cannot write {pdf}: no such folder: {pdf.parent}\n"
        assert _audit_rows(w.store.db) == before  # no report.generated: none was made
        assert not json_out.exists()


def test_report_verify_says_what_is_wrong_with_what_it_was_given(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    missing = tmp_path / "missing.json"
    bad_root = tmp_path / "bad.json"
    bad_root.write_text(
        json.dumps({"checkpoint": {"tree_size": 3, "root_hash": "abc"}}), encoding="utf-8"
    )
    not_a_report = tmp_path / "other.json"
    not_a_report.write_text("[]", encoding="utf-8")
    binary = tmp_path / "rapport.pdf"
    binary.write_bytes(b"%PDF-1.7\n\xe2\xe3\xcf\xd3\n")
    with world(tmp_path) as w:
        db = w.store.db
        for argv, said in [
            (
                ("--tree-size", "3", "--root-hash", "abc"),
                "vir: root-hash: not a valid base64 root hash of 32 bytes\n",
            ),
            (
                ("--tree-size", "3", "--root-hash", "A" * 44),
                "vir: root-hash: not a valid base64 root hash of 32 bytes\n",
            ),
            ((str(missing),), f"vir: file: cannot read {missing}: no such file or folder\n"),
            (
                (str(bad_root),),
                f"vir: file: the checkpoint in {bad_root} has no valid base64 root hash "
                "of 32 bytes\n",
            ),
            (
                (str(not_a_report),),
                f"vir: file: {not_a_report} is not a report in JSON with a checkpoint\n",
            ),
            ((str(binary),), f"vir: file: {binary} is not a report in JSON: not UTF-8 text\n"),
        ]:
            code, out, err = _vir(db, keys, "report", "verify", *argv)
            assert (code, out, err) == (2, "", said)


def _privacy_json(db: Database, keys: Path) -> tuple[dict[str, object], str]:
    code, out, err = _vir(
        db, keys, "report", "privacy", "--from", "2026-01-01", "--to", "2027-01-01"
    )
    assert code == 0, err
    return json.loads(out), err


def test_the_privacy_report_asks_the_key_holder_or_says_it_could_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIR_USAGE_KEYHOLDERS", raising=False)
    with world(tmp_path / "w") as w:
        # No VIR_USAGE_KEYHOLDERS and no development set-up: not a silent 0.
        report, err = _privacy_json(w.store.db, keys)
        assert report["evaluation_counts"] == {
            "source": "keyholder",
            "available": False,
            "reason": "not_configured",
            "detail": "no key holder to ask for its counts (VIR_USAGE_KEYHOLDERS is empty)",
        }
        assert "pseudonymisations are NOT counted" in err
        # The development set-up's key holders (as `vir dev run` gives `vir serve`).
        dev = tmp_path / ".vir" / "dev"
        dev.mkdir(parents=True)
        (dev / "endpoints.json").write_text(
            json.dumps(
                {
                    "index": "https://127.0.0.1:1",
                    "keyholders": ["https://127.0.0.1:1"],
                    "threshold": 1,
                }
            ),
            encoding="utf-8",
        )
        report, err = _privacy_json(w.store.db, keys)
        counts = report["evaluation_counts"]
        assert isinstance(counts, dict)
        assert (counts["available"], counts["reason"]) == (False, "unreachable")


@pytest.mark.parametrize("kind", ["privacy", "monitor", "participation"])
def test_a_mistyped_region_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    keys = tmp_path / "keys"
    init_signing_key(keys)
    period = ("--from", "2026-01-01", "--to", "2027-01-01")
    with world(tmp_path) as w:
        code, out, err = _vir(w.store.db, keys, "report", kind, *period, "--region", "Roterdam")
    assert code == 2 and out == ""
    regions = "Nederland, Rotterdam, Utrecht"
    assert err == f"vir: region: no organisation is in this region; the regions are: {regions}\n"
