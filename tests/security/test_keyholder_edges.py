"""The key holder's edge, tried the way an attacker would (the key holder split).

The OPRF evaluation left the index for a separate key holder service with a registry,
an audit log and keys of its own. Its two routes (``POST /v1/oprf/evaluate``, ``GET
/v1/oprf/epochs``) take a registered client certificate of the key holder's own
registry, a small body of 1..64 canonical, non-identity elements and nothing else;
every refusal is problem+json naming the field without repeating the value, and its
audit log holds who asked and how many elements, never an element. The index no
longer evaluates at all. Over the whole apps in-process (``support.inapp``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.inapp import InApp, in_app, in_keyholder
from support.instore import ORGS, T0
from support.world import MUNICIPALITY, OPERATOR

from vir.api.app import create_app
from vir.crypto import keys, oprf, pki
from vir.crypto.signing import init_signing_key
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.errors import ConfigurationError
from vir.domain.organisations import Organisation, Role
from vir.keyholder.settings import KeyholderSettings
from vir.services.onboarding import register_certificate, register_organisation
from vir.settings import Settings
from vir.store.tables import AuditEntryRow

EVALUATE = "/v1/oprf/evaluate"
EPOCHS = "/v1/oprf/epochs"
P = 2**255 - 19
IDENTITY = bytes(32)
IDENTITY_BIT_255 = bytes(31) + b"\x80"
MAX_BODY = KeyholderSettings.model_fields["max_body_bytes"].default
CA = pki.create_ca("key holder test CA", T0 - dt.timedelta(days=1))


def element(n: int) -> bytes:
    return oprf.blind(f"nl-bsn:{n:09d}".encode())[1]


def text(n: int) -> str:
    return b64url_encode(element(n))


def url_safe_only() -> bytes:
    """A blinded element whose base64url has a ``-`` or ``_`` (so the standard alphabet
    writes it otherwise): blinding is random, so drawn until one has."""
    while True:
        drawn = element(7)
        if {"-", "_"} & set(b64url_encode(drawn)):
            return drawn


def body(*elements: str) -> dict[str, Any]:
    return {"blinded_elements": list(elements)}


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def not_canonical(canonical: bytes) -> dict[str, bytes]:
    """Other encodings of one element, and the identity (see test_noncanonical_elements)."""
    s = int.from_bytes(canonical, "little")
    return {
        "bit 255 set": _le(s | 1 << 255),
        "s + p": _le(s + P),
        "p - s": _le(P - s),
        "the identity": IDENTITY,
        "the identity, bit 255 set": IDENTITY_BIT_255,
        "not a point": b"\xff" * 32,
    }


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[InApp]:
    with in_keyholder(tmp_path) as made:
        yield made


def audit_bodies(app: InApp) -> list[bytes]:
    with app.app.state.services.db.read() as session:
        return [bytes(b) for b in session.scalars(select(AuditEntryRow.body))]


def audit(app: InApp, action: str | None = None) -> list[dict[str, Any]]:
    entries = [json.loads(b) for b in audit_bodies(app)]
    return [e for e in entries if action is None or e["action"] == action]


def traces(value: bytes) -> list[bytes]:
    """The forms a leaked element could take: base64url, hex, raw."""
    return [b64url_encode(value).encode(), value.hex().encode(), value]


def problem(reply: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    found: dict[str, Any] = reply.json()
    assert found["type"] == f"urn:vir:problem:{slug}", found
    return found


def fields(found: dict[str, Any]) -> list[str]:
    return [error["field"] for error in found["errors"]]


# --- Who may ask ------------------------------------------------------------------------------


def test_without_a_certificate_both_routes_are_401_and_the_body_is_not_kept(
    holder: InApp,
) -> None:
    sent = element(1)
    replies = [
        holder.request("POST", EVALUATE, json=body(b64url_encode(sent))),
        holder.request("GET", EPOCHS),
    ]
    for reply in replies:
        problem(reply, 401, "client-certificate-required")
    assert not audit(holder, "oprf.evaluate")  # nothing evaluated
    refused = audit(holder, "request.refused")
    assert [e["objects"]["endpoint"] for e in refused] == [f"POST {EVALUATE}", f"GET {EPOCHS}"]
    assert {e["reason"] for e in refused} == {"no_client_certificate"}
    for trace in traces(sent):
        assert trace not in b"".join(audit_bodies(holder))


def _issue(oin: str, name: str = "Test BV") -> pki.Issued:
    return pki.issue_client_certificate(
        CA, oin, name, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=30)
    )


def _pem(issued: pki.Issued) -> str:
    return pki.cert_pem(issued.cert).decode("ascii")


def test_a_certificate_the_key_holder_has_not_registered_is_refused(tmp_path: Path) -> None:
    """The registries are separate: a certificate the index knows is no key at the key
    holder until the key holder's operator registers it there too."""
    member = _issue(str(ORGS[0].oin), ORGS[0].name)
    stranger = _issue("00000009999999999999")
    with in_app(tmp_path) as index, in_keyholder(tmp_path) as holder:
        register_certificate(index.app.state.services.db, member.cert, T0)
        assert index.request("GET", "/v1/signals", certificate=_pem(member)).status_code == 200
        calls: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", EVALUATE, {"json": body(text(1))}),
            ("GET", EPOCHS, {}),
        ]
        for method, path, kwargs in calls:
            unknown = holder.request(method, path, certificate=_pem(member), **kwargs)
            problem(unknown, 403, "unknown-certificate")
            outsider = holder.request(method, path, certificate=_pem(stranger), **kwargs)
            problem(outsider, 403, "unknown-organisation")
        assert not audit(holder, "oprf.evaluate")
        refused = audit(holder, "request.refused")
        assert {e["reason"] for e in refused} == {"unknown_certificate", "unknown_organisation"}
        assert pki.fingerprint(member.cert) in {e["certificate"] for e in refused}
        # Registered at the key holder: the same certificate is served.
        register_certificate(holder.app.state.services.db, member.cert, T0)
        served = holder.request("POST", EVALUATE, json=body(text(1)), certificate=_pem(member))
        assert served.status_code == 200, served.text
        assert holder.request("GET", EPOCHS, certificate=_pem(member)).status_code == 200
        (evaluated,) = audit(holder, "oprf.evaluate")
        assert evaluated["organisation"] == str(ORGS[0].oin)


