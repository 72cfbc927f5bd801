"""Offboarding an organisation (``vir org remove``): refused while it has active
signals, unless ``--withdraw``; then its partners are told, its certificates refused
from the next request, its delivery settings deleted; a tombstone stays while an
archived signal or an unexpired certificate of it is kept, and the lifecycle deletes
it, with its certificates and settings, once neither holds it any more.

The whole index in-process, its certificates real; the command line as the operator
runs it; the lifecycle with its clock moved past the archive term."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.inapp import signal_body
from support.instore import ORGS, T0
from support.offboarding import AFTER, CA, GP, SCHOOL, VALID_UNTIL, YOUTH_CARE, Index, index
from support.world import MUNICIPALITY, person

from vir.api.identity import require_caller
from vir.crypto import pki
from vir.domain.encoding import b64url_encode
from vir.domain.errors import CertificateRevoked
from vir.domain.organisations import Role
from vir.domain.signals import Professional
from vir.services import offboarding, onboarding, removal
from vir.services import signals as signals_service
from vir.services.identity import Caller
from vir.services.lifecycle import Lifecycle
from vir.services.onboarding import register_certificate, register_organisation
from vir.store.tables import ArchivedSignalRow, OrganisationRow

SIX_YEARS = dt.timedelta(days=6 * 366)


# How long the registrations of test_a_stream_of_registrations_does_not_hold_the_removal_up
# go on at most.
STREAM_SECONDS = 8.0


@pytest.fixture
def ix(tmp_path: Path) -> Iterator[Index]:
    with index(tmp_path) as made:
        yield made


def _matched(ix: Index) -> None:
    """The school and the GP both report Kim: a match."""
    ix.register(SCHOOL, "sc-kim", "Kim")
    ix.register(GP, "gp-kim", "Kim")
    assert ix.matches(GP, "gp-kim") == ["person"]


def _organisation(ix: Index, org: int) -> OrganisationRow | None:
    with ix.db.read() as session:
        return session.get(OrganisationRow, ix.oin(org))


def test_active_signals_are_not_withdrawn_without_withdraw(ix: Index) -> None:
    _matched(ix)
    ix.configure_delivery(SCHOOL)
    before = ix.rows_of(SCHOOL)
    ran = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL))
    assert ran.code == 2
    assert "1 active signal(s)" in ran.err and "--withdraw" in ran.err
    # Nothing changed: its certificate works, its signal and settings are there.
    reply = ix.with_certificate(SCHOOL, "GET", "/v1/notifications")
    assert reply.status_code == 200, reply.text
    assert ix.rows_of(SCHOOL) == before
    assert ix.matches(GP, "gp-kim") == ["person"]
    assert not ix.audit("admin.organisation_removed")


def test_with_withdraw_partners_are_told_and_certificates_refused(ix: Index) -> None:
    _matched(ix)
    ix.register(SCHOOL, "sc-noor", "Noor")  # no partner
    ix.configure_delivery(SCHOOL)
    assert [n["type"] for n in ix.notifications(GP)] == ["match.created"]
    ran = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL), "--withdraw")
    assert ran.code == 0, ran.err
    assert "2 certificate(s) revoked, 2 signal(s) withdrawn" in ran.out
    assert "vir keyholder org remove --oin" in ran.out

    # The partner is told as for any withdrawal: the match ended. The notification that
    # showed the school's reporter went with the school's signal.
    after = ix.notifications(GP)
    assert [(n["type"], n["match"]["via"]) for n in after] == [("match.left", "person")]
    assert "anna@school.example" not in str(after)
    assert ix.matches(GP, "gp-kim") == []
    # Every certificate of it is refused from the next request, whatever its role.
    for role in (Role.SYSTEM, Role.COORDINATOR):
        reply = ix.with_certificate(SCHOOL, "GET", "/v1/notifications", role)
        assert reply.status_code == 403, reply.text
        assert reply.json()["type"] == "urn:vir:problem:certificate-revoked"
    # The partner's certificate is not touched.
    assert ix.with_certificate(GP, "GET", "/v1/notifications").status_code == 200

    # Erased, not archived; nothing delivers to it or signs in for it any more; its
    # notifications went with its signals. Only the tombstone and its (revoked,
    # unexpired) certificates are left.
    assert ix.rows_of(SCHOOL) == {"organisations": 1, "certificates": 2}
    row = _organisation(ix, SCHOOL)
    assert row is not None and row.left_at == T0 and row.coordinator_name is None
    withdrawn = ix.audit("signal.withdrawn")
    assert [(e["reason"], e["actor"]) for e in withdrawn] == [("participation_ended", "admin")] * 2
    assert len(ix.audit("signal.erased")) == 2 and not ix.audit("signal.archived")
    (removed,) = ix.audit("admin.organisation_removed")
    assert removed["objects"] == {"signals": 2, "certificates": 2}
    assert len(ix.audit("admin.certificate_revoked")) == 2
    listed = ix.vir("org", "list")
    assert f"{ix.oin(SCHOOL)}" in listed.out and "(left 2026-11-22)" in listed.out

    # Once its certificates expired, the next lifecycle run deletes the tombstone.
    Lifecycle(ix.db, lambda: VALID_UNTIL - dt.timedelta(hours=1)).run()
    assert _organisation(ix, SCHOOL) is not None
    Lifecycle(ix.db, lambda: VALID_UNTIL + dt.timedelta(hours=1)).run()
    assert ix.rows_of(SCHOOL) == {}
    (deleted,) = ix.audit("organisation.deleted")
    assert (deleted["organisation"], deleted["actor"]) == (ix.oin(SCHOOL), "lifecycle")
    assert deleted["objects"] == {"certificates": 2}
    # The partner goes on.
    assert _organisation(ix, GP) is not None
    assert ix.rows_of(GP)["signals"] == 1


def test_the_tombstone_stays_for_the_archive_term_then_goes(ix: Index) -> None:
    # The school withdrew a signal because the risk ended: archived for five years.
    ix.register(SCHOOL, "sc-kim", "Kim")
    assert ix.withdraw(SCHOOL, "sc-kim", "risk_ended").status_code == 204
    ix.configure_delivery(SCHOOL)
    ran = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL))
    assert ran.code == 0, ran.err
    assert "1 archived signal(s) of it are kept" in ran.out
    assert "the lifecycle deletes it then" in ran.out
    assert ix.rows_of(SCHOOL) == {"organisations": 1, "certificates": 2, "archived_signals": 1}
    with ix.db.read() as session:
        (destroy_on,) = session.scalars(select(ArchivedSignalRow.destroy_on)).all()

    # The archive names the school while it is kept: a new reporter of Kim is offered it.
    ix.register(YOUTH_CARE, "yc-kim", "Kim")
    (offered,) = ix.notifications(YOUTH_CARE)
    assert offered["type"] == "match.historical" and "School A" in str(offered)

    # Certificates expired, archive still kept: the tombstone stays.
    Lifecycle(ix.db, lambda: VALID_UNTIL + dt.timedelta(days=1)).run()
    held = {"organisations": 1, "certificates": 2, "archived_signals": 1}
    assert ix.rows_of(SCHOOL) == held
    assert not ix.audit("organisation.deleted")

    # After the archive term the lifecycle destroys the archived signal, then the
    # organisation with its certificates.
    after_term = dt.datetime.combine(destroy_on, dt.time(3), tzinfo=dt.UTC)
    report = Lifecycle(ix.db, lambda: after_term).run()
    assert report.destroyed == 1 and report.organisations == 1
    assert ix.rows_of(SCHOOL) == {}
    actions = [e["action"] for e in ix.audit()]
    assert actions.index("signal.destroyed") < actions.index("organisation.deleted")
    assert _organisation(ix, YOUTH_CARE) is not None  # the others stay


def test_without_anything_held_it_is_deleted_at_once(ix: Index) -> None:
    ran = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL), now=VALID_UNTIL + SIX_YEARS)
    assert ran.code == 0, ran.err
    assert "its registration is deleted" in ran.out
    assert ix.rows_of(SCHOOL) == {}
    assert [e["action"] for e in ix.audit()][-2:] == [
        "admin.organisation_removed",
        "organisation.deleted",
    ]


def test_an_unknown_oin_is_a_clear_error(ix: Index) -> None:
    unknown = ix.vir("org", "remove", "--oin", "00000009000000000777")
    assert unknown.code == 2 and "not a registered organisation" in unknown.err
    bad = ix.vir("org", "remove", "--oin", "12345")
    assert bad.code == 2 and "oin" in bad.err.lower()
    assert not ix.audit("admin.organisation_removed")


def test_running_it_again_deletes_what_is_no_longer_held(ix: Index) -> None:
    ix.register(SCHOOL, "sc-kim", "Kim")
    assert ix.vir("org", "remove", "--oin", ix.oin(SCHOOL), "--withdraw").code == 0
    again = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL))
    assert again.code == 0 and "0 signal(s) withdrawn" in again.out
    assert len(ix.audit("admin.organisation_removed")) == 1  # left once
    later = ix.vir("org", "remove", "--oin", ix.oin(SCHOOL), now=VALID_UNTIL + SIX_YEARS)
    assert later.code == 0 and "its registration is deleted" in later.out
    assert ix.rows_of(SCHOOL) == {}


class _Held:
    """``module.name`` made to wait, once entered, until ``release`` is set: another
    transaction is then started against the one held open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        self.inside, self.release = threading.Event(), threading.Event()
        original = getattr(module, name)

        def held(*args: Any, **kwargs: Any) -> Any:
            self.inside.set()
            self.release.wait(30)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, held)


