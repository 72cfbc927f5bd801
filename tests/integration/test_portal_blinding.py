"""The portal's browser-side pseudonymisation (vir/portal/static/vir-blind.js, the
bundle of vir/portal/js with @noble/curves) run in a real Chromium, against vir's own
Python OPRF and canonical inputs: the RFC 9497 known answer, the same pseudonym as the
Python client for the same input, threshold combination, and refusals. The page is
empty: only the committed bundle is loaded (the file the portal serves)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import postgres
from support.browser import chromium, new_context

from vir.client.canonical import nl_address, nl_bsn, nl_person, normalise_surname
from vir.crypto import oprf, threshold
from vir.domain.errors import InputError

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(postgres.on_postgresql(), reason="no database here: runs once, on SQLite"),
]
BUNDLE = Path(__file__).resolve().parents[2] / "vir" / "portal" / "static" / "vir-blind.js"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc9497-ristretto255-sha512-oprf.json"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with chromium([]) as browser:
        context = new_context(browser)
        found = context.new_page()
        found.set_content('<!doctype html><html lang="nl"><title>t</title></html>')
        found.add_script_tag(path=str(BUNDLE))
        yield found
        context.close()


def _js(page: Any, expression: str, *args: Any) -> Any:
    """Run ``expression`` (a function of args) in the page; InputError's field on a throw."""
    return page.evaluate(
        f"""args => {{ try {{ return {{ok: ({expression})(...args)}}; }}
            catch (e) {{ return {{error: e.field || String(e)}}; }} }}""",
        list(args),
    )


def test_the_rfc_9497_known_answer(page: Any) -> None:
    data = json.loads(VECTORS.read_text())
    for vector in data["vectors"]:
        canonical = bytes.fromhex(vector["Input"]).decode("latin-1")
        made = _js(
            page, "(i, b) => virBlind.blind(i, b)", canonical, _b64(bytes.fromhex(vector["Blind"]))
        )
        assert _raw(made["ok"]["blinded"]).hex() == vector["BlindedElement"]
        unblinded = _js(
            page,
            "(b, e) => virBlind.unblind(b, e)",
            made["ok"]["blind"],
            _b64(bytes.fromhex(vector["EvaluationElement"])),
        )
        expected = oprf.unblind(
            bytes.fromhex(vector["Blind"]), bytes.fromhex(vector["EvaluationElement"])
        )
        assert _raw(unblinded["ok"]) == expected


INPUTS = [
    ("nlBsn", ["123456782"], nl_bsn("123456782")),
    ("nlBsn", [" 111222333 "], nl_bsn("111222333")),
    ("nlPerson", ["de Vries", "2012-03-04", "v"], nl_person("de Vries", "2012-03-04", "v")),
    ("nlPerson", ["Öztürk-Çelik", "2010-12-31", "M"], nl_person("Öztürk-Çelik", "2010-12-31", "M")),
    ("nlPerson", ["van 't  Hof", "2009-01-01", "x"], nl_person("van 't  Hof", "2009-01-01", "x")),
    ("nlAddress", ["3011 ab", "7", "a-2"], nl_address("3011 ab", "7", "a-2")),
    ("nlAddress", ["1234AB", "0012", ""], nl_address("1234AB", "0012", "")),
]


@pytest.mark.parametrize(("function", "args", "canonical"), INPUTS)
def test_the_browser_pseudonym_is_the_python_clients(
    page: Any, function: str, args: list[str], canonical: str
) -> None:
    made_here = _js(page, f"(...a) => virBlind.{function}(...a)", *args)
    assert made_here == {"ok": canonical}
    key = oprf.random_scalar()
    blinded = _js(page, "i => virBlind.blind(i)", canonical)["ok"]
    evaluated = oprf.evaluate(key, _raw(blinded["blinded"]))  # the key holder's step
    pseudonym = _js(page, "(b, e) => virBlind.unblind(b, e)", blinded["blind"], _b64(evaluated))
    assert _raw(pseudonym["ok"]) == oprf.scalar_mult(key, oprf.hash_to_group(canonical.encode()))


