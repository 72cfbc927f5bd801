"""The key holder as a service of its own (``vir keyholder serve``), beside the index.

* The index has no evaluate endpoint (404), holds no OPRF key material (not in its keys
  directory, its process environment or its database), and keeps working with the key
  holder stopped: pseudonyms made earlier still register and match.
* The key holder evaluates (its answers unblind to ``k·H(x)`` for the key in its key
  file, the pseudonym the index matches on), lists its epochs, limits every
  organisation per second and per hour across all its processes on one database, and
  logs each evaluation with its count, never an element.
* Threshold (``2-of-3``): three key holders with Shamir shares; any two answers combine
  to the pseudonym of the key the shares reconstruct; one holder down changes nothing,
  two down is a clear ClientError.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, select
from sqlalchemy.pool import NullPool
from support import postgres, refclient
from support.https import Reply, request
from support.key_forms import written_forms
from support.service import (
    Org,
    RunningService,
    keyholder_listing,
    kill_process,
    start_service,
)
from support.signal_body import signal_body

from vir.client.canonical import nl_bsn
from vir.client.connection import ClientError, ServiceError
from vir.client.demo import made_up_bsn
from vir.crypto import threshold
from vir.store.tables import Base

pytestmark = pytest.mark.integration

EVALUATE = "/v1/oprf/evaluate"
EPOCHS = "/v1/oprf/epochs"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    # An index of its own interpreter: a test reads its command line and environment.
    running = start_service(tmp_path_factory.mktemp("keyholder"), fresh=True)
    yield running
    running.stop()


def _evaluate(port: int, service: RunningService, org: Org, elements: list[bytes]) -> Reply:
    body = json.dumps({"blinded_elements": [refclient.b64url_encode(e) for e in elements]})
    return request(port, service.ca, "POST", EVALUATE, body.encode(), (org.cert, org.key))


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _key_file(keys_dir: Path, epoch: int = 1) -> tuple[bytes, int | None]:
    """(secret, share index) of a key holder's plain key file, read as the test's own."""
    lines = (keys_dir / f"oprf-epoch-{epoch}.key").read_text(encoding="ascii").split()
    secret = bytes.fromhex(lines[0])
    index = int(lines[2]) if len(lines) == 3 and lines[1] == "share-index" else None
    return secret, index


def _pseudonym(secret: bytes, canonical: str) -> str:
    """``k·H(x)`` by the reference client's own arithmetic (RFC 9497's first step of
    Finalize, without blinding), base64url as on the wire."""
    point = refclient.scalar_mult(
        int.from_bytes(secret, "little"), refclient.hash_to_group(canonical.encode())
    )
    return refclient.b64url_encode(refclient.encode(point))


def _values(url: str) -> Iterator[bytes]:
    """Every text and binary value of every row of every table vir declares."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                for row in connection.execute(select(table)):
                    for value in row:
                        if isinstance(value, str):
                            yield value.encode()
                        elif isinstance(value, bytes | bytearray | memoryview):
                            yield bytes(value)
    finally:
        engine.dispose()