def _in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    """``call()`` started in a thread; its result or exception lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as error:  # the test asserts on it
            out.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _removing(ix: Index) -> tuple[threading.Thread, list[Any]]:
    """``vir org remove --withdraw`` of the school, started in a thread."""
    return _in_thread(lambda: offboarding.remove(ix.db, ix.oin(SCHOOL), AFTER, withdraw=True))


def test_a_registration_under_way_is_withdrawn_with_the_rest(
    ix: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registration whose certificate was checked just before the removal, and whose
    transaction is open when the removal starts: the removal waits for it, then
    withdraws its signal with the others (its partner is told)."""
    ix.register(GP, "gp-kim", "Kim")
    held = _Held(monkeypatch, signals_service, "in_transaction")
    registering, _registered = _in_thread(lambda: ix.register(SCHOOL, "sc-kim", "Kim"))
    assert held.inside.wait(30)
    removing, removed = _removing(ix)
    removing.join(1.0)
    assert removing.is_alive()  # waits for the registration's transaction
    held.release.set()
    registering.join(30)
    removing.join(30)
    assert [r.withdrawn for r in removed] == [1]
    assert "signals" not in ix.rows_of(SCHOOL)
    assert ix.matches(GP, "gp-kim") == []
    assert [n["type"] for n in ix.notifications(GP)] == ["match.left"]


