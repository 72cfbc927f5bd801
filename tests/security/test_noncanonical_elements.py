"""Non-canonical ristretto255 encodings, tried the way an attacker would (issue 11, point 1).

A pseudonym is compared as bytes everywhere (unique indexes, match keys, erasure by
person), so a second encoding of one element is a second person to vir. libsodium
1.0.18 accepts an encoding with bit 255 set; ``00…80`` even passed for the identity.
Every endpoint and command that takes an element must refuse every encoding but the
canonical one (API-CONTRACT.md, Pseudonyms: 422), naming the field and never echoing
the value, and ``vir db check`` must find such values already stored. The key holder
(``POST /v1/oprf/evaluate``) is held to the same rule as the index.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update
from support.clirun import Ran, run_vir
from support.inapp import InApp, in_app, in_keyholder
from support.instore import ORGS, T0
from support.world import MUNICIPALITY, VEILIG_THUIS

from vir import logs
from vir.api.identity import require_caller
from vir.client.connection import ProtocolError, VirClient
from vir.crypto import oprf
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.organisations import Role
from vir.keyholder.routes import require_evaluator
from vir.services.identity import Caller
from vir.services.onboarding import register_organisation
from vir.settings import Settings
from vir.store.tables import AuditEntryRow, ExcludedAddressRow, SignalRow

P = 2**255 - 19
GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
IDENTITY_BIT_255 = bytes(31) + b"\x80"
REPORTER = Caller(ORGS[0], "0" * 64)
OTHER_REPORTER = Caller(ORGS[1], "1" * 64)
VT = Caller(VEILIG_THUIS, "e" * 64)
OFFICER = Caller(MUNICIPALITY, "f" * 64, Role.PRIVACY_OFFICER)
ADDRESS_OFFICER = Caller(MUNICIPALITY, "a" * 64, Role.ADDRESS_OFFICER)
OTHER = b64url_encode(oprf.hash_to_group(b"nl-bsn:999999990"))

points = st.integers(min_value=1, max_value=oprf.GROUP_ORDER - 1).map(
    lambda k: oprf.scalar_mult(oprf.scalar_from_int(k), GENERATOR)
)


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def variants(canonical: bytes) -> dict[str, bytes]:
    """Encodings that a lax decoder takes for the same element, or tries to: bit 255 set,
    ``s + p``, and ``-s`` (the same element where a decoder takes |s|), also with bit 255."""
    s = int.from_bytes(canonical, "little")
    return {
        "bit 255 set": _le(s | 1 << 255),
        "s + p": _le(s + P),
        "p - s": _le(P - s),
        "p - s, bit 255 set": _le((P - s) | 1 << 255),
    }


def with_bit_255(element: bytes) -> bytes:
    return element[:31] + bytes([element[31] | 0x80])


def fresh() -> bytes:
    return oprf.hash_to_group(f"nl-bsn:{uuid.uuid4()}".encode())


def act_as(app: InApp, caller: Caller) -> None:
    app.app.dependency_overrides[require_caller] = lambda: caller
    app.app.dependency_overrides[require_evaluator] = lambda: caller


def epoch_of(app: InApp) -> int:
    return app.epoch


def signal(epoch: int, person: str, **extra: Any) -> dict[str, Any]:
    return {
        "local_ref": f"SEC-{uuid.uuid4().hex[:12]}",
        "epoch": epoch,
        "person": person,
        "professional": {"name": "Anna de Vries", "email": "anna@school.example"},
        **extra,
    }


@dataclass(frozen=True)
class Endpoint:
    """One place an element enters: who calls, what is sent with ``text`` in ``field``,
    and the statuses a canonical element gets (it passes validation and goes on);
    ``at_keyholder``: the key holder's, not the index's."""

    name: str
    caller: Caller
    path: str
    field: str
    body: Callable[[int, str], dict[str, Any]]
    accepted: tuple[int, ...]
    at_keyholder: bool = False


ENDPOINTS = [
    Endpoint(
        "evaluate",
        REPORTER,
        "/v1/oprf/evaluate",
        "blinded_elements[1]",
        lambda _epoch, text: {"blinded_elements": [OTHER, text]},
        (200,),
        at_keyholder=True,
    ),
    Endpoint(
        "signal person",
        REPORTER,
        "/v1/signals",
        "person",
        lambda epoch, text: signal(epoch, text),
        (201, 409),  # 409: Hypothesis drew a person this organisation already reported
    ),
    Endpoint(
        "signal parent",
        REPORTER,
        "/v1/signals",
        "parents[1]",
        lambda epoch, text: signal(epoch, b64url_encode(fresh()), parents=[OTHER, text]),
        (201,),
    ),
    Endpoint(
        "signal address",
        REPORTER,
        "/v1/signals",
        "address",
        lambda epoch, text: signal(epoch, b64url_encode(fresh()), address=text),
        (201,),
    ),
    Endpoint(
        "consultation",
        VT,
        "/v1/consultations",
        "person",
        lambda epoch, text: {"epoch": epoch, "person": text, "purpose": "triage"},
        (200,),
    ),
    Endpoint(
        "access request",
        OFFICER,
        "/v1/privacy/access",
        "person",
        lambda epoch, text: {"epoch": epoch, "person": text},
        (200, 404),
    ),
    Endpoint(
        "erasure",
        OFFICER,
        "/v1/privacy/erasure",
        "person",
        lambda epoch, text: {"epoch": epoch, "person": text, "kind": "erasure"},
        (200, 404),
    ),
    Endpoint(
        "death notice",
        OFFICER,
        "/v1/privacy/deaths",
        "person",
        lambda epoch, text: {"epoch": epoch, "person": text},
        (200, 404),
    ),
    Endpoint(
        "address exclusion",
        ADDRESS_OFFICER,
        "/v1/address-exclusions",
        "address",
        lambda epoch, text: {"epoch": epoch, "address": text, "label": "Opvanghuis Zuid"},
        (204, 409),  # 409: Hypothesis drew an address excluded already
    ),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InApp]:
    # Rate limits out of the way (those this version has): the controls make many calls.
    limits = {name: 1_000_000 for name in Settings.model_fields if name.endswith("_burst")}
    with in_app(tmp_path_factory.mktemp("security"), **limits) as made:
        for org in (MUNICIPALITY, VEILIG_THUIS):
            register_organisation(made.app.state.services.db, org, T0)
        yield made


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InApp]:
    """The key holder, its rate limits out of the way too."""
    limits = {"oprf_burst": 1_000_000, "oprf_per_hour": 1_000_000}
    with in_keyholder(tmp_path_factory.mktemp("security-keyholder"), **limits) as made:
        yield made


@pytest.fixture
def fresh_app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as made:
        # Its callers' organisations are registered, as authentication requires (the
        # privacy officer's writes read their organisation's participation).
        for org in (MUNICIPALITY, VEILIG_THUIS):
            register_organisation(made.app.state.services.db, org, T0)
        yield made


@pytest.fixture
def fresh_holder(tmp_path: Path) -> Iterator[InApp]:
    with in_keyholder(tmp_path) as made:
        yield made


@contextlib.contextmanager
def logged() -> Iterator[io.StringIO]:
    """Everything vir logs while inside, at every level, formatted as ``vir serve`` does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger("vir")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def audit_after(app: InApp, seq: int) -> list[bytes]:
    with app.app.state.services.db.read() as session:
        rows = session.scalars(select(AuditEntryRow.body).where(AuditEntryRow.seq > seq))
        return [bytes(body) for body in rows]


