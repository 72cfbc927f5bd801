"""Both environment examples are read by sh as well as by systemd (``set -a; . FILE`` in
deploy/bin/vir-admin and the key holder's wrapper): every line, and every commented
setting once uncommented, must source cleanly and give the value systemd would.

Before, keyholder.env.example had ``VIR_KEYHOLDER_API_CONTACT_NAME=vir key holder
operator`` unquoted: sh ran a command ``key`` ("key: not found") and left the name unset.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
EXAMPLES = ["vir.env.example", "keyholder.env.example"]
_SETTING = re.compile(r"^#?(VIR_[A-Z0-9_]+)=(.*)$")


def _expected(raw: str) -> str:
    """What systemd's EnvironmentFile= makes of a value: one pair of quotes removed."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_setting_of_the_example_sources_in_sh(name: str, tmp_path: Path) -> None:
    lines = (DEPLOY / name).read_text(encoding="utf-8").splitlines()
    settings = [(line.startswith("#"), m) for line in lines if (m := _SETTING.match(line))]
    assert len(settings) > 20
    # The example as it is, and with every commented setting switched on.
    uncommented = tmp_path / name
    uncommented.write_text(
        "\n".join(line.removeprefix("#") if _SETTING.match(line) else line for line in lines)
        + "\n",
        encoding="utf-8",
    )
    for path in (DEPLOY / name, uncommented):
        sourced = subprocess.run(
            ["sh", "-c", 'set -ae; . "$1"; env -0', "sh", str(path)],
            capture_output=True,
            env={"PATH": "/usr/bin:/bin"},
            timeout=30,
        )
        assert sourced.returncode == 0, sourced.stderr.decode()
        assert sourced.stderr == b""
        found = dict(
            entry.split("=", 1) for entry in sourced.stdout.decode().split("\0") if "=" in entry
        )
        for commented, match in settings:
            key, value = match.group(1), _expected(match.group(2))
            if commented and path == DEPLOY / name:
                assert key not in found, key
            else:
                assert found.get(key) == value, key