def test_a_registration_after_the_removal_stores_nothing(
    ix: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registration whose certificate was checked before the removal, arriving while
    the removal runs: it waits, finds the organisation left, and is refused as revoked;
    nothing is stored and nobody is told."""
    ix.register(GP, "gp-kim", "Kim")
    held = _Held(monkeypatch, offboarding, "signals_of_organisation")
    removing, _removed = _removing(ix)
    assert held.inside.wait(30)

    def register() -> Any:
        ix.app.as_caller(SCHOOL)  # the identity was checked before the removal
        return ix.app.request("POST", "/v1/signals", json=signal_body("sc-kim", "Kim", 1))

    registering, replies = _in_thread(register)
    registering.join(1.0)
    assert registering.is_alive()  # waits for the removal's transaction
    held.release.set()
    removing.join(30)
    registering.join(30)
    (reply,) = replies
    assert reply.status_code == 403, reply.text
    assert reply.json()["type"].endswith("certificate-revoked")
    assert "signals" not in ix.rows_of(SCHOOL)
    assert ix.matches(GP, "gp-kim") == []
    assert ix.notifications(GP) == []


def test_a_stream_of_registrations_does_not_hold_the_removal_up(
    ix: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walk 4 of stop 41's suspicion, proven in stop 42: each registration holds its
    organisation's row FOR SHARE for its transaction, and on PostgreSQL a share locker
    does not queue behind a waiting exclusive one. Four streams whose transactions
    overlap (each held 0.1 s here) kept the removal waiting as long as they lasted. The
    removal revokes the certificates first, on their own: the next requests are refused
    at the door, and it waits only for those under way. Each stream has a certificate of
    its own: one caller's registrations are combined into one transaction at a time
    (vir.services.combining), different callers' run side by side."""
    pems = []
    for _ in range(4):
        issued = pki.issue_client_certificate(
            CA, ix.oin(SCHOOL), ORGS[SCHOOL].name, T0 - dt.timedelta(hours=1), VALID_UNTIL
        )
        register_certificate(ix.db, issued.cert, T0, Role.SYSTEM)
        pems.append(pki.cert_pem(issued.cert).decode("ascii"))
    original = signals_service.in_transaction

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.1)  # inside the write transaction, after the row's FOR SHARE
        return original(*args, **kwargs)

    monkeypatch.setattr(signals_service, "in_transaction", slow)
    until = time.monotonic() + STREAM_SECONDS
    removed_at: list[float] = []
    after: list[int] = []  # statuses of requests sent once the removal returned
    answers: list[tuple[float, int]] = []  # (when it was sent, its status)

    def stream(k: int) -> None:
        time.sleep(k * 0.025)
        n = 0
        while (sent := time.monotonic()) < until and not after:
            ix.app.anonymous()
            reply = ix.app.request(
                "POST",
                "/v1/signals",
                certificate=pems[k],
                json=signal_body(f"sc-{k}-{n}", f"Kim {k} {n}", 1),
            )
            answers.append((sent, reply.status_code))
            if removed_at and sent > removed_at[0]:
                after.append(reply.status_code)  # the streams stop after one such
            n += 1

    streams = [threading.Thread(target=stream, args=(k,)) for k in range(4)]
    for thread in streams:
        thread.start()
    deadline = time.monotonic() + 30
    while not any(status == 201 for _at, status in answers):
        assert time.monotonic() < deadline, "no registration got through"
        time.sleep(0.05)
    began = time.monotonic()
    result = offboarding.remove(ix.db, ix.oin(SCHOOL), AFTER, withdraw=True)
    removed_at.append(time.monotonic())
    for thread in streams:
        thread.join(STREAM_SECONDS + 30)
    # Measured: 0.15 s; before the change 2.9-8.0 s (the stream's whole 8 s, mostly).
    assert removed_at[0] - began < 1.5, "the removal waited for the stream"
    stored = sum(1 for _at, status in answers if status == 201)
    assert result.withdrawn == stored and result.revoked == 2 + len(pems)
    assert {status for sent, status in answers if sent > removed_at[0]} == {403}
    assert "signals" not in ix.rows_of(SCHOOL)


