"""``vir-client access``: a person's right of access, asked for a person only."""

from __future__ import annotations

import pytest

from vir.client import cli


def test_access_offers_a_person_and_refuses_an_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as helped:
        cli.main(["access", "--help"])
    assert helped.value.code == 0
    assert "{bsn,person}" in capsys.readouterr().out
    # An address's pseudonym sent as a person would always answer "nothing is held".
    with pytest.raises(SystemExit) as refused:
        cli.main(["access", "address"])
    assert refused.value.code == 2
    assert "invalid choice: 'address'" in capsys.readouterr().err