@pytest.mark.parametrize(
    ("org", "role", "status"),
    [
        (ORGS[0], Role.SYSTEM, 200),
        (ORGS[2], Role.COORDINATOR, 200),
        (MUNICIPALITY, Role.ADDRESS_OFFICER, 200),
        (MUNICIPALITY, Role.PRIVACY_OFFICER, 200),
        (OPERATOR, Role.NATIONAL_PRIVACY_OFFICER, 200),
        # The index's own certificate (on the index's host, for the evaluation counts):
        # were it served, whoever runs the index could pseudonymise any BSN.
        (OPERATOR, Role.INDEX_SERVICE, 403),
        (MUNICIPALITY, Role.FOLLOW_UP_OFFICER, 403),
    ],
    ids=lambda value: value.value if isinstance(value, Role) else None,
)
def test_only_the_roles_that_pseudonymise_are_served(
    tmp_path: Path, org: Organisation, role: Role, status: int
) -> None:
    issued = _issue(str(org.oin), org.name)
    with in_keyholder(tmp_path) as holder:
        db = holder.app.state.services.db
        if org in (MUNICIPALITY, OPERATOR):
            register_organisation(db, org, T0)
        register_certificate(db, issued.cert, T0, role)
        pem = _pem(issued)
        answered = holder.request("POST", EVALUATE, json=body(text(1)), certificate=pem)
        if status == 200:
            assert answered.status_code == 200, answered.text
            return
        problem(answered, 403, "not-permitted")
        # Whatever it sends: the role is refused before the body is looked at.
        problem(
            holder.request("POST", EVALUATE, json={"x": 1}, certificate=pem), 403, "not-permitted"
        )
        assert not audit(holder, "oprf.evaluate")
        assert {e["reason"] for e in audit(holder, "request.refused")} == {"not_permitted"}


# --- What may be asked ------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_anything_is_read(holder: InApp) -> None:
    holder.as_caller(0)
    padding = " " * MAX_BODY  # valid JSON whitespace: only the size is wrong
    over = holder.request(
        "POST",
        EVALUATE,
        content=json.dumps(body(text(1)))[:-1] + padding + "}",
        headers={"content-type": "application/json"},
    )
    problem(over, 413, "body-too-large")
    at_limit = json.dumps(body(text(1)))
    at_limit = at_limit[:-1] + " " * (MAX_BODY - len(at_limit)) + "}"
    assert len(at_limit) == MAX_BODY
    served = holder.request(
        "POST", EVALUATE, content=at_limit, headers={"content-type": "application/json"}
    )
    assert served.status_code == 200, served.text
    assert len(audit(holder, "oprf.evaluate")) == 1


