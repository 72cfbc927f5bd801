"""``vir-client`` reads identities from stdin and prints pseudonyms, made at the key
holder(s) of ``endpoints.json`` (or ``--keyholder``); an address officer puts an
institutional address on the index's exclusion list."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

from support import launch, refclient
from support.service import RunningService

from vir.client.canonical import nl_address, nl_bsn
from vir.client.demo import made_up_bsn


def _client(service: RunningService, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return launch.run(
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
        service.keyholder_url,
        service.ca,
        org.cert,
        org.key,
        [b"nl-bsn:123456782", b"nl-bsn:111222333"],
    )
    assert result.stdout.split() == [refclient.b64url_encode(n) for n in expected]


def test_person_and_address_use_the_canonical_forms(service: RunningService) -> None:
    org = service.org("youth_care")
    person = _client(service, "  Çelik ;2011-05-06;V\n", "person")
    address = _client(service, "3011 ab;12;a\n", "address")
    _, expected = refclient.pseudonymise(
        service.keyholder_url,
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
    register = launch.run(
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
    result = launch.run(
        [*base, "--dev-org", "privacy_officer", "access", "person", "--pdf", str(out)],
        input="Clitest;2014-05-06;v\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"%PDF")
    # What the index holds on a child: only its owner may read the file, whatever the
    # umask (the test runs with the usual 022), and nothing else is left beside it.
    assert out.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    refused = launch.run(
        [*base, "--dev-org", "gp", "access", "person"],
        input="Clitest;2014-05-06;v\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and "403" in refused.stderr
    assert "Clitest" not in refused.stderr


def _vir_client(
    service: RunningService, stdin: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """``vir-client --dev-dir DEV ARGS``: the index and key holders of endpoints.json."""
    return launch.run(
        [sys.executable, "-m", "vir.client.cli", "--dev-dir", str(service.dev), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_key_holder_can_be_named_on_the_command_line(service: RunningService) -> None:
    org = service.org("gp")
    args = ["--url", service.url, "--ca", service.ca, "--cert", org.cert, "--key", org.key]
    given = _vir_client(
        service, "123456782\n", *args, "--keyholder", service.keyholder_url, "pseudonymise", "bsn"
    )
    assert given.returncode == 0, given.stderr
    from_endpoints = _vir_client(service, "123456782\n", "--dev-org", "gp", "pseudonymise", "bsn")
    assert from_endpoints.returncode == 0, from_endpoints.stderr
    assert given.stdout == from_endpoints.stdout
    # A key holder that does not answer: a clear error, no pseudonym.
    nobody = "https://127.0.0.1:9"
    failed = _vir_client(
        service, "123456782\n", "--dev-org", "gp", "--keyholder", nobody, "pseudonymise", "bsn"
    )
    assert failed.returncode == 1 and failed.stdout == ""
    assert "key holder" in failed.stderr


def _signal(ref: str, person: str, address: str) -> dict[str, Any]:
    return {
        "local_ref": ref,
        "epoch": 1,
        "person": person,
        "address": address,
        "remove_on": (dt.date.today() + dt.timedelta(days=300)).isoformat(),
        "professional": {"name": "Sanne de Jong", "email": "s.dejong@x.example"},
    }


def _household_matches(service: RunningService, address: str, tag: str) -> list[Any]:
    """A school and a GP each register a different child at ``address``; the matches of
    the school's signal (a shared address makes a household match: test_signals_api)."""
    with service.client("education") as school, service.client("gp") as gp:
        made = school.pseudonymise([nl_bsn(made_up_bsn()), address])
        child, home = made.pseudonyms
        school.register_signal(_signal(f"{tag}-school", child, home))
        made = gp.pseudonymise([nl_bsn(made_up_bsn()), address])
        child, home = made.pseudonyms
        gp.register_signal(_signal(f"{tag}-gp", child, home))
        return school.matches(f"{tag}-school")