def audit_head(app: InApp) -> int:
    with app.app.state.services.db.read() as session:
        return max(session.scalars(select(AuditEntryRow.seq)), default=0)


def traces(value: bytes) -> list[bytes]:
    """The forms a leaked element could take in a text: base64url, hex, raw."""
    return [b64url_encode(value).encode(), value.hex().encode(), value]


def assert_refused(reply: httpx.Response, field: str, value: bytes, label: str = "") -> None:
    assert reply.status_code == 422, (field, label, reply.status_code)
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["type"] == "urn:vir:problem:invalid-element"
    assert [error["field"] for error in problem["errors"]] == [field]
    assert field in problem["detail"]
    for trace in traces(value):
        assert trace not in reply.content


def post(app: InApp, caller: Caller, path: str, body: dict[str, Any]) -> httpx.Response:
    act_as(app, caller)
    return app.request("POST", path, json=body)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(point=points)
def test_every_other_encoding_of_a_point_is_refused(
    app: InApp, holder: InApp, endpoint: Endpoint, point: bytes
) -> None:
    epoch = epoch_of(app)
    if endpoint.at_keyholder:
        app = holder
    # The canonical encoding goes through: a refusal below is about the encoding alone.
    control = post(app, endpoint.caller, endpoint.path, endpoint.body(epoch, b64url_encode(point)))
    assert control.status_code in endpoint.accepted, (endpoint.name, control.status_code)
    head = audit_head(app)
    with logged() as log:
        for name, variant in variants(point).items():
            body = endpoint.body(epoch, b64url_encode(variant))
            reply = post(app, endpoint.caller, endpoint.path, body)
            assert_refused(reply, endpoint.field, variant, name)
    assert log.getvalue()  # something was logged: the search below is not over nothing
    written = log.getvalue().encode() + b"".join(audit_after(app, head))
    for variant in variants(point).values():
        for trace in traces(variant):
            assert trace not in written


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_the_identity_with_bit_255_is_refused(
    app: InApp, holder: InApp, endpoint: Endpoint
) -> None:
    target = holder if endpoint.at_keyholder else app
    for value in (IDENTITY_BIT_255, bytes(32)):
        body = endpoint.body(epoch_of(app), b64url_encode(value))
        assert_refused(post(target, endpoint.caller, endpoint.path, body), endpoint.field, value)


