"""The registration figure's ceiling (``bench/ceiling_app.py``): the real client against
two bare servers. What it measures is only a ceiling if those servers do the protocol's
necessary work: the key holder multiplies by one fixed key (the same identity gives the
same pseudonym, another a different one, each a valid element), the index stores each
registration durably (one at a time and in a batch, as ``vir-client import`` sends
them), and both take only clients with a certificate of the client CA, as vir does."""

from __future__ import annotations

import contextlib
import sqlite3
import ssl
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import harness
from support.service import start_service

from vir.client import VirClient, nl_bsn
from vir.crypto import oprf
from vir.domain.encoding import b64url_decode


def test_the_bare_servers_pseudonymise_store_and_ask_for_a_certificate(tmp_path: Path) -> None:
    service = start_service(tmp_path / "service", keyholders=False)
    try:
        ceiling = harness.start_ceiling(tmp_path / "ceiling", service)
        try:
            org = service.org("education")
            with VirClient(
                ceiling.index_url,
                Path(service.ca),
                Path(org.cert),
                Path(org.key),
                keyholders=[ceiling.keyholder_url],
            ) as client:
                made = client.pseudonymise(
                    [nl_bsn("111222333"), nl_bsn("111222333"), nl_bsn("123456782")]
                )
                one, again, other = made.pseudonyms
                assert one == again != other
                assert all(oprf.is_valid_element(b64url_decode(p)) for p in (one, other))
                # keyed: not the identity's bare hash (what an echoing key holder gives)
                unkeyed = oprf.hash_to_group(nl_bsn("111222333").encode("utf-8"))
                assert b64url_decode(one) != unkeyed
                for ref, person in (("c-1", one), ("c-2", other), ("c-3", one)):
                    answer = client.register_signal(
                        {
                            "local_ref": ref,
                            "epoch": made.epoch,
                            "person": person,
                            "parents": [other],
                            "professional": harness.PROFESSIONAL,
                        }
                    )
                    assert answer["local_ref"] == ref
                batch = client.register_signals(
                    [
                        {
                            "local_ref": f"b-{i}",
                            "epoch": made.epoch,
                            "person": person,
                            "professional": harness.PROFESSIONAL,
                        }
                        for i, person in enumerate((one, other))
                    ]
                )
                assert [r["status"] for r in batch] == [201, 201]
            with contextlib.closing(sqlite3.connect(tmp_path / "ceiling" / "ceiling.db")) as db:
                assert db.execute("SELECT count(*) FROM signals").fetchone() == (5,)
            anonymous = ssl.create_default_context(cafile=service.ca)
            for url in (ceiling.keyholder_url, ceiling.index_url):
                with pytest.raises(httpx.HTTPError):
                    httpx.post(f"{url}/v1/signals", json={}, verify=anonymous)
        finally:
            ceiling.terminate()
    finally:
        service.stop()
