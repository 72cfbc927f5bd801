"""A refused setting is named, as its environment variable, and its value is never
echoed: a database URL or a path may hold a password or a person's name."""

from __future__ import annotations

import pytest

from vir.cli import main

VALUE = "p4ssw0rd-in-the-wrong-place"
NOT_AN_INTEGER = "unable to parse string as an integer"


@pytest.mark.parametrize(
    ("variable", "command"),
    [
        ("VIR_PORT", ["serve"]),
        ("VIR_KEYHOLDER_PORT", ["keyholder", "serve"]),
        ("VIR_KEYHOLDER_WORKERS", ["keyholder", "serve"]),
    ],
)
def test_a_bad_setting_is_named_without_its_value(
    variable: str,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, VALUE)
    assert main(command) == 2
    out, err = capsys.readouterr()
    assert err == f"vir: {variable}: Input should be a valid integer, {NOT_AN_INTEGER}\n"
    assert VALUE not in out + err


@pytest.mark.parametrize("workers", ["0", "65", "-1"])
def test_the_number_of_key_holder_workers_is_bounded(
    workers: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIR_KEYHOLDER_WORKERS", workers)
    assert main(["keyholder", "serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vir: VIR_KEYHOLDER_WORKERS: Input should be ")
    assert err.count("\n") == 1
