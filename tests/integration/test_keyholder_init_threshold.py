"""``vir keyholder init`` with ``VIR_KEYHOLDER_THRESHOLD`` above 1 refuses, and makes nothing.

Before, it wrote a whole OPRF key without a word, and ``vir keyholder serve`` then
refused to start ("... this key holder's key is a whole key, not a share"): a holder of
a t-of-n deployment needs its share of the one key all the holders share, which init
cannot make.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from vir import cli


def _init(tmp_path: Path, threshold: int) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIR_KEYHOLDER_THRESHOLD", str(threshold))
        patch.setenv("VIR_KEYHOLDER_KEYS_DIR", str(tmp_path / "keys"))
        patch.setenv("VIR_KEYHOLDER_DATABASE_URL", f"sqlite:///{tmp_path / 'db' / 'kh.db'}")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["keyholder", "init"])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.sqlite_only(reason="the key holder's database is a file here")
def test_init_refuses_to_make_a_whole_key_for_a_threshold_holder(tmp_path: Path) -> None:
    code, out, err = _init(tmp_path, 2)
    assert code == 2
    assert out == ""
    assert err.startswith("vir: VIR_KEYHOLDER_THRESHOLD is 2, and init makes a whole key")
    assert "vir keyholder repair" in err
    assert "vir keyholder dkg start, deal and finish" in err
    assert not (tmp_path / "keys").exists() and not (tmp_path / "db").exists()


@pytest.mark.sqlite_only(reason="the key holder's database is a file here")
def test_init_keeps_a_threshold_holders_share(tmp_path: Path) -> None:
    """A holder that has its share already: init makes only what is missing."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    share = keys / "oprf-epoch-1.key"
    share.write_text("placeholder\n", encoding="ascii")
    share.chmod(0o600)
    code, out, err = _init(tmp_path, 2)
    assert code == 0, err
    assert f"kept existing OPRF key {share}" in out
    assert share.read_text(encoding="ascii") == "placeholder\n"
