"""A coordinator's contact details follow the professional's rules, also from the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.instore import ORGS, T0, Store, fresh_store, template

from vir import cli
from vir.domain.errors import InputError
from vir.domain.signals import Professional
from vir.services.onboarding import set_coordinator
from vir.store.tables import OrganisationRow

SENTENCE = "Anna de Wit vermoedt mishandeling door stiefvader"
OIN = str(ORGS[0].oin)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with fresh_store(template(tmp_path), tmp_path / "store.sqlite") as made:
        yield made


def _coordinator_name(store: Store) -> str | None:
    with store.db.read() as session:
        row = session.get(OrganisationRow, OIN)
        assert row is not None
        return row.coordinator_name


def test_set_coordinator_checks_the_contact_whoever_made_it(store: Store) -> None:
    # Professional.stored skips the checks (it is for rows already stored): the service
    # checks again, so no caller can hand it a sentence.
    with pytest.raises(InputError) as refused:
        set_coordinator(store.db, OIN, Professional.stored(SENTENCE, "c@x.example", None, None), T0)
    assert refused.value.field == "name"
    assert _coordinator_name(store) is None
    set_coordinator(store.db, OIN, Professional("Carla de Graaf", "c@x.example"), T0)
    assert _coordinator_name(store) == "Carla de Graaf"


def test_vir_org_coordinator_refuses_a_sentence_without_repeating_it(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store.db.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("VIR_DATABASE_URL", url)
    args = ["org", "coordinator", "--oin", OIN, "--email", "c@x.example"]
    assert cli.main([*args, "--name", SENTENCE]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vir: name: ") and "mishandeling" not in err
    assert cli.main([*args, "--name", "Carla de Graaf", "--phone", "bel na vijven"]) == 2
    assert capsys.readouterr().err.startswith("vir: phone: ")
    assert _coordinator_name(store) is None
    assert cli.main([*args, "--name", "Carla de Graaf"]) == 0
    assert _coordinator_name(store) == "Carla de Graaf"
