"""The label tables agree with the enums they label, and months and periods read Dutch."""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import vir
from vir.audit.actions import Action
from vir.domain import errors
from vir.domain.organisations import Category
from vir.domain.signals import PARTICIPATION_ENDED, WithdrawalReason
from vir.reports.labels import (
    CATEGORIES,
    FLAGS,
    PURPOSES,
    REFUSALS,
    WITHDRAWALS,
    action_label,
    flag_sentence,
    month_label,
    number,
    period_text,
)
from vir.services.consultations import Purpose
from vir.services.refusals import OVERFLOW, reason_code


def _every_error() -> set[type[errors.VirError]]:
    """Every error class of vir, whichever modules this test run happened to import."""
    for module in pkgutil.walk_packages(vir.__path__, "vir."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    return _subclasses(errors.VirError)


def _subclasses(cls: type[errors.VirError]) -> set[type[errors.VirError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


# How the source writes a refusal's reason as it is: ``record_refusal(request, "...")``, an
# access token's ``TokenRefused("...")``, and the portal's refusals (``Refused("...")``,
# ``SignInFailed("...")``, a sealed secret's code, ``refuse, user, "..."``,
# ``reason="..."``, and what its ``_reason`` functions return).
_WRITTEN = [
    r'record_refusal,? *\(?[^()"]*"([a-z_]+)"',
    r'TokenRefused\("([a-z_]+)"\)',
    r'Refused\(\s*"([a-z_]+)"',
    r'SignInFailed\("([a-z_]+)"\)',
    r'SealedSecretError\("([a-z_]+)"\)',
    r'refuse, [\w.]+, "([a-z_]+)"',
    r'reason="([a-z_]+)"',
]


def _recorded_refusal_reasons() -> set[str]:
    """Every reason a refusal is recorded with: the code of each error class, the overflow,
    and the codes the source passes as they are (``_WRITTEN``), read from the source."""
    written = set()
    for path in Path(vir.__file__).parent.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for pattern in _WRITTEN:
            written |= set(re.findall(pattern, source))
        for body in re.findall(r"\ndef _reason\(.*?(?=\n\S|\Z)", source, re.DOTALL):
            written |= set(re.findall(r'return "([a-z_]+)"', body))
    # The reading finds what is there.
    assert {"invalid_input", "token_expired", "csrf", "no_role", "secret", "refused"} <= written
    return {reason_code(e) for e in _every_error()} | {OVERFLOW} | written


@pytest.mark.parametrize(
    ("table", "codes"),
    [
        (PURPOSES, {p.value for p in Purpose}),
        (WITHDRAWALS, {r.value for r in WithdrawalReason} | {PARTICIPATION_ENDED}),
        (CATEGORIES, {c.value for c in Category} | {"totaal"}),
        (REFUSALS, _recorded_refusal_reasons()),
    ],
    ids=["purposes", "withdrawal reasons", "categories", "refusal reasons"],
)
def test_every_code_has_a_label_and_every_label_a_code(
    table: dict[str, tuple[str, str]], codes: set[str]
) -> None:
    assert set(table) == codes
    for nl, en in table.values():
        assert nl and en


def test_every_flag_kind_the_service_raises_has_a_label() -> None:

    import vir.services.reports as service

    source = Path(service.__file__).read_text(encoding="utf-8")
    kinds = {line.split('"')[3] for line in source.splitlines() if '"kind": "' in line}
    assert kinds == set(FLAGS)


def test_actions_in_dutch_and_english_and_unknown_codes_as_themselves() -> None:
    assert action_label("match.member_added") == "Organisatie aan match toegevoegd"
    assert action_label("match.member_added", "en") == "A signal joined an existing match"
    assert all(action_label(a.value) != a.value for a in Action)
    assert action_label("old.action") == "old.action"


def test_months_periods_and_numbers() -> None:
    assert month_label("2026-01") == "januari 2026"
    assert month_label("2026-10", "en") == "October 2026"
    assert month_label("totaal") == "totaal"
    assert period_text(dt.date(2026, 1, 1), dt.date(2026, 11, 1)) == "1 januari t/m 31 oktober 2026"
    assert (
        period_text(dt.date(2025, 12, 1), dt.date(2026, 2, 1))
        == "1 december 2025 t/m 31 januari 2026"
    )
    assert (
        period_text(dt.date(2026, 1, 1), dt.date(2026, 2, 1), "en")
        == "1 January to 31 January 2026"
    )
    assert number(3.5) == "3,5" and number(3.5, "en") == "3.5" and number(7.0) == "7"
    assert number(12) == "12"


def test_a_flag_is_a_sentence_with_its_figures() -> None:
    flag = {
        "oin": "00000009000000000198",
        "name": "Veilig Thuis T",
        "kind": "consultations_without_registrations",
        "figures": {"consultations": 30, "registrations": 0},
    }
    assert flag_sentence(flag) == (
        "Veilig Thuis T: 30 raadplegingen zonder eigen registraties in de periode"
    )
    later = {"name": None, "oin": None, "kind": "new_kind", "figures": {"n": 3}}
    assert flag_sentence(later) == "(systeem): new_kind: n 3"