def test_an_excluded_address_makes_no_household_match(service: RunningService) -> None:
    # Another address, not excluded: the two children are one household.
    (matched,) = _household_matches(service, nl_address("3014 GH", "21", ""), "addr-open")
    assert (matched["kind"], matched["via"]) == ("household", "address")

    # The municipality's address officer excludes a shelter, with only its client: the
    # address is pseudonymised at the key holder, the index gets the pseudonym.
    excluded = _vir_client(
        service,
        "3014 GH;23;\n",
        "--dev-org",
        "address_officer",
        "address",
        "exclude",
        "--label",
        "Opvanghuis",
    )
    assert excluded.returncode == 0, excluded.stderr
    assert "Opvanghuis" in excluded.stdout
    listed = _vir_client(service, "", "--dev-org", "address_officer", "address", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Opvanghuis" in listed.stdout
    assert "3014" not in listed.stdout  # a label, never the address
    assert _household_matches(service, nl_address("3014 GH", "23", ""), "addr-shelter") == []
    # Only an address officer keeps the list.
    refused = _vir_client(
        service, "3014 GH;25;\n", "--dev-org", "gp", "address", "exclude", "--label", "X"
    )
    assert refused.returncode == 1 and "403" in refused.stderr
    with service.client("address_officer") as officer:
        labels = [item["label"] for item in officer.address_exclusions()]
    assert labels.count("Opvanghuis") == 1 and "X" not in labels


def _all_notifications(client: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        items, cursor = client.notifications(cursor)
        if not items:
            return found
        found += items


def test_an_address_taken_off_the_list_matches_again(service: RunningService) -> None:
    """``vir-client address include``: the household match through the address comes back
    for the signals registered while it was excluded, and both reporters are told."""

    def officer(command: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return _vir_client(
            service, "3014 GH;27;\n", "--dev-org", "address_officer", "address", command, *extra
        )

    home = nl_address("3014 GH", "27", "")
    assert officer("exclude", "--label", "Opvang Noord").returncode == 0
    assert _household_matches(service, home, "addr-back") == []
    included = officer("include")
    assert included.returncode == 0, included.stderr
    assert "3014" not in included.stdout + included.stderr
    with service.client("education") as school, service.client("gp") as gp:
        (matched,) = school.matches("addr-back-school")
        assert (matched["kind"], matched["via"]) == ("household", "address")
        (for_gp,) = gp.matches("addr-back-gp")
        assert for_gp["id"] == matched["id"]
        for client in (school, gp):
            found = _all_notifications(client)
            about = [n["type"] for n in found if n["match"]["id"] == matched["id"]]
            assert about == ["match.created"]
    # Not on the list any more: a second time is refused, saying nothing of the address.
    again = officer("include")
    assert again.returncode == 1 and "404" in again.stderr and "3014" not in again.stderr
    refused = _vir_client(service, "3014 GH;27;\n", "--dev-org", "gp", "address", "include")
    assert refused.returncode == 1 and "403" in refused.stderr


def test_the_follow_up_officer_uses_its_own_certificate(service: RunningService) -> None:
    """Over mutual TLS with the municipality's follow_up_officer certificate: its list,
    a reminder for an unknown match, and a reporter refused the officer's list."""
    listed = _vir_client(service, "", "--dev-org", "follow_up_officer", "follow-up", "overdue")
    assert listed.returncode == 0, listed.stderr
    answer = json.loads(listed.stdout)
    assert (answer["region"], answer["days"]) == ("Rotterdam", 14)
    assert isinstance(answer["items"], list)
    unknown = _vir_client(
        service,
        "",
        "--dev-org",
        "follow_up_officer",
        "follow-up",
        "remind",
        "00000000-0000-4000-8000-000000000000",
    )
    assert unknown.returncode == 1 and "404" in unknown.stderr
    refused = _vir_client(service, "", "--dev-org", "gp", "follow-up", "overdue")
    assert refused.returncode == 1 and "403" in refused.stderr
    # The officer's certificate opens nothing else.
    signals = _vir_client(service, "", "--dev-org", "follow_up_officer", "organisations")
    assert signals.returncode == 1 and "403" in signals.stderr
