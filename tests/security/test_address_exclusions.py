"""``/v1/address-exclusions``, tried the way an attacker would.

A municipality's address officer keeps the list of institutional addresses (shelters,
care homes) that never make household matches: their client pseudonymises the
address at the key holder and sends the pseudonym with a label. Only that role of a
municipality may post or list (everyone else: 403, audited); the label is a name for
the place and nothing more (no run of eight digits, no odd characters, at most 100);
the pseudonym must be a canonical element of an accepted epoch; an address is on the
list once (409); and a household match through an excluded address ends at once.
``DELETE`` takes it off again (the same role, the same checks; 404 when it is not on the
list, saying nothing more), and the household match is back, its members told.
Over the whole app in-process, with real certificates and roles from the registry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.clirun import run_vir
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS, T0
from support.world import MUNICIPALITY, OPERATOR, UTRECHT, VEILIG_THUIS, person

from vir.api.identity import require_caller
from vir.client.connection import VirClient
from vir.crypto import oprf, pki
from vir.domain.encoding import b64url_encode
from vir.domain.errors import InputError
from vir.domain.organisations import Organisation, Role
from vir.services.identity import Caller
from vir.services.onboarding import register_certificate, register_organisation
from vir.store.tables import AuditEntryRow, ExcludedAddressRow, KeyEpochRow

PATH = "/v1/address-exclusions"
SCHOOL, GP, YOUTH_CARE = 0, 1, 2
CA = pki.create_ca("address test CA", T0 - dt.timedelta(days=1))
P = 2**255 - 19
SHELTER = "Blijf-van-mijn-lijfhuis Rotterdam-Zuid"

# who -> (organisation, role of their certificate)
ROLES: dict[str, tuple[Organisation, Role]] = {
    "address officer": (MUNICIPALITY, Role.ADDRESS_OFFICER),
    "utrecht address officer": (UTRECHT, Role.ADDRESS_OFFICER),
    "privacy officer": (MUNICIPALITY, Role.PRIVACY_OFFICER),
    "national privacy officer": (OPERATOR, Role.NATIONAL_PRIVACY_OFFICER),
    "school": (ORGS[SCHOOL], Role.SYSTEM),
    "coordinator": (ORGS[YOUTH_CARE], Role.COORDINATOR),
    "veilig thuis": (VEILIG_THUIS, Role.SYSTEM),
}
NOT_PERMITTED = [who for who, (_org, role) in ROLES.items() if role is not Role.ADDRESS_OFFICER]


def address(name: str) -> bytes:
    """An address pseudonym stand-in: a valid element derived from the address."""
    return oprf.hash_to_group(f"nl-address:{name}".encode())


@dataclass
class Index:
    app: InApp
    pems: dict[str, str]  # who -> certificate (PEM)
    fingerprints: dict[str, str]

    @property
    def epoch(self) -> int:
        return self.app.epoch

    def as_(self, who: str, method: str, path: str = PATH, **kwargs: Any) -> httpx.Response:
        """A request with ``who``'s registered certificate."""
        self.app.anonymous()
        return self.app.request(method, path, certificate=self.pems[who], **kwargs)

    def exclude(
        self, label: str, pseudonym: bytes, who: str = "address officer", **extra: Any
    ) -> httpx.Response:
        sent = {"epoch": self.epoch, "address": b64url_encode(pseudonym), "label": label}
        return self.as_(who, "POST", json={**sent, **extra})

    def include(
        self, pseudonym: bytes, who: str = "address officer", epoch: Any = None, **extra: Any
    ) -> httpx.Response:
        epoch = self.epoch if epoch is None else epoch
        sent = {"epoch": epoch, "address": b64url_encode(pseudonym)}
        return self.as_(who, "DELETE", json={**sent, **extra})

    def notifications(self, org: int) -> list[dict[str, Any]]:
        self.app.as_caller(org)
        reply = self.app.request("GET", "/v1/notifications", params={"limit": 100})
        assert reply.status_code == 200, reply.text
        items: list[dict[str, Any]] = reply.json()["items"]
        return items

    def audit(self, action: str | None = None) -> list[dict[str, Any]]:
        with self.app.app.state.services.db.read() as session:
            bodies = session.scalars(select(AuditEntryRow.body).order_by(AuditEntryRow.seq))
            entries = [json.loads(bytes(b)) for b in bodies]
        return [e for e in entries if action is None or e["action"] == action]

    def audit_text(self) -> bytes:
        with self.app.app.state.services.db.read() as session:
            return b"".join(bytes(b) for b in session.scalars(select(AuditEntryRow.body)))

    def stored(self) -> list[tuple[bytes, str]]:
        with self.app.app.state.services.db.read() as session:
            rows = session.scalars(select(ExcludedAddressRow)).all()
            return [(bytes(r.address), r.label) for r in rows]

    def register(self, org: int, ref: str, child: str, at: str) -> httpx.Response:
        body = signal_body(ref, child, self.epoch) | {"address": b64url_encode(address(at))}
        self.app.as_caller(org)
        return self.app.request("POST", "/v1/signals", json=body)

    def matches(self, org: int, ref: str) -> list[str]:
        self.app.as_caller(org)
        reply = self.app.request("GET", "/v1/matches", params={"local_ref": ref})
        assert reply.status_code == 200, reply.text
        return sorted(m["via"] for m in reply.json()["matches"])


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    with in_app(tmp_path) as app:
        db = app.app.state.services.db
        for org in (MUNICIPALITY, VEILIG_THUIS, UTRECHT, OPERATOR):
            register_organisation(db, org, T0)
        pems, fingerprints = {}, {}
        for who, (org, role) in ROLES.items():
            issued = pki.issue_client_certificate(
                CA, str(org.oin), org.name, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=30)
            )
            fingerprints[who] = register_certificate(db, issued.cert, T0, role)
            pems[who] = pki.cert_pem(issued.cert).decode("ascii")
        yield Index(app, pems, fingerprints)


