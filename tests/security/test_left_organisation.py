"""An organisation that left (``vir org remove``), tried the way an attacker would.

Its every certificate, whatever its role, is refused from the next request before
the body is read (403 ``certificate-revoked``, audited); nothing brings it back
while its tombstone is held (no new registration, certificate, webhook, e-mail,
portal sign-in or coordinator); a reporter cannot pass its own withdrawal off as
the organisation leaving; the refusal to offboard an organisation with active
signals names no pseudonym or contact; and at the key holder, its certificates and
its people's token trust go too (``vir keyholder org remove``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clirun import run_vir
from support.inapp import in_keyholder
from support.instore import ORGS, T0
from support.offboarding import (
    AFTER,
    CA,
    GP,
    SCHOOL,
    VALID_UNTIL,
    Index,
    index,
)
from support.world import person

from vir.crypto import pki
from vir.delivery.admin import disable_webhook
from vir.delivery.email import configure_organisation
from vir.domain.encoding import b64url_encode
from vir.domain.errors import InputError
from vir.domain.organisations import Role
from vir.domain.signals import Professional
from vir.services.onboarding import register_certificate, register_organisation, set_coordinator
from vir.store.tables import KeyholderOidcRow, OrganisationRow


@pytest.fixture
def ix(tmp_path: Path) -> Iterator[Index]:
    with index(tmp_path) as made:
        yield made


def _left(ix: Index) -> None:
    ix.register(SCHOOL, "sc-kim", "Kim")
    ix.register(GP, "gp-kim", "Kim")
    ran = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL), "--withdraw")
    assert ran.code == 0, ran.err


NONSENSE = {"nonsense": True}


@pytest.mark.parametrize("role", [Role.SYSTEM, Role.COORDINATOR])
def test_every_certificate_is_refused_before_its_input_and_audited(ix: Index, role: Role) -> None:
    _left(ix)
    before = len(ix.audit("request.refused"))
    for method, path, extra in [
        ("GET", "/v1/notifications", {}),
        ("POST", "/v1/signals", {"json": NONSENSE}),
        ("DELETE", "/v1/signals/sc-kim", {"params": {"reason": "risk_ended"}}),
        ("GET", "/v1/organisations", {}),
    ]:
        reply = ix.with_certificate(SCHOOL, method, path, role, **extra)
        assert reply.status_code == 403, (method, path, reply.text)
        assert reply.json()["type"] == "urn:vir:problem:certificate-revoked"
    refused = ix.audit("request.refused")[before:]
    assert {(e["reason"], e["organisation"]) for e in refused} == {
        ("certificate_revoked", ix.oin(SCHOOL))
    }


def test_nothing_brings_it_back_while_its_tombstone_is_held(ix: Index) -> None:
    _left(ix)
    oin = ix.oin(SCHOOL)
    with pytest.raises(InputError) as again:
        register_organisation(ix.db, ORGS[SCHOOL], T0)
    assert again.value.field == "oin" and "left the index" in again.value.detail
    issued = pki.issue_client_certificate(CA, oin, "School A", T0, VALID_UNTIL)
    with pytest.raises(InputError) as cert:
        register_certificate(ix.db, issued.cert, T0, Role.SYSTEM)
    assert cert.value.field == "certificate"
    with pytest.raises(InputError):
        configure_organisation(ix.db, oin, T0, enabled=True)
    with pytest.raises(InputError):
        set_coordinator(ix.db, oin, Professional("Els Visser", "els@school.example"), T0)
    with pytest.raises(InputError):  # no webhook to disable, nor one to set
        disable_webhook(ix.db, oin, T0)
    listed = ix.vir("org", "cert", "--oin", oin, "--role", "system", "--cert", "/nonexistent")
    assert listed.code == 2 and "not a registered organisation" in listed.err
    # The partner's view: the school is not among the connected organisations.
    ix.app.as_caller(GP)
    names = [o["name"] for o in ix.app.request("GET", "/v1/organisations").json()["items"]]
    assert "School A" not in names and "Huisarts B" in names


def test_a_reporter_cannot_withdraw_as_if_its_organisation_left(ix: Index) -> None:
    ix.register(SCHOOL, "sc-kim", "Kim")
    reply = ix.withdraw(SCHOOL, "sc-kim", "participation_ended")
    assert reply.status_code == 422, reply.text
    assert [e["field"] for e in reply.json()["errors"]] == ["reason"]
    assert ix.rows_of(SCHOOL)["signals"] == 1


def test_the_refusal_names_no_pseudonym_or_contact(ix: Index) -> None:
    ix.register(SCHOOL, "sc-kim", "Kim")
    ran = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL))
    assert ran.code == 2
    for trace in (b64url_encode(person("Kim")), person("Kim").hex(), "anna", "sc-kim"):
        assert trace not in ran.out + ran.err
    # Offboarded: no entry of it holds a pseudonym or the professional's contact either.
    assert ix.vir("org", "remove", "--oin", ix.oin(SCHOOL), "--withdraw").code == 0
    written = json.dumps(ix.audit())
    for trace in (b64url_encode(person("Kim")), person("Kim").hex(), "anna@school.example"):
        assert trace not in written


def test_the_key_holder_refuses_it_and_forgets_its_token_trust(tmp_path: Path) -> None:
    with in_keyholder(tmp_path) as holder:
        db = holder.app.state.services.db
        oin = str(ORGS[SCHOOL].oin)
        issued = pki.issue_client_certificate(
            CA, oin, "School A", T0 - dt.timedelta(hours=1), VALID_UNTIL
        )
        register_certificate(db, issued.cert, T0, Role.SYSTEM)
        pem = pki.cert_pem(issued.cert).decode("ascii")
        with db.write() as session:
            session.add(
                KeyholderOidcRow(
                    oin=oin,
                    issuer="https://idp.school.example",
                    audience="vir-keyholder",
                    acr=None,
                    organisation_claim=None,
                    updated_at=T0,
                )
            )
        # (Not asked before the removal: a verified identity is remembered for 5 s.)
        url = db.engine.url.render_as_string(hide_password=False)

        def keyholder(*args: str, now: dt.datetime = AFTER) -> tuple[int, str]:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("vir.cli.utc_now", lambda: now)
                ran = run_vir(db, "keyholder", "org", *args, keyholder_database_url=url)
            return ran.code, ran.out + ran.err

        code, said = keyholder("remove", "--oin", oin)
        assert code == 0, said
        assert "1 certificate(s) revoked" in said and "vir org remove --oin" in said
        assert "run this again then to delete it" in said
        reply = holder.request("GET", "/v1/oprf/epochs", certificate=pem)
        assert reply.status_code == 403
        assert reply.json()["type"] == "urn:vir:problem:certificate-revoked"
        with db.read() as session:
            assert session.get(KeyholderOidcRow, oin) is None
            row = session.get(OrganisationRow, oin)
            assert row is not None and row.left_at == AFTER
        # Once its certificate expired, running it again deletes it.
        code, said = keyholder("remove", "--oin", oin, now=VALID_UNTIL + dt.timedelta(days=1))
        assert code == 0 and "its registration is deleted" in said
        with db.read() as session:
            assert session.get(OrganisationRow, oin) is None
