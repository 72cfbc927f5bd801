"""Only an organisation with a written agreement (convenant) may be registered to
report, whichever way it is registered: the rule is the onboarding service's."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.instore import T0, fresh_store, template

from vir.domain.errors import InputError
from vir.domain.organisations import Category, Oin, Organisation
from vir.services.onboarding import register_organisation
from vir.store.organisations import get_organisation


@pytest.mark.parametrize("convenant", [None, "", "   "])
def test_a_reporting_organisation_without_a_convenant_is_refused(
    tmp_path: Path, convenant: str | None
) -> None:
    org = Organisation(Oin("00000009000000000777"), "School Z", Category.EDUCATION, "R", convenant)
    with fresh_store(template(tmp_path), tmp_path / "c.sqlite") as store:
        with pytest.raises(InputError) as refused:
            register_organisation(store.db, org, T0)
        assert refused.value.field == "convenant"
        with store.db.read() as session:
            assert get_organisation(session, "00000009000000000777") is None


def test_a_municipality_needs_none_and_a_reporter_with_one_is_registered(tmp_path: Path) -> None:
    city = Organisation(Oin("00000009000000000778"), "Gemeente Z", Category.MUNICIPALITY, "R")
    school = Organisation(
        Oin("00000009000000000779"), "School Y", Category.EDUCATION, "R", "RTM-2026-001"
    )
    with fresh_store(template(tmp_path), tmp_path / "c.sqlite") as store:
        register_organisation(store.db, city, T0)
        register_organisation(store.db, school, T0)
        with store.db.read() as session:
            registered = get_organisation(session, "00000009000000000779")
        assert registered is not None and registered.convenant == "RTM-2026-001"