def problem(reply: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    found: dict[str, Any] = reply.json()
    assert found["type"] == f"urn:vir:problem:{slug}", found
    return found


def fields(found: dict[str, Any]) -> list[str]:
    return [error["field"] for error in found["errors"]]


# --- Who may --------------------------------------------------------------------------------


def test_the_address_officer_posts_and_lists(index: Index) -> None:
    shelter = address("Dorpsstraat 1, Rotterdam")
    reply = index.exclude(SHELTER, shelter)
    assert reply.status_code == 204, reply.text
    assert index.stored() == [(shelter, SHELTER)]
    listed = index.as_("address officer", "GET")
    assert listed.status_code == 200
    assert [item["label"] for item in listed.json()["items"]] == [SHELTER]
    for trace in (b64url_encode(shelter), shelter.hex()):
        assert trace not in listed.text  # the pseudonym is never shown
    (entry,) = index.audit("admin.address_excluded")
    assert (entry["organisation"], entry["certificate"]) == (
        str(MUNICIPALITY.oin),
        index.fingerprints["address officer"],
    )
    written = index.audit_text()
    assert b64url_encode(shelter).encode() not in written and shelter.hex().encode() not in written
    # Another municipality's address officer keeps the same (national) list.
    other = index.exclude(
        "Zorgcentrum 't Hoogeland (Ede) & Co.", address("Utrecht 2"), "utrecht address officer"
    )
    assert other.status_code == 204, other.text


@pytest.mark.parametrize("who", NOT_PERMITTED)
def test_every_other_role_and_category_is_refused_and_audited(index: Index, who: str) -> None:
    before = len(index.audit("request.refused"))
    posted = index.exclude(SHELTER, address("Dorpsstraat 1"), who)
    problem(posted, 403, "not-permitted")
    problem(index.as_(who, "GET"), 403, "not-permitted")
    assert index.stored() == []
    assert not index.audit("admin.address_excluded")
    refused = index.audit("request.refused")[before:]
    org, _role = ROLES[who]
    assert [
        (e["objects"]["endpoint"], e["reason"], e["organisation"], e["certificate"])
        for e in refused
    ] == [
        (f"{method} {PATH}", "not_permitted", str(org.oin), index.fingerprints[who])
        for method in ("POST", "GET")
    ]


def test_no_certificate_is_401(index: Index) -> None:
    index.app.anonymous()
    sent = {"epoch": index.epoch, "address": b64url_encode(address("x")), "label": SHELTER}
    problem(index.app.request("POST", PATH, json=sent), 401, "client-certificate-required")
    problem(index.app.request("GET", PATH), 401, "client-certificate-required")
    assert index.stored() == []


@pytest.mark.parametrize("org", [ORGS[SCHOOL], VEILIG_THUIS, OPERATOR])
def test_the_role_alone_is_not_enough_outside_a_municipality(
    index: Index, org: Organisation
) -> None:
    """The registry will not give the role to another category; and were a caller to
    carry it all the same, the policy still asks for a municipality."""
    issued = pki.issue_client_certificate(
        CA, str(org.oin), org.name, T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=30)
    )
    with pytest.raises(InputError) as refused:
        register_certificate(index.app.app.state.services.db, issued.cert, T0, Role.ADDRESS_OFFICER)
    assert refused.value.field == "role"
    caller = Caller(org, "b" * 64, Role.ADDRESS_OFFICER)
    index.app.app.dependency_overrides[require_caller] = lambda: caller
    sent = {"epoch": index.epoch, "address": b64url_encode(address("x")), "label": SHELTER}
    problem(index.app.request("POST", PATH, json=sent), 403, "not-permitted")
    problem(index.app.request("GET", PATH), 403, "not-permitted")
    assert index.stored() == []