def run_cli(app: InApp, *args: str, stdin: str = "") -> Ran:
    """``vir ARGS`` in this process, on the app's database (the commands here need no key)."""
    return run_vir(app.app.state.services.db, *args, stdin=stdin)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(point=points)
def test_the_commands_refuse_every_other_encoding(app: InApp, point: bytes) -> None:
    text = b64url_encode(point)
    assert run_cli(app, "person", "deceased", stdin=text + "\n").code == 0  # nothing held
    # Letters only: a label may hold no run of eight digits (vir.domain.addresses).
    label = "shelter " + uuid.uuid4().hex[:8].translate(str.maketrans("0123456789", "ghijklmnop"))
    # The pseudonym on standard input: never an argument (shell history, process lists).
    epoch = f"--epoch={epoch_of(app)}"
    control = run_cli(app, "address", "exclude", "--label", label, epoch, stdin=text + "\n")
    # "already excluded": Hypothesis drew this point before; it got past the check then too.
    assert control.code == 0 or "already excluded" in control.err
    for name, variant in variants(point).items():
        variant_text = b64url_encode(variant)
        death = run_cli(app, "person", "deceased", stdin=f"{text}\n{variant_text}\n")
        assert death.code == 2 and "line 2" in death.err, name
        excluded = run_cli(
            app, "address", "exclude", "--label", label + "x", epoch, stdin=variant_text + "\n"
        )
        assert excluded.code == 2 and "pseudonym" in excluded.err, name
        for ran in (death, excluded):
            for trace in traces(variant)[:2]:
                assert trace.decode() not in ran.out + ran.err, name


# The attacks of the report, one by one. "Before" is what libsodium 1.0.18's check let
# through; each test fails on that check.