def test_a_removal_that_stops_half_way_leaves_the_organisation_shut_out(
    ix: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a review in stop 42: the shut-out (certificates revoked, sessions ended)
    commits before the removal proper; should that then fail, the organisation's people
    could still sign in to the portal, whose requests carry no certificate. Its portal
    sign-in goes in the shut-out too, and running the removal again finishes it."""
    ix.register(SCHOOL, "sc-kim", "Kim")
    ix.configure_delivery(SCHOOL)

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(offboarding, "_withdraw_all", crash)
    with pytest.raises(RuntimeError):
        offboarding.remove(ix.db, ix.oin(SCHOOL), AFTER, withdraw=True)
    held = ix.rows_of(SCHOOL)
    assert "organisation_oidc" not in held and "portal_sessions" not in held
    assert held["signals"] == 1  # not withdrawn: the removal proper rolled back
    refused = ix.with_certificate(SCHOOL, "GET", "/v1/signals")
    assert refused.status_code == 403
    monkeypatch.undo()
    again = offboarding.remove(ix.db, ix.oin(SCHOOL), AFTER, withdraw=True)
    assert again.withdrawn == 1 and "signals" not in ix.rows_of(SCHOOL)


def test_the_lifecycle_withdraws_a_signal_of_an_organisation_that_left(ix: Index) -> None:
    """Left behind by an older index (before registrations checked participation) or a
    database edit: the next lifecycle run withdraws it as the removal would have."""
    ix.register(GP, "gp-kim", "Kim")
    ix.register(SCHOOL, "sc-kim", "Kim")
    with ix.db.write() as session:  # as if it had left without its signals going
        row = session.get(OrganisationRow, ix.oin(SCHOOL))
        assert row is not None
        row.left_at = AFTER
    assert ix.matches(GP, "gp-kim") == ["person"]
    Lifecycle(ix.db, lambda: T0 + dt.timedelta(hours=1)).run()
    assert ix.matches(GP, "gp-kim") == []
    assert [n["type"] for n in ix.notifications(GP)] == ["match.left"]
    (withdrawn,) = ix.audit("signal.withdrawn")
    assert (withdrawn["reason"], withdrawn["actor"]) == ("participation_ended", "lifecycle")
    assert "signals" not in ix.rows_of(SCHOOL)


@pytest.mark.parametrize("by", ["withdrawal", "lifecycle"])
def test_archiving_a_signal_and_the_removal_do_not_deadlock(
    ix: Index, monkeypatch: pytest.MonkeyPatch, by: str
) -> None:
    """Found by a review of 62f8044: the removal locked the organisation's row FOR
    UPDATE, which the archive's foreign key (key share) waits for, while an archiving
    withdrawal or expiry held the young person the removal then waited for: a deadlock
    on PostgreSQL (the withdrawal 503, the lifecycle run failed). FOR NO KEY UPDATE."""
    ix.register(SCHOOL, "sc-kim", "Kim")
    ix.register(GP, "gp-kim", "Kim")
    held = _Held(monkeypatch, removal.repo, "archive_signals")
    if by == "withdrawal":
        first, done = _in_thread(lambda: ix.withdraw(SCHOOL, "sc-kim", "risk_ended"))
    else:
        later = lambda: T0 + dt.timedelta(days=3 * 366)  # noqa: E731 (past the term)
        first, done = _in_thread(lambda: Lifecycle(ix.db, later).run())
    assert held.inside.wait(30)
    second, removed = _removing(ix)
    second.join(1.0)
    held.release.set()
    first.join(60)
    second.join(60)
    assert not [r for r in done + removed if isinstance(r, Exception)], (done, removed)
    if by == "withdrawal":
        assert [r.status_code for r in done] == [204]
    assert "signals" not in ix.rows_of(SCHOOL)


def test_a_coordinator_change_racing_the_removal_is_refused(
    ix: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a review of 62f8044: on PostgreSQL a coordinator's change whose caller was
    checked before the removal waited for it and then wrote the contact details the
    removal had just cleared back onto the tombstone."""
    ix.register(SCHOOL, "sc-kim", "Kim")
    held = _Held(monkeypatch, offboarding, "signals_of_organisation")
    removing, _removed = _removing(ix)
    assert held.inside.wait(30)
    caller = Caller(ORGS[SCHOOL], ix.fingerprints[SCHOOL, Role.COORDINATOR], Role.COORDINATOR)
    els = Professional("Els Visser", "els@school.example", None)
    changing, changed = _in_thread(
        lambda: onboarding.set_coordinator(ix.db, ix.oin(SCHOOL), els, T0, caller)
    )
    changing.join(1.0)
    held.release.set()
    removing.join(30)
    changing.join(30)
    assert [type(c) for c in changed] == [CertificateRevoked]
    row = _organisation(ix, SCHOOL)
    assert row is not None and row.left_at is not None
    assert (row.coordinator_name, row.coordinator_email) == (None, None)


def _removed_municipalitys(ix: Index, role: Role) -> None:
    """The municipality's officer of ``role``, identified before the municipality was
    removed (as a request under way at the removal would have been)."""
    register_organisation(ix.db, MUNICIPALITY, T0)
    issued = pki.issue_client_certificate(
        CA, str(MUNICIPALITY.oin), MUNICIPALITY.name, T0 - dt.timedelta(hours=1), VALID_UNTIL
    )
    fingerprint = register_certificate(ix.db, issued.cert, T0, role)
    officer = Caller(MUNICIPALITY, fingerprint, role)
    ix.app.app.dependency_overrides[require_caller] = lambda: officer  # checked before
    assert ix.vir("org", "remove", "--oin", str(MUNICIPALITY.oin)).code == 0


def test_a_removed_municipalitys_privacy_officer_is_refused(ix: Index) -> None:
    """Left by the review of 62f8044: access, erasure and a death notice by an officer of
    a municipality removed meanwhile; refused as revoked, nothing erased or looked up."""
    ix.register(SCHOOL, "sc-kim", "Kim")
    _removed_municipalitys(ix, Role.PRIVACY_OFFICER)
    kim = {"epoch": 1, "person": b64url_encode(person("Kim"))}
    for path, body in (
        ("/v1/privacy/access", kim),
        ("/v1/privacy/erasure", kim | {"kind": "erasure"}),
        ("/v1/privacy/deaths", kim),
    ):
        reply = ix.app.request("POST", path, json=body)
        assert reply.status_code == 403, (path, reply.text)
        assert reply.json()["type"].endswith("certificate-revoked")
    assert ix.rows_of(SCHOOL)["signals"] == 1
    assert not ix.audit("access.requested")


def test_an_address_exclusion_by_a_removed_municipality_is_refused(ix: Index) -> None:
    """Found by a review of 62f8044: a municipality's address officer checked before its
    removal could still put an address on the list, audited under the removed OIN."""
    _removed_municipalitys(ix, Role.ADDRESS_OFFICER)
    address = {"address": b64url_encode(person("Dorpsstraat 1")), "epoch": 1}
    for method, body in (("POST", address | {"label": "Opvang"}), ("DELETE", address)):
        reply = ix.app.request(method, "/v1/address-exclusions", json=body)
        assert reply.status_code == 403, reply.text
        assert reply.json()["type"].endswith("certificate-revoked")
    assert not ix.audit("admin.address_excluded")