# --- What may be sent -----------------------------------------------------------------------


BAD_LABELS = {
    "a BSN": "Opvang 123456782",
    "a phone number": "Opvang 0612345678",
    "eight digits": "Huis 12345678",
    "a BSN with dots": "Opvang 123.456.782",
    "a BSN with spaces": "Opvang 123 456 782",
    "a BSN with dashes": "Opvang 123-45-6782",
    "a BSN with slashes": "Opvang 1234/5678/2",
    "eight digits in two groups": "Opvang 1234 5678",
    "a phone number with dashes": "Opvang 06-12345678",
    "a phone number spaced": "Opvang 06 1234 5678",
    "a phone number with an area code": "Opvang (010) 1234567",
    "digits with commas": "Opvang 1234, 5678",
    "digits with underscores": "Opvang 1234_5678",
    "Arabic-Indic digits": "Opvang " + "".join(chr(0x660 + int(c)) for c in "123456782"),
    "fullwidth digits": "Opvang " + "".join(chr(0xFF10 + int(c)) for c in "123456782"),
    "zero-width joiner": "Opvang\u200dZuid",
    "direction override": "Opvang \u202eZuid",
    "soft hyphen": "Opvang\u00adZuid",
    "newline": "Opvang\nZuid",
    "tab": "Opvang\tZuid",
    "markup": "Opvang <b>Zuid</b>",
    "an e-mail address": "Opvang anna@example.nl",
    "a sentence": "Opvang: vermoedt mishandeling!",
    "emoji": "Opvang \U0001f3e0",
    "101 characters": "x" * 101,
    "empty": "",
}


@pytest.mark.parametrize("label", list(BAD_LABELS.values()), ids=list(BAD_LABELS))
def test_a_label_that_is_more_than_a_name_is_refused(index: Index, label: str) -> None:
    found = problem(index.exclude(label, address("Dorpsstraat 1")), 422, "invalid-input")
    assert fields(found) == ["label"]
    for part in (label, "123456782", "0612345678", "12345678", "anna@example.nl"):
        if part and part in label:
            assert part not in json.dumps(found, ensure_ascii=False)
    assert index.stored() == []
    assert not index.audit("admin.address_excluded")


@pytest.mark.parametrize(
    "label",
    [
        SHELTER,
        "Zorgcentrum 't Hoogeland (Ede) & Co.",
        "Crèche Ümit",
        "Opvang 1234567",
        "Opvang 3011 AB 12",  # a postcode and house number: letters between the digits
        "Opvang 3011 AB 12-14",
        "Opvang 12 / 14 - 16",
        "x" * 100,
    ],
)
def test_a_label_that_is_a_name_is_taken(index: Index, label: str) -> None:
    assert index.exclude(label, address(label)).status_code == 204
    assert index.stored() == [(address(label), label)]


def test_a_decomposed_label_is_stored_composed(index: Index) -> None:
    assert index.exclude("Cre\u0300che Zuid", address("x")).status_code == 204
    assert index.stored() == [(address("x"), "Cr\u00e8che Zuid")]