@pytest.mark.parametrize(
    ("function", "args", "field"),
    [
        ("nlBsn", ["123456789"], "bsn"),
        ("nlBsn", ["12345678"], "bsn"),
        ("nlBsn", ["１２３４５６７８２"], "bsn"),  # full-width digits
        ("nlPerson", ["de Vries", "2012-02-30", "v"], "birth_date"),
        ("nlPerson", ["de Vries", "2012-03-04", "q"], "gender"),
        ("nlPerson", ["   ", "2012-03-04", "v"], "surname"),
        ("nlPerson", ["a:b", "2012-03-04", "v"], "surname"),
        ("nlAddress", ["0123AB", "1", ""], "postcode"),
        ("nlAddress", ["1234AB", "0", ""], "house_number"),
        ("nlAddress", ["1234AB", "1", "toolongx"], "suffix"),
    ],
)
def test_bad_inputs_are_refused_in_the_browser(
    page: Any, function: str, args: list[str], field: str
) -> None:
    assert _js(page, f"(...a) => virBlind.{function}(...a)", *args) == {"error": field}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(min_size=1, max_size=30))
def test_a_surname_is_refused_or_canonical_as_in_python(page: Any, surname: str) -> None:
    found = _js(page, "s => virBlind.normaliseSurname(s)", surname)
    if "ok" in found:
        assert found["ok"] == normalise_surname(surname)


def test_every_character_the_browser_accepts_is_canonical_as_in_python(page: Any) -> None:
    # Every code point, between two letters: accepted in the browser means the same
    # canonical form as the Python client's (most are refused: that is allowed).
    accepted = page.evaluate(
        """() => { const out = [];
          for (let cp = 0; cp < 0x30000; cp++) {
            if (cp >= 0xD800 && cp < 0xE000) continue;
            try { out.push([cp, virBlind.normaliseSurname("a" + String.fromCodePoint(cp) + "b")]); }
            catch (e) {} }
          return out; }"""
    )
    assert len(accepted) > 500  # the Latin letters with diacritics, and more
    wrong = [hex(cp) for cp, found in accepted if found != normalise_surname(f"a{chr(cp)}b")]
    assert wrong == []


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.text(
        alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzéèëïöüçñåøÁÉÖ -'")),
        min_size=1,
        max_size=25,
    ).filter(lambda s: s.strip(" -'") != "")
)
def test_latin_surnames_are_canonical_as_in_python(page: Any, surname: str) -> None:
    assert _js(page, "s => virBlind.normaliseSurname(s)", surname) == {
        "ok": normalise_surname(surname)
    }


def test_two_of_three_shares_give_the_single_key_pseudonym(page: Any) -> None:
    key = oprf.random_scalar()
    shares = threshold.split(key, 2, 3)
    blinded = _js(page, "i => virBlind.blind(i)", nl_bsn("123456782"))["ok"]
    element = _raw(blinded["blinded"])
    for pair in ((0, 1), (0, 2), (1, 2)):
        answers = [
            {"index": shares[i].index, "evaluated": _b64(oprf.evaluate(shares[i].secret, element))}
            for i in pair
        ]
        combined = _js(page, "a => virBlind.combine(a)", answers)["ok"]
        pseudonym = _js(page, "(b, e) => virBlind.unblind(b, e)", blinded["blind"], combined)["ok"]
        assert _raw(pseudonym) == oprf.scalar_mult(key, oprf.hash_to_group(b"nl-bsn:123456782"))


@pytest.mark.parametrize(
    "evaluated",
    [
        _b64(bytes(32)),  # the identity
        _b64((2**255 + 5).to_bytes(32, "little")),  # bit 255 set
        _b64(b"\xff" * 32),  # not a field element
        "too-short",
    ],
)
def test_a_bad_answer_from_the_key_holder_is_refused(page: Any, evaluated: str) -> None:
    blinded = _js(page, "i => virBlind.blind(i)", nl_bsn("123456782"))["ok"]
    found = _js(page, "(b, e) => virBlind.unblind(b, e)", blinded["blind"], evaluated)
    assert "error" in found


def test_input_errors_name_only_the_field(page: Any) -> None:
    found = page.evaluate(
        "() => { try { virBlind.nlBsn('123456789'); } catch (e) { return e.message; } }"
    )
    assert "123456789" not in found
    with pytest.raises(InputError):
        nl_bsn("123456789")
