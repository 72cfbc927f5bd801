"""The e-mail pattern the OpenAPI document states (``EMAIL_PATTERN``) and the check the
service makes (``email_address``) agree: an independent client that validates with the
pattern is never refused for a shape the pattern allows, except for what the document's
description adds (the local part's length and pieces). The document once allowed ``%``,
which the service refuses."""

from __future__ import annotations

import re

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from vir.api.schemas import EMAIL_PATTERN, ProfessionalIn
from vir.domain.contact import MAX_EMAIL_LOCAL, MAX_EMAIL_PIECES, email_address
from vir.domain.errors import InputError

PATTERN = re.compile(EMAIL_PATTERN)
# Every character either side of @ may hold, and the ones around them; built as
# "local@domain", so that many draws are addresses the service takes.
_LOCAL = st.text(st.sampled_from("aZ09._+-%!#~é"), min_size=1, max_size=12)
_LABEL = st.text(st.sampled_from("aZ09-_é"), min_size=0, max_size=8)
_TLD = st.text(st.sampled_from("aZ0é"), min_size=1, max_size=4)
_CANDIDATES = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    _LOCAL,
    st.lists(_LABEL, min_size=0, max_size=6),
    _TLD,
)


def _accepted(text: str) -> bool:
    try:
        email_address(text)
    except InputError:
        return False
    return True


def _within_description(text: str) -> bool:
    """The description's limits, which the pattern does not state."""
    local = text.split("@", 1)[0]
    pieces = [p for p in re.split(r"[._+\-]", local) if p]
    return len(local) <= MAX_EMAIL_LOCAL and len(pieces) <= MAX_EMAIL_PIECES


def test_the_document_states_the_pattern() -> None:
    schema = ProfessionalIn.model_json_schema()
    email = schema["properties"]["email"]["anyOf"][0]
    assert email["pattern"] == EMAIL_PATTERN


@given(_CANDIDATES)
def test_what_the_service_accepts_the_pattern_allows(text: str) -> None:
    accepted = _accepted(text)
    event(f"accepted: {accepted}")
    if accepted:
        assert PATTERN.fullmatch(text), text


@given(st.from_regex(PATTERN, fullmatch=True).filter(lambda t: len(t) <= 254 and t.isascii()))
def test_what_the_pattern_allows_the_service_accepts_within_the_description(text: str) -> None:
    if _within_description(text):
        assert _accepted(text), text


@pytest.mark.parametrize(
    "text", ["a%b@x.example", "a..b@x.example", ".a@x.example", "a@x", "a@a.b.c.d.e.f"]
)
def test_shapes_both_refuse(text: str) -> None:
    assert not PATTERN.fullmatch(text)
    assert not _accepted(text)