def _variants(canonical: bytes) -> dict[str, bytes]:
    s = int.from_bytes(canonical, "little")
    return {
        "bit 255 set": (s | 1 << 255).to_bytes(32, "little"),
        "s + p": (s + P).to_bytes(32, "little"),
        "p - s": (P - s).to_bytes(32, "little"),
        "the identity": bytes(32),
        "the identity, bit 255 set": bytes(31) + b"\x80",
    }


@pytest.mark.parametrize("name", list(_variants(address("Dorpsstraat 1"))))
def test_a_non_canonical_pseudonym_is_refused_naming_address(index: Index, name: str) -> None:
    bad = _variants(address("Dorpsstraat 1"))[name]
    found = problem(index.exclude(SHELTER, bad), 422, "invalid-element")
    assert fields(found) == ["address"]
    for trace in (b64url_encode(bad), bad.hex()):
        assert trace not in json.dumps(found)
        assert trace.encode() not in index.audit_text()
    assert index.stored() == []


@pytest.mark.parametrize(
    "wire",
    [b64url_encode(address("x")) + "=", b64url_encode(address("x"))[:-2], "not base64url!", ""],
    ids=["padded", "short", "alphabet", "empty"],
)
def test_a_pseudonym_that_is_not_32_bytes_of_base64url_is_refused(index: Index, wire: str) -> None:
    sent = {"epoch": index.epoch, "address": wire, "label": SHELTER}
    found = index.as_("address officer", "POST", json=sent)
    assert found.status_code == 422
    assert fields(found.json()) == ["address"]


@pytest.mark.parametrize("epoch", [0, -1, 2, 99, "1", 1.0, None])
def test_a_wrong_epoch_is_refused_naming_epoch(index: Index, epoch: Any) -> None:
    sent = {"epoch": epoch, "address": b64url_encode(address("x")), "label": SHELTER}
    found = problem(index.as_("address officer", "POST", json=sent), 422, "invalid-input")
    assert fields(found) == ["epoch"]
    assert index.stored() == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"person": b64url_encode(person("Kim"))}, "person"), ({"street": "Dorpsstraat 1"}, "street")],
)
def test_unknown_fields_are_refused(index: Index, extra: dict[str, Any], field: str) -> None:
    found = problem(index.exclude(SHELTER, address("x"), **extra), 422, "invalid-input")
    assert fields(found) == [field]
    assert "Dorpsstraat" not in found["detail"]
    assert index.stored() == []


def test_an_address_is_excluded_once(index: Index) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    again = problem(index.exclude("Another name for it", shelter), 409, "conflict")
    assert b64url_encode(shelter) not in json.dumps(again)
    by_another = index.exclude(SHELTER, shelter, "utrecht address officer")
    problem(by_another, 409, "conflict")
    assert index.stored() == [(shelter, SHELTER)]
    assert len(index.audit("admin.address_excluded")) == 1
    listed = index.as_("address officer", "GET").json()["items"]
    assert [item["label"] for item in listed] == [SHELTER]


# --- What it does ---------------------------------------------------------------------------


def test_a_household_match_through_the_address_ends(index: Index) -> None:
    # Two children at one address, reported by two organisations: a household match.
    shelter = "Dorpsstraat 1"
    assert index.register(SCHOOL, "sc-x", "X", shelter).status_code == 201
    assert index.register(GP, "gp-y", "Y", shelter).status_code == 201
    assert index.matches(SCHOOL, "sc-x") == ["address"]
    assert index.matches(GP, "gp-y") == ["address"]
    # A person match on X elsewhere is not touched by what happens to the address.
    assert index.register(YOUTH_CARE, "yc-x", "X", "Elders 9").status_code == 201
    assert index.matches(SCHOOL, "sc-x") == ["address", "person"]

    assert index.exclude("Opvanghuis", address(shelter)).status_code == 204
    assert index.matches(SCHOOL, "sc-x") == ["person"]
    assert index.matches(GP, "gp-y") == []
    # Each was told, and told nothing about the address.
    for org in (SCHOOL, GP):
        index.app.as_caller(org)
        items = index.app.request("GET", "/v1/notifications", params={"limit": 100}).json()
        left = [n for n in items["items"] if n["type"] == "match.left"]
        assert [n["match"]["via"] for n in left] == ["address"], items
        assert b64url_encode(address(shelter)) not in json.dumps(items)
    # A new signal at the address makes no household match either.
    assert index.register(YOUTH_CARE, "yc-z", "Z", shelter).status_code == 201
    assert index.matches(YOUTH_CARE, "yc-z") == []
    assert index.matches(GP, "gp-y") == []


