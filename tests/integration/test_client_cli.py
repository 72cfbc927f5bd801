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