def test_a_top_bit_variant_of_a_reported_person_is_no_new_signal(fresh_app: InApp) -> None:
    epoch, kim = epoch_of(fresh_app), fresh()
    first = post(fresh_app, REPORTER, "/v1/signals", signal(epoch, b64url_encode(kim)))
    assert first.status_code == 201
    variant = signal(epoch, b64url_encode(with_bit_255(kim)))
    again = post(fresh_app, REPORTER, "/v1/signals", variant)
    # Before: 201 and a second signal on Kim. The contract refuses bit 255 as an invalid
    # element (422), which comes before the duplicate check (409): no second signal.
    assert_refused(again, "person", with_bit_255(kim))
    act_as(fresh_app, REPORTER)
    assert len(fresh_app.request("GET", "/v1/signals").json()["items"]) == 1


def test_two_organisations_cannot_match_on_the_identity(fresh_app: InApp) -> None:
    epoch = epoch_of(fresh_app)
    for caller in (REPORTER, OTHER_REPORTER):
        for value in (IDENTITY_BIT_255, bytes(32)):
            reply = post(fresh_app, caller, "/v1/signals", signal(epoch, b64url_encode(value)))
            assert_refused(reply, "person", value)
    with fresh_app.app.state.services.db.read() as session:
        assert session.scalars(select(SignalRow.id)).all() == []


def test_a_variant_makes_no_match_with_the_canonical_pseudonym(fresh_app: InApp) -> None:
    epoch, kim = epoch_of(fresh_app), fresh()
    first = post(fresh_app, REPORTER, "/v1/signals", signal(epoch, b64url_encode(kim)))
    assert first.status_code == 201 and first.json()["matches"] == []
    second = post(
        fresh_app, OTHER_REPORTER, "/v1/signals", signal(epoch, b64url_encode(with_bit_255(kim)))
    )
    assert_refused(second, "person", with_bit_255(kim))
    act_as(fresh_app, REPORTER)
    ref = first.json()["local_ref"]
    assert (
        fresh_app.request("GET", "/v1/matches", params={"local_ref": ref}).json()["matches"] == []
    )
    # The control: the canonical pseudonym does match.
    third = post(fresh_app, OTHER_REPORTER, "/v1/signals", signal(epoch, b64url_encode(kim)))
    assert [m["kind"] for m in third.json()["matches"]] == ["person"]


def test_a_parent_that_is_the_person_in_disguise_is_refused(fresh_app: InApp) -> None:
    epoch, kim = epoch_of(fresh_app), fresh()
    for disguise in variants(kim).values():
        body = signal(epoch, b64url_encode(kim), parents=[b64url_encode(disguise)])
        assert_refused(post(fresh_app, REPORTER, "/v1/signals", body), "parents[0]", disguise)
    plain = signal(epoch, b64url_encode(kim), parents=[b64url_encode(kim)])
    assert post(fresh_app, REPORTER, "/v1/signals", plain).status_code == 422


def test_a_death_notice_reaches_every_signal_on_the_person(fresh_app: InApp) -> None:
    """No signal can be registered under a variant, so the canonical notice finds them all;
    a notice given as a variant is refused rather than answered 'nothing held'."""
    epoch, kim = epoch_of(fresh_app), fresh()
    for caller in (REPORTER, OTHER_REPORTER):
        assert post(fresh_app, caller, "/v1/signals", signal(epoch, b64url_encode(kim))).is_success
        variant = signal(epoch, b64url_encode(with_bit_255(kim)))
        assert post(fresh_app, caller, "/v1/signals", variant).status_code == 422
    notice = {"epoch": epoch, "person": b64url_encode(with_bit_255(kim))}
    assert_refused(
        post(fresh_app, OFFICER, "/v1/privacy/deaths", notice), "person", with_bit_255(kim)
    )
    notice["person"] = b64url_encode(kim)
    assert len(post(fresh_app, OFFICER, "/v1/privacy/deaths", notice).json()["erased"]) == 2
    with fresh_app.app.state.services.db.read() as session:
        assert session.scalars(select(SignalRow.id)).all() == []


