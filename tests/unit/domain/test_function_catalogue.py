"""The function catalogue: fixed codes with Dutch labels per organisation category."""

from __future__ import annotations

import re

import pytest

from vir.client.demo import SCENARIO
from vir.domain import functions
from vir.domain.errors import InputError
from vir.domain.organisations import Category
from vir.domain.signals import Professional


@pytest.mark.parametrize("category", [c for c in Category if c.reports])
def test_every_reporting_category_has_realistic_functions_and_overig(
    category: Category,
) -> None:
    listed = functions.of_category(category)
    assert 2 <= len(listed) <= 12
    assert listed[-1] == functions.Function("overig", "Overige functie")
    codes = [f.code for f in listed]
    assert len(codes) == len(set(codes))
    for function in listed:
        assert re.fullmatch(functions.CODE_PATTERN, function.code)
        assert function.label[0].isupper() and function.label.strip() == function.label


def test_a_municipality_has_no_functions() -> None:
    assert functions.of_category(Category.MUNICIPALITY) == ()
    with pytest.raises(InputError):
        functions.check_for(Category.MUNICIPALITY, "overig")


def test_one_code_has_one_label_everywhere() -> None:
    for category, listed in functions.CATALOGUE.items():
        for function in listed:
            assert functions.LABELS[function.code] == function.label, (category, function)
    assert set(functions.CODES) == {f.code for fs in functions.CATALOGUE.values() for f in fs}


def test_labels_name_a_role_not_a_concern() -> None:
    """Labels are shown to every match partner: none may say what a signal is about."""
    concerns = ("mishandeling", "geweld", "misbruik", "verwaarlozing", "zeden", "drugs")
    for label in functions.LABELS.values():
        assert not any(word in label.lower() for word in concerns), label


def test_codes_are_checked_per_category() -> None:
    functions.check_for(Category.EDUCATION, "intern_begeleider")
    functions.check_for(Category.GP, "poh_ggz")
    functions.check_for(Category.GP, None)
    with pytest.raises(InputError) as refused:
        functions.check_for(Category.EDUCATION, "huisarts", "professional.function")
    assert refused.value.field == "professional.function"
    assert "category" in refused.value.detail
    with pytest.raises(InputError) as unknown:
        functions.check_for(Category.EDUCATION, "mentor vermoedt mishandeling")
    assert "mishandeling" not in unknown.value.detail
    assert functions.label("zorgcoordinator") == "Zorgcoördinator"
    assert functions.label("free text from before 0009") is None
    assert functions.label(None) is None


@pytest.mark.parametrize(("category", "_who", "professional"), SCENARIO)
def test_the_demo_data_passes(category: str, _who: str, professional: dict[str, str]) -> None:
    Professional(**professional)
    functions.check_for(Category(category), professional["function"])