def _dump(service: RunningService) -> bytes:
    """The index's database as bytes: its files (SQLite), or pg_dump's output."""
    if not postgres.on_postgresql():
        path = Path(service.database_url.removeprefix("sqlite:///"))
        files = [path, *path.parent.glob(path.name + "-*")]  # -wal, -shm, -journal
        return b"".join(f.read_bytes() for f in files if f.is_file())
    bindir = postgres.find_bindir()
    if bindir is None or not (bindir / "pg_dump").exists():
        return b""  # an external server without client binaries: the rows are searched
    url = make_url(service.database_url).set(drivername="postgresql")
    dumped = subprocess.run(
        [str(bindir / "pg_dump"), "--data-only", "--dbname", url.render_as_string(False)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dumped.stdout


# ---------------------------------------------------------------------------------------
# The index: no evaluation, no key, and independent of the key holder being up
# ---------------------------------------------------------------------------------------


def test_the_index_has_no_evaluate_endpoint_and_the_key_holder_answers_k_h_x(
    deployment: RunningService,
) -> None:
    school = deployment.org("education")
    element = refclient.blind(b"nl-bsn:123456782", 5)
    at_index = _evaluate(deployment.port, deployment, school, [element])
    assert at_index.status == 404
    assert at_index.headers["content-type"] == "application/problem+json"
    assert _evaluate(deployment.keyholder_port, deployment, school, [element]).status == 200

    # The key holder's answer unblinds to k·H(x) for the key in its key file: through the
    # reference client, the project's client, and computed straight from the key.
    secret, share = _key_file(deployment.keyholder_keys_dir)
    assert share is None  # a single key holder holds the whole key
    canonical = nl_bsn(made_up_bsn())
    _epoch, (theirs,) = refclient.pseudonymise(
        deployment.keyholder_url, deployment.ca, school.cert, school.key, [canonical.encode()]
    )
    with deployment.client("education") as client:
        ours = client.pseudonymise([canonical])
        assert ours.epoch == 1
        assert (
            ours.pseudonyms == [refclient.b64url_encode(theirs)] == [_pseudonym(secret, canonical)]
        )
        # And it is what the index matches on.
        client.register_signal(signal_body("kh-404-school", ours.pseudonyms[0]))
    with deployment.client("gp") as gp:
        made = gp.pseudonymise([canonical])
        answer = gp.register_signal(signal_body("kh-404-gp", made.pseudonyms[0]))
    assert [(m["kind"], m["via"]) for m in answer["matches"]] == [("person", "person")]


def test_the_key_holder_lists_epoch_1_as_current(deployment: RunningService) -> None:
    school = deployment.org("education")
    reply = request(
        deployment.keyholder_port, deployment.ca, "GET", EPOCHS, cert=(school.cert, school.key)
    )
    assert reply.status == 200, reply.body
    listing = reply.json()
    assert listing["current"] == 1
    assert [(e["epoch"], e["state"]) for e in listing["epochs"]] == [(1, "current")]
    assert "retire_after" not in listing["epochs"][0]
    # Only over mutual TLS with a registered certificate; the index has no such route.
    assert request(deployment.keyholder_port, deployment.ca, "GET", EPOCHS).status == 401
    at_index = request(
        deployment.port, deployment.ca, "GET", EPOCHS, cert=(school.cert, school.key)
    )
    assert at_index.status == 404


def test_the_audit_log_counts_evaluations_and_never_holds_an_element(
    deployment: RunningService,
) -> None:
    youth_care = deployment.org("youth_care")
    sent = [refclient.blind(f"nl-bsn:{made_up_bsn()}".encode(), 1000 + i) for i in range(7)]
    before = len(deployment.keyholder_sql("SELECT seq FROM audit_entries"))
    replies = [
        _evaluate(deployment.keyholder_port, deployment, youth_care, sent[:3]),
        _evaluate(deployment.keyholder_port, deployment, youth_care, sent[3:]),
    ]
    assert [r.status for r in replies] == [200, 200]
    returned = [refclient.b64url_decode(e) for r in replies for e in r.json()["evaluated_elements"]]
    bodies = [
        bytes(b) for (b,) in deployment.keyholder_sql("SELECT body FROM audit_entries ORDER BY seq")
    ]
    mine = [json.loads(b) for b in bodies[before:]]
    assert [(e["action"], e["organisation"], e["objects"]) for e in mine] == [
        ("oprf.evaluate", youth_care.oin, {"elements": 3, "epoch": 1}),
        ("oprf.evaluate", youth_care.oin, {"elements": 4, "epoch": 1}),
    ]
    # No element sent or returned, in any form, in any entry of the key holder's log.
    for element in sent + returned:
        for form in (refclient.b64url_encode(element).encode(), element, element.hex().encode()):
            assert not any(form in body for body in bodies)
    assert "intact" in deployment.keyholder("audit", "verify").stdout
    # Exported with its signed checkpoint, and checked offline with the holder's key.
    export = deployment.root / "keyholder-audit.jsonl"
    assert "exported" in deployment.keyholder("audit", "export", "--out", str(export)).stdout
    verifier = deployment.keyholder("key").stdout.strip()
    checked = deployment.vir("audit", "verify", str(export), "--verifier-key", verifier)
    assert checked.stdout.startswith("vir: export verified: ")
    assert "signed by vir-dev/keyholder-log+" in checked.stdout
    exported = export.read_bytes()
    assert not any(refclient.b64url_encode(e).encode() in exported for e in sent + returned)


def test_the_index_holds_no_oprf_key_material(deployment: RunningService) -> None:
    # Some work first, so that the database and its files hold what a running index holds.
    with deployment.client("education") as school:
        made = school.pseudonymise([nl_bsn(made_up_bsn())])
        school.register_signal(signal_body("kh-nokey", made.pseudonyms[0]))
    secret, _share = _key_file(deployment.keyholder_keys_dir)
    forms = written_forms(secret)
    # The search finds key material where it is: in the key holder's key file.
    held = (deployment.keyholder_keys_dir / "oprf-epoch-1.key").read_bytes()
    assert any(form in held for form in forms)

    keys_dir = deployment.root / "keys"
    assert Path(deployment.env["VIR_KEYS_DIR"]) == keys_dir
    files = [p for p in keys_dir.rglob("*") if p.is_file()]
    assert files, "the index's keys directory holds its checkpoint key"
    assert not [p for p in files if p.name.startswith("oprf")]
    for path in files:
        content = path.read_bytes()
        assert not any(form in content for form in forms), path

    # The running index process: its environment and command line.
    pid = deployment.process.pid
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    assert b"VIR_KEYS_DIR=" in environ  # it is the index's environment
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"serve" in cmdline and b"keyholder" not in cmdline
    for where in (environ, cmdline):
        assert not any(form in where for form in forms)

    # Its database: the raw files (SQLite) or a dump (PostgreSQL), and every stored value.
    dump = _dump(deployment)
    assert dump or postgres.on_postgresql()
    if dump:  # it holds the data: a registered organisation, say
        assert deployment.org("education").oin.encode() in dump
    assert not any(form in dump for form in forms)
    for value in _values(deployment.database_url):
        assert not any(form in value for form in forms)


def test_the_index_works_on_with_the_key_holder_stopped(tmp_path: Path) -> None:
    service = start_service(tmp_path / "stopped")
    try:
        child = nl_bsn(made_up_bsn())
        with service.client("education") as school, service.client("gp") as gp:
            mine, theirs = school.pseudonymise([child]), gp.pseudonymise([child])
            for process in service.keyholders:
                kill_process(process)
            # The pseudonyms made earlier register and match as before.
            first = school.register_signal(signal_body("stopped-school", mine.pseudonyms[0]))
            assert first["matches"] == []
            reply = gp.request(
                "POST", "/v1/signals", signal_body("stopped-gp", theirs.pseudonyms[0])
            )
            assert reply.status_code == 201
            assert [(m["kind"], m["via"]) for m in reply.json()["matches"]] == [
                ("person", "person")
            ]
            assert [m["kind"] for m in school.matches("stopped-school")] == ["person"]
            ready = request(service.port, service.ca, "GET", "/ready", cert=service.monitor())
            assert ready.status == 200
            # Only new pseudonyms cannot be made: a clear error, not a crash.
            with pytest.raises(ClientError, match="key holder") as failed:
                school.pseudonymise([nl_bsn(made_up_bsn())])
            assert not isinstance(failed.value, ServiceError)
    finally:
        service.stop()


# ---------------------------------------------------------------------------------------
# Rate limit and hourly quota, across the key holder's processes
# ---------------------------------------------------------------------------------------

QUOTA = 64
BATCH = 8


def test_the_hourly_quota_holds_across_two_key_holder_processes(tmp_path: Path) -> None:
    service = start_service(tmp_path / "quota", VIR_KEYHOLDER_OPRF_PER_HOUR=str(QUOTA))
    try:
        ports = [service.keyholder_port, _port(service.start_keyholder_instance())]
        assert ports[0] != ports[1]
        gp = service.org("gp")
        element = refclient.blind(b"x", 9)
        # Batches of 8, alternately to each process: 8 batches spend the 64 of the hour,
        # half at each process. Were each counting its own, both would go on to 64.
        for n in range(QUOTA // BATCH):
            reply = _evaluate(ports[n % 2], service, gp, [element] * BATCH)
            assert reply.status == 200, (n, reply.body)
        for port in ports:  # the next one is refused at either process
            reply = _evaluate(port, service, gp, [element])
            assert reply.status == 429, reply.body
            assert int(reply.headers["retry-after"]) >= 1
            assert reply.headers["content-type"] == "application/problem+json"
            assert reply.json()["type"].endswith("rate-limited")
        # Per organisation: another one has its own quota.
        assert _evaluate(ports[1], service, service.org("education"), [element]).status == 200
        # Counted once: the log of the shared database holds exactly the 64 evaluated.
        entries = [
            json.loads(bytes(b))
            for (b,) in service.keyholder_sql("SELECT body FROM audit_entries ORDER BY seq")
        ]
        evaluated = [
            e["objects"]["elements"]
            for e in entries
            if e["action"] == "oprf.evaluate" and e["organisation"] == gp.oin
        ]
        assert sum(evaluated) == QUOTA and len(evaluated) == QUOTA // BATCH
    finally:
        service.stop()


def test_the_rate_per_second_holds_across_two_key_holder_processes(tmp_path: Path) -> None:
    service = start_service(
        tmp_path / "rate",
        VIR_KEYHOLDER_OPRF_RATE_PER_SECOND="0.01",
        VIR_KEYHOLDER_OPRF_BURST="64",
    )
    try:
        ports = [service.keyholder_port, _port(service.start_keyholder_instance())]
        gp = service.org("gp")
        element = refclient.blind(b"y", 3)
        assert _evaluate(ports[0], service, gp, [element] * 40).status == 200
        reply = _evaluate(ports[1], service, gp, [element] * 40)  # 80 > the burst of 64
        assert reply.status == 429, reply.body
        assert int(reply.headers["retry-after"]) >= 1
        assert _evaluate(ports[1], service, gp, [element] * 24).status == 200  # 64 in all
        assert _evaluate(ports[0], service, gp, [element]).status == 429
    finally:
        service.stop()


# ---------------------------------------------------------------------------------------
# Threshold: 2-of-3
# ---------------------------------------------------------------------------------------


def test_two_of_three_key_holders_give_the_pseudonym_of_the_shared_key(tmp_path: Path) -> None:
    service = start_service(tmp_path / "threshold", threshold="2-of-3")
    try:
        holders = keyholder_listing(service.root)
        assert len(holders) == len(service.keyholders) == 3
        endpoints = json.loads((service.dev / "endpoints.json").read_text())
        assert endpoints["threshold"] == 2 and endpoints["keyholders"] == service.keyholder_urls

        # Each holder's key file holds a share, never the key; any two reconstruct k.
        shares = []
        for holder in holders:
            secret, index = _key_file(Path(holder["env"]["VIR_KEYHOLDER_KEYS_DIR"]))
            assert index is not None
            shares.append(threshold.Share(index, secret))
        assert sorted(s.index for s in shares) == [1, 2, 3]
        key = threshold.reconstruct(shares[:2])
        assert threshold.reconstruct(shares[1:]) == key == threshold.reconstruct(shares[::2])
        assert key not in {s.secret for s in shares}

        canonical = nl_bsn(made_up_bsn())
        expected = _pseudonym(key, canonical)
        school = service.org("education")
        # One holder alone answers with its share: k_i·B, not k·B.
        blind = refclient.random_blind()
        answer = _evaluate(
            service.keyholder_port, service, school, [refclient.blind(canonical.encode(), blind)]
        ).json()
        assert answer["share_index"] == shares[0].index and answer["epoch"] == 1
        (alone,) = answer["evaluated_elements"]
        unblinded = refclient.unblind(blind, refclient.b64url_decode(alone))
        assert refclient.b64url_encode(unblinded) != expected
        with pytest.raises(refclient.ResponseError, match="share"):
            refclient.pseudonymise(
                service.keyholder_url, service.ca, school.cert, school.key, [canonical.encode()]
            )

        with service.client("education") as client:
            assert client.threshold == 2
            made = client.pseudonymise([canonical])
            assert made.pseudonyms == [expected]
            client.register_signal(signal_body("thr-school", made.pseudonyms[0]))

            # One key holder down: the other two answer, the same pseudonym.
            kill_process(service.keyholders[0])
            assert client.pseudonymise([canonical]).pseudonyms == [expected]
            with service.client("gp") as gp:
                answer = gp.register_signal(
                    signal_body("thr-gp", gp.pseudonymise([canonical]).pseudonyms[0])
                )
            assert [(m["kind"], m["via"]) for m in answer["matches"]] == [("person", "person")]

            # Two down: one share is not enough; a clear error.
            kill_process(service.keyholders[1])
            with pytest.raises(ClientError, match="1 of the 2 key holder answers") as failed:
                client.pseudonymise([canonical])
            assert not isinstance(failed.value, ServiceError)
    finally:
        service.stop()


def test_hsm_import_refuses_while_the_key_holder_serves(tmp_path: Path) -> None:
    """The operator's walk: hsm-import on a live key holder made every evaluation answer
    500 ("... is wrapped by an HSM; set VIR_PKCS11_MODULE") until a restart. It now
    refuses while a key holder serves from the keys folder, and changes nothing."""
    service = start_service(tmp_path / "live")
    try:
        keys = Path(service.keyholder_env["VIR_KEYHOLDER_KEYS_DIR"])
        before = sorted(p.name for p in keys.iterdir())
        refused = service.keyholder("hsm-import", check=False)
        assert refused.returncode != 0
        assert (
            "a key holder is serving from" in refused.stderr and "stop it first" in refused.stderr
        )
        assert sorted(p.name for p in keys.iterdir()) == before
        with service.client("education") as school:
            assert school.pseudonymise([nl_bsn(made_up_bsn())]).pseudonyms
        for process in service.keyholders:
            kill_process(process)
        # Stopped (even killed): the lock is gone with the process; the command goes on
        # to its own checks (no HSM configured here).
        stopped = service.keyholder("hsm-import", check=False)
        assert "serving" not in stopped.stderr and "VIR_PKCS11_MODULE" in stopped.stderr
    finally:
        service.stop()