def test_evaluate_refuses_bit_255(fresh_holder: InApp) -> None:
    blinded = oprf.blind(b"nl-bsn:123456782")[1]
    act_as(fresh_holder, REPORTER)
    good = fresh_holder.request("POST", "/v1/oprf/evaluate", json={"blinded_elements": [OTHER]})
    assert good.status_code == 200
    reply = fresh_holder.request(
        "POST",
        "/v1/oprf/evaluate",
        json={"blinded_elements": [b64url_encode(with_bit_255(blinded))]},
    )
    assert_refused(reply, "blinded_elements[0]", with_bit_255(blinded))


@pytest.mark.parametrize("disguise", ["bit 255 set", "s + p", "p - s", "the identity"])
def test_the_client_refuses_a_non_canonical_evaluated_element(disguise: str) -> None:
    """A key holder (or whoever sits in its place) answering with another encoding of
    ``k·B``, or with the identity, gets no pseudonym out of the client."""
    key = oprf.random_scalar()

    def key_holder(request: httpx.Request) -> httpx.Response:
        blinded = json.loads(request.content)["blinded_elements"]
        evaluated = [oprf.evaluate(key, b64url_decode_strict(b)) for b in blinded]
        if disguise == "the identity":
            answer = [IDENTITY_BIT_255 for _ in evaluated]
        else:
            answer = [variants(e)[disguise] for e in evaluated]
        return httpx.Response(
            200, json={"epoch": 1, "evaluated_elements": [b64url_encode(a) for a in answer]}
        )

    def index(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the index was called: {request.url}")

    client = VirClient.__new__(VirClient)
    client._http = httpx.Client(transport=httpx.MockTransport(index), base_url="http://vir")
    client._holders = (
        httpx.Client(transport=httpx.MockTransport(key_holder), base_url="http://keyholder"),
    )
    with client, pytest.raises(ProtocolError, match="invalid element"):
        client.pseudonymise(["nl-bsn:123456782"])


def b64url_decode_strict(text: str) -> bytes:
    decoded = b64url_decode(text)
    assert decoded is not None
    return decoded


# vir db check: what an upgrade finds already stored.


def _populate(app: InApp) -> bytes:
    """Signals with a parent and an address at two organisations (so a match and its key
    exist); returns the person's pseudonym."""
    epoch, kim = epoch_of(app), fresh()
    extra = {"parents": [b64url_encode(fresh())], "address": b64url_encode(fresh())}
    for caller in (REPORTER, OTHER_REPORTER):
        reply = post(app, caller, "/v1/signals", signal(epoch, b64url_encode(kim), **extra))
        assert reply.status_code == 201
    return kim


COLUMNS = [
    "signals.person",
    "signals.address",
    "signal_parents.parent",
    "archived_signals.person",
    "excluded_addresses.address",
    "matches.key",
]


def test_db_check_passes_a_clean_store(fresh_app: InApp) -> None:
    _populate(fresh_app)
    ran = run_cli(fresh_app, "db", "check")
    assert ran.code == 0, ran.err
    for column in COLUMNS:
        assert f"{column}: 0 not canonical of " in ran.out
    assert "signals.person: 0 not canonical of 2" in ran.out
    assert "matches.key: 0 not canonical of " in ran.out


def test_db_check_counts_planted_non_canonical_pseudonyms(fresh_app: InApp) -> None:
    kim = _populate(fresh_app)
    planted = with_bit_255(kim)
    with fresh_app.app.state.services.db.write() as session:
        session.execute(
            update(SignalRow).where(SignalRow.oin == REPORTER.oin).values(person=planted)
        )
        session.execute(
            insert(ExcludedAddressRow).values(
                address=IDENTITY_BIT_255, label="planted", created_at=T0
            )
        )
    ran = run_cli(fresh_app, "db", "check", "--batch", "1")
    assert ran.code == 1
    assert "signals.person: 1 not canonical of 2" in ran.out
    assert "excluded_addresses.address: 1 not canonical of 1" in ran.out
    assert "signal_parents.parent: 0 not canonical of 2" in ran.out
    assert "vir: checking signals.person: 2/2" in ran.err  # progress, a line a batch
    for value in (planted, IDENTITY_BIT_255, kim):
        for trace in traces(value)[:2]:
            assert trace.decode() not in ran.out + ran.err
