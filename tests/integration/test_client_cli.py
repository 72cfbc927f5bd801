"""``vir-client`` reads identities from stdin and prints pseudonyms."""

from __future__ import annotations

import subprocess
import sys

from support import refclient
from support.service import RunningService


def _client(service: RunningService, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "vir.client.cli",
            "--url",
            service.url,
            "--dev-dir",
            str(service.dev),
            "--dev-org",
            "youth_care",
            "pseudonymise",
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bsn_lines_become_pseudonyms_in_order(service: RunningService) -> None:
    result = _client(service, "123456782\n\n111222333\n", "bsn")
    assert result.returncode == 0, result.stderr
    org = service.org("youth_care")
    _, expected = refclient.pseudonymise(
        service.url, service.ca, org.cert, org.key, [b"nl-bsn:123456782", b"nl-bsn:111222333"]
    )
    assert result.stdout.split() == [refclient.b64url_encode(n) for n in expected]


def test_person_and_address_use_the_canonical_forms(service: RunningService) -> None:
    org = service.org("youth_care")
    person = _client(service, "  Çelik ;2011-05-06;V\n", "person")
    address = _client(service, "3011 ab;12;a\n", "address")
    _, expected = refclient.pseudonymise(
        service.url,
        service.ca,
        org.cert,
        org.key,
        [b"nl-person:celik:2011-05-06:v", b"nl-address:3011AB:12:A"],
    )
    assert [person.stdout.strip(), address.stdout.strip()] == [
        refclient.b64url_encode(n) for n in expected
    ]


def test_bad_bsn_names_the_line_not_the_number(service: RunningService) -> None:
    result = _client(service, "123456782\n123456789\n", "bsn")
    assert result.returncode == 2
    assert "line 2" in result.stderr and "11-proof" in result.stderr
    assert "123456789" not in result.stderr + result.stdout


def test_a_privacy_officer_gets_the_access_pdf(service: RunningService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = [sys.executable, "-m", "vir.client.cli", "--url", service.url]
    base += ["--dev-dir", str(service.dev)]
    register = subprocess.run(
        [*base, "--dev-org", "gp", "pseudonymise", "person", "--json"],
        input="Clitest;2014-05-06;v\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    import json

    from vir.client.connection import VirClient

    made = json.loads(register.stdout)
    with VirClient.from_dev("gp", service.dev, service.url) as gp:
        gp.register_signal(
            {
                "local_ref": "cli-access-1",
                "epoch": made["epoch"],
                "person": made["pseudonyms"][0],
                "professional": {"name": "Karim Bouali", "email": "k@example.nl"},
            }
        )
    out = tmp_path / "inzage.pdf"
    result = subprocess.run(
        [*base, "--dev-org", "privacy_officer", "access", "person", "--pdf", str(out)],
        input="Clitest;2014-05-06;v\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"%PDF")
    refused = subprocess.run(
        [*base, "--dev-org", "gp", "access", "person"],
        input="Clitest;2014-05-06;v\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and "403" in refused.stderr
    assert "Clitest" not in refused.stderr