@pytest.mark.parametrize("label", ["Opvang 123.456.782", "Opvang 1234 5678", "Opvang\nZuid"])
def test_vir_client_refuses_the_label_before_it_pseudonymises(label: str) -> None:
    """``vir-client address exclude --label``: checked as the index checks it, before the
    address is sent to the key holder."""

    class Unreachable:
        def pseudonymise(self, _inputs: list[str]) -> None:
            raise AssertionError("pseudonymised for a label the index refuses")

    with pytest.raises(InputError) as refused:
        VirClient.exclude_address(Unreachable(), "nl-address:3011AB:1:", label)  # type: ignore[arg-type]
    assert refused.value.field == "label"
    assert "123" not in refused.value.detail and "5678" not in refused.value.detail


# --- Taking an address off the list ---------------------------------------------------------


def test_the_address_officer_takes_an_address_off_the_list(index: Index) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    reply = index.include(shelter)
    assert reply.status_code == 204, reply.text
    assert index.stored() == []
    assert index.as_("address officer", "GET").json()["items"] == []
    (entry,) = index.audit("admin.address_included")
    assert (entry["organisation"], entry["certificate"]) == (
        str(MUNICIPALITY.oin),
        index.fingerprints["address officer"],
    )
    written = index.audit_text()
    assert b64url_encode(shelter).encode() not in written and shelter.hex().encode() not in written
    # The list is national: another municipality's officer may take it off too, and it
    # can be put on again.
    assert index.exclude(SHELTER, shelter, "utrecht address officer").status_code == 204
    assert index.include(shelter, "utrecht address officer").status_code == 204
    assert index.stored() == []


@pytest.mark.parametrize("who", NOT_PERMITTED)
def test_every_other_role_may_not_take_an_address_off(index: Index, who: str) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    before = len(index.audit("request.refused"))
    problem(index.include(shelter, who), 403, "not-permitted")
    # Refused before the input is read: nonsense gets the same 403, not a 422.
    problem(index.as_(who, "DELETE", json={"nonsense": True}), 403, "not-permitted")
    assert index.stored() == [(shelter, SHELTER)]
    assert not index.audit("admin.address_included")
    refused = index.audit("request.refused")[before:]
    assert {(e["objects"]["endpoint"], e["reason"]) for e in refused} == {
        (f"DELETE {PATH}", "not_permitted")
    }


def test_no_certificate_may_not_take_an_address_off(index: Index) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    index.app.anonymous()
    sent = {"epoch": index.epoch, "address": b64url_encode(shelter)}
    problem(index.app.request("DELETE", PATH, json=sent), 401, "client-certificate-required")
    assert index.stored() == [(shelter, SHELTER)]


def test_an_address_not_on_the_list_is_404_saying_nothing_more(index: Index) -> None:
    assert index.exclude(SHELTER, address("Dorpsstraat 1")).status_code == 204
    other = address("Elders 9")
    found = problem(index.include(other), 404, "not-found")
    assert b64url_encode(other) not in json.dumps(found) and other.hex() not in json.dumps(found)
    assert SHELTER not in json.dumps(found)
    # Taken off once; the second time it is not on the list.
    assert index.include(address("Dorpsstraat 1")).status_code == 204
    problem(index.include(address("Dorpsstraat 1")), 404, "not-found")
    assert len(index.audit("admin.address_included")) == 1


@pytest.mark.parametrize("name", list(_variants(address("Dorpsstraat 1"))))
def test_a_non_canonical_pseudonym_is_not_taken_off(index: Index, name: str) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    bad = _variants(shelter)[name]
    found = problem(index.include(bad), 422, "invalid-element")
    assert fields(found) == ["address"]
    for trace in (b64url_encode(bad), bad.hex()):
        assert trace not in json.dumps(found)
        assert trace.encode() not in index.audit_text()
    assert index.stored() == [(shelter, SHELTER)]


@pytest.mark.parametrize("epoch", [0, -1, 2, 99, "1", 1.0, None])
def test_a_wrong_epoch_is_not_taken_off(index: Index, epoch: Any) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    sent = {"epoch": epoch, "address": b64url_encode(shelter)}
    found = problem(index.as_("address officer", "DELETE", json=sent), 422, "invalid-input")
    assert fields(found) == ["epoch"]
    assert index.stored() == [(shelter, SHELTER)]