def test_the_body_limit_is_the_key_holders_own_setting(tmp_path: Path) -> None:
    with in_keyholder(tmp_path, max_body_bytes=1024) as small:
        small.as_caller(0)
        many = body(*(text(n) for n in range(30)))  # some 1.4 KB
        problem(small.request("POST", EVALUATE, json=many), 413, "body-too-large")
        assert small.request("POST", EVALUATE, json=body(text(1))).status_code == 200


def test_64_elements_are_evaluated_and_65_or_none_refused(holder: InApp) -> None:
    holder.as_caller(0)
    batch = [text(n) for n in range(65)]
    served = holder.request("POST", EVALUATE, json=body(*batch[:64]))
    assert served.status_code == 200, served.text
    assert len(served.json()["evaluated_elements"]) == 64
    for refused in (body(*batch), body()):
        assert fields(
            problem(holder.request("POST", EVALUATE, json=refused), 422, "invalid-input")
        ) == ["blinded_elements"]
    # Only the batch that was answered is on the record, with its size.
    assert [e["objects"]["elements"] for e in audit(holder, "oprf.evaluate")] == [64]


@pytest.mark.parametrize("name", list(not_canonical(element(7))))
@pytest.mark.parametrize("position", [0, 2, 63])
def test_a_non_canonical_or_identity_element_is_refused_by_its_index(
    holder: InApp, name: str, position: int
) -> None:
    holder.as_caller(0)
    bad = not_canonical(element(7))[name]
    batch = [text(n) for n in range(max(3, position + 1))]
    batch[position] = b64url_encode(bad)
    found = problem(holder.request("POST", EVALUATE, json=body(*batch)), 422, "invalid-element")
    assert fields(found) == [f"blinded_elements[{position}]"]
    assert f"blinded_elements[{position}]" in found["detail"]
    written = json.dumps(found).encode() + b"".join(audit_bodies(holder))
    for trace in traces(bad)[:2]:
        assert trace not in written
    assert not audit(holder, "oprf.evaluate")  # the whole batch is refused, none evaluated


@pytest.mark.parametrize(
    "wire",
    [
        b64url_encode(element(7)) + "=",  # padded
        b64url_encode(element(7))[:-1],  # 31.x bytes
        b64url_encode(element(7) + b"\x00"),  # 33 bytes
        b64url_encode(url_safe_only()).replace("-", "+").replace("_", "/"),  # standard
        " " + b64url_encode(element(7))[1:],
        "",
    ],
    ids=["padded", "short", "long", "standard-alphabet", "space", "empty"],
)
def test_an_element_that_is_not_32_bytes_of_base64url_is_refused_by_its_index(
    holder: InApp, wire: str
) -> None:
    holder.as_caller(0)
    found = holder.request("POST", EVALUATE, json=body(text(1), wire))
    assert found.status_code == 422, found.text
    assert found.json()["type"] in (
        "urn:vir:problem:invalid-input",
        "urn:vir:problem:invalid-element",
    )
    assert fields(found.json()) == ["blinded_elements[1]"]
    if len(wire) > 8:
        assert wire not in found.text


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({**body(text(1)), "epoch": 1}, "epoch"),
        ({**body(text(1)), "oin": str(ORGS[1].oin)}, "oin"),
        ({**body(text(1)), "bsn": "123456782"}, "bsn"),
        ({"blinded_element": [text(1)]}, "blinded_element"),
        ({"blinded_elements": text(1)}, "blinded_elements"),
        ({"blinded_elements": [[text(1)]]}, "blinded_elements[0]"),
        ({"blinded_elements": [1]}, "blinded_elements[0]"),
        ({"blinded_elements": None}, "blinded_elements"),
    ],
    ids=["epoch", "oin", "bsn", "misspelt", "string", "nested", "number", "null"],
)
def test_unknown_fields_and_wrong_shapes_are_refused(
    holder: InApp, sent: dict[str, Any], field: str
) -> None:
    holder.as_caller(0)
    found = problem(holder.request("POST", EVALUATE, json=sent), 422, "invalid-input")
    assert field in fields(found)
    assert "123456782" not in json.dumps(found)
    assert not audit(holder, "oprf.evaluate")


