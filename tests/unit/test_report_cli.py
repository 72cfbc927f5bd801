"""``vir report``: the Dutch CSV by default, the JSON to a file, and ``vir report verify``
checking a report's checkpoint against the current log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.clirun import run_vir
from support.world import world

from vir.crypto.signing import init_signing_key
from vir.store.db import Database


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