def test_a_pseudonym_of_a_retired_epoch_is_not_taken_off(index: Index) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    services = index.app.app.state.services
    with services.db.write() as session:
        # Epoch 1 retired after a rekey to epoch 2 (the stored pseudonyms are not
        # rewritten here: what is checked is that epoch 1 is refused before any lookup).
        session.get(KeyEpochRow, 1).state = "retired"
        session.add(KeyEpochRow(epoch=2, state="current", delta=None, created_at=T0))
    services.epochs.forget()
    found = problem(index.include(shelter, epoch=1), 422, "invalid-input")
    assert fields(found) == ["epoch"]
    assert "retired" in json.dumps(found)
    assert b64url_encode(shelter) not in json.dumps(found)
    assert index.stored() == [(shelter, SHELTER)]
    assert not index.audit("admin.address_included")


@pytest.mark.parametrize(
    ("extra", "field"), [({"label": SHELTER}, "label"), ({"street": "Dorpsstraat 1"}, "street")]
)
def test_unknown_fields_are_not_taken_off(index: Index, extra: dict[str, Any], field: str) -> None:
    shelter = address("Dorpsstraat 1")
    assert index.exclude(SHELTER, shelter).status_code == 204
    found = problem(index.include(shelter, **extra), 422, "invalid-input")
    assert fields(found) == [field]
    assert index.stored() == [(shelter, SHELTER)]


def test_the_household_match_is_back_once_taken_off(index: Index) -> None:
    shelter = "Dorpsstraat 1"
    assert index.register(SCHOOL, "sc-x", "X", shelter).status_code == 201
    assert index.register(GP, "gp-y", "Y", shelter).status_code == 201
    assert index.exclude("Opvanghuis", address(shelter)).status_code == 204
    # Registered while excluded: no household match, and none for the third either.
    assert index.register(YOUTH_CARE, "yc-z", "Z", shelter).status_code == 201
    signals = [(SCHOOL, "sc-x"), (GP, "gp-y"), (YOUTH_CARE, "yc-z")]
    assert [index.matches(org, ref) for org, ref in signals] == [[], [], []]
    told_before = {org: len(index.notifications(org)) for org in (SCHOOL, GP, YOUTH_CARE)}

    assert index.include(address(shelter)).status_code == 204
    # As a fresh registration would have it: one household match of all three.
    for org, ref in signals:
        assert index.matches(org, ref) == ["address"]
    for org in (SCHOOL, GP, YOUTH_CARE):
        new = index.notifications(org)[told_before[org] :]
        assert [n["type"] for n in new] == ["match.created"], new
        assert new[0]["match"]["via"] == "address"
        assert b64url_encode(address(shelter)) not in json.dumps(new)
    assert len(index.audit("match.created")) == 2  # the first one, and this one
    # It matches a new registration at the address again, too.
    assert index.register(YOUTH_CARE, "yc-w", "W", shelter).status_code == 201
    assert index.matches(YOUTH_CARE, "yc-w") == ["address"]


def test_the_operator_takes_an_address_off_with_vir_address_include(index: Index) -> None:
    db = index.app.app.state.services.db
    shelter = address("Dorpsstraat 1")
    text = b64url_encode(shelter)
    assert index.exclude(SHELTER, shelter).status_code == 204
    epoch = f"--epoch={index.epoch}"
    # Not one valid pseudonym on standard input: refused, echoing nothing.
    for stdin in ("", f"{text}\n{text}\n", b64url_encode(_variants(shelter)["s + p"]) + "\n"):
        ran = run_vir(db, "address", "include", epoch, stdin=stdin)
        assert ran.code == 2 and "pseudonym" in ran.err
        assert text not in ran.out + ran.err
    assert index.stored() == [(shelter, SHELTER)]
    ran = run_vir(db, "address", "include", epoch, stdin=text + "\n")
    assert ran.code == 0, ran.err
    assert text not in ran.out + ran.err
    assert index.stored() == []
    (entry,) = index.audit("admin.address_included")
    assert entry["actor"] == "admin"
    again = run_vir(db, "address", "include", epoch, stdin=text + "\n")
    assert again.code == 2 and "not on the exclusion list" in again.err