def test_a_body_that_is_not_json_is_a_400_problem(holder: InApp) -> None:
    holder.as_caller(0)
    reply = holder.request(
        "POST",
        EVALUATE,
        content=b'{"blinded_elements": [',
        headers={"content-type": "application/json"},
    )
    problem(reply, 400, "malformed-json")


# --- What is answered, and what is kept -------------------------------------------------------


def test_the_answer_is_k_times_each_element_in_order(holder: InApp) -> None:
    holder.as_caller(0)
    sent = [element(n) for n in range(5)]
    answer = holder.request("POST", EVALUATE, json=body(*map(b64url_encode, sent))).json()
    key = holder.app.state.services.keys.current()
    assert answer == {
        "epoch": key.epoch,
        "evaluated_elements": [b64url_encode(oprf.evaluate(key.secret, b)) for b in sent],
    }  # no share_index with a single key


def test_the_audit_log_holds_counts_never_elements(holder: InApp) -> None:
    seen: list[bytes] = []
    for org, count in ((0, 3), (1, 1), (0, 64)):
        holder.as_caller(org)
        sent = [element(1000 * org + count * 100 + n) for n in range(count)]
        reply = holder.request("POST", EVALUATE, json=body(*map(b64url_encode, sent)))
        assert reply.status_code == 200
        seen += sent + [_decode(wire) for wire in reply.json()["evaluated_elements"]]
    holder.as_caller(1)
    refused = [element(9999), IDENTITY_BIT_255]
    bad = holder.request("POST", EVALUATE, json=body(*map(b64url_encode, refused)))
    assert bad.status_code == 422
    seen += refused
    holder.request("GET", EPOCHS)
    entries = audit(holder, "oprf.evaluate")
    assert [(e["organisation"], e["objects"]) for e in entries] == [
        (str(ORGS[0].oin), {"elements": 3, "epoch": 1}),
        (str(ORGS[1].oin), {"elements": 1, "epoch": 1}),
        (str(ORGS[0].oin), {"elements": 64, "epoch": 1}),
    ]
    written = b"".join(audit_bodies(holder))
    for value in seen:
        for trace in traces(value):
            assert trace not in written


def _decode(wire: str) -> bytes:
    decoded = b64url_decode(wire)
    assert decoded is not None
    return decoded


def test_the_epoch_list_says_which_epoch_and_never_a_key(holder: InApp) -> None:
    holder.as_caller(0)
    reply = holder.request("GET", EPOCHS)
    assert reply.status_code == 200
    listing = reply.json()
    assert listing["current"] == 1
    assert [(e["epoch"], e["state"]) for e in listing["epochs"]] == [(1, "current")]
    assert set(listing["epochs"][0]) <= {
        "epoch",
        "state",
        "created_at",
        "activated_at",
        "retire_after",
    }
    secret = holder.app.state.services.keys.current().secret
    for trace in (secret.hex(), b64url_encode(secret)):
        assert trace not in reply.text


# --- The index evaluates nothing --------------------------------------------------------------


def test_the_index_has_no_evaluate_route(tmp_path: Path) -> None:
    with in_app(tmp_path) as index:
        for caller in (None, 0):
            if caller is not None:
                index.as_caller(caller)
            replies = [
                index.request("POST", EVALUATE, json=body(text(1))),
                index.request("GET", EPOCHS),
            ]
            for reply in replies:
                problem(reply, 404, "http-404")
        assert not [p for p in index.app.openapi()["paths"] if p.startswith("/v1/oprf")]
        assert not hasattr(index.app.state.services, "keys")
        assert not hasattr(index.app.state.services, "evaluation")


@pytest.mark.parametrize("name", ["oprf-epoch-1.key", "oprf-epoch-2.key.wrapped"])
def test_the_index_refuses_to_start_beside_an_oprf_key(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "keys"
    init_signing_key(folder)
    keys.write_oprf_key(folder, 1, oprf.random_scalar())
    if name != "oprf-epoch-1.key":
        keys.key_path(folder, 1).rename(folder / name)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'never.db'}", keys_dir=folder)
    with pytest.raises(ConfigurationError, match="key holder") as refused:
        create_app(settings)
    assert name in str(refused.value)
    assert not (tmp_path / "never.db").exists()
