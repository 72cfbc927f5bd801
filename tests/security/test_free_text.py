"""No case content through the contact details (issue 12, part 6).

Attack: the index must never hold case content, but a signal carries the
professional's name, e-mail, phone and function, shown to every match partner. An
attacker (or a well-meaning professional typing into the wrong box) puts a sentence
about the case into one of them. Every such request is refused with 422 naming the
field, the answer does not repeat the value, and nothing of it is stored anywhere in
the database. Over the whole app in-process (``support.inapp``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS

from vir.api.identity import require_caller
from vir.domain import functions
from vir.domain.organisations import Category, Role
from vir.services.identity import Caller

SCHOOL, GP = 0, 1
MARKER = "mishandeling"  # in every smuggled value; must never come back or be stored
SENTENCE = "Anna de Wit vermoedt mishandeling door stiefvader"

# (field of the professional, smuggled value)
SMUGGLED: list[tuple[str, Any]] = [
    ("name", SENTENCE),
    ("name", "anna de wit vermoedt mishandeling"),
    ("name", "Anna Wit: mishandeling"),
    ("name", "Anna de Wit\nmishandeling door stiefvader"),
    ("name", "Anna de Wit\u200dmishandeling"),
    ("name", "Anna de Wit\u202emishandeling"),
    ("name", "Anna\u2028mishandeling"),
    ("name", "Anna\u00admishandeling"),
    ("name", "Anna de Wit\tmishandeling"),
    ("name", "Anna \u0412\u0438\u0442 mishandeling"),  # Cyrillic look-alikes
    ("name", "Anna Wit-vermoedt-mishandeling"),
    ("name", "Anna.Vermoedt.Mishandeling"),
    ("name", "Anna Vermoedt'mishandeling'door"),
    ("name", "Anna Wit Vermoedt Ernstige Mishandeling Door Stiefvader"),
    ("name", "Anna " + "Mishandeling" * 3),
    ("name", "Anna Wit mishandeling 2x"),
    ("function", "mentor, vermoedt mishandeling"),
    ("function", "mishandeling"),
    ("function", "mentor\nmishandeling"),
    ("email", "anna vermoedt mishandeling@school.example"),
    ("email", "anna%20mishandeling@school.example"),
    ("email", "anna.de.wit.vermoedt.mishandeling.door.stiefvader@school.example"),
    ("email", "anna@mishandeling.door.de.stiefvader.school.example"),
    ("email", '"anna mishandeling"@school.example'),
    ("phone", "06-12345678 mishandeling"),
    ("phone", "mishandeling"),
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InApp]:
    with in_app(tmp_path) as made:
        yield made


def _body(ref: str, who: str, app: InApp, **professional: Any) -> dict[str, Any]:
    body = signal_body(ref, who, app.epoch)
    body["professional"] = {
        "name": "Anna de Wit",
        "email": "a.dewit@school.example",
        "phone": "010-1234567",
        "function": "mentor",
    } | professional
    return body


def _refused(answer: Any, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert field in problem["detail"]
    assert MARKER not in answer.text.lower()
    assert "stiefvader" not in answer.text.lower()


def _stored_text(app: InApp) -> str:
    """Every value of every table, as text (case content must be in none of them)."""
    engine = app.app.state.services.db.engine
    meta = MetaData()
    meta.reflect(engine)
    parts: list[str] = []
    with engine.connect() as connection:
        for table in meta.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | bytearray | memoryview):
                        parts.append(bytes(value).decode("utf-8", "replace"))
                    else:
                        parts.append(str(value))
    return "\n".join(parts).lower()


@pytest.mark.parametrize(("field", "value"), SMUGGLED)
def test_case_content_in_contact_details_is_refused_and_not_stored(
    app: InApp, field: str, value: Any
) -> None:
    app.as_caller(SCHOOL)
    answer = app.request("POST", "/v1/signals", json=_body("LLN-1", "Kim", app, **{field: value}))
    _refused(answer, f"professional.{field}")

    # A contact change of an existing signal (PATCH) is held to the same rules.
    assert app.request("POST", "/v1/signals", json=_body("LLN-2", "Sam", app)).status_code == 201
    patch = {"professional": _body("x", "x", app, **{field: value})["professional"]}
    _refused(app.request("PATCH", "/v1/signals/LLN-2", json=patch), f"professional.{field}")

    assert MARKER not in _stored_text(app)
    # Nothing of the refused registration was kept: the same young person still registers.
    assert app.request("POST", "/v1/signals", json=_body("LLN-1", "Kim", app)).status_code == 201


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, v in SMUGGLED if f != "function"])
def test_the_coordinator_is_held_to_the_same_rules(app: InApp, field: str, value: Any) -> None:
    """``PUT /v1/organisation/coordinator``: a coordinator has no function, the rest alike."""
    coordinator = Caller(ORGS[SCHOOL], "c" * 64, Role.COORDINATOR)
    app.app.dependency_overrides[require_caller] = lambda: coordinator
    body = {"name": "Carla de Graaf", "email": "c.degraaf@school.example"}
    answer = app.request("PUT", "/v1/organisation/coordinator", json=body | {field: value})
    _refused(answer, field)
    assert MARKER not in _stored_text(app)
    good = app.request("PUT", "/v1/organisation/coordinator", json=body)
    assert good.status_code == 204, good.text


def test_the_sentence_from_the_issue(app: InApp) -> None:
    """Before: 201 and the sentence shown to every match partner. Now: 422."""
    app.as_caller(SCHOOL)
    answer = app.request("POST", "/v1/signals", json=_body("LLN-1", "Kim", app, name=SENTENCE))
    _refused(answer, "professional.name")
    assert answer.json()["errors"] == [
        {
            "field": "professional.name",
            "message": "each part of a name starts with a capital letter, except "
            "tussenvoegsels such as van, de, der, 't",
        }
    ]
    # Six words of it are no better: the first lowercase word that is no tussenvoegsel.
    six = " ".join(SENTENCE.split()[:6])
    answer = app.request("POST", "/v1/signals", json=_body("LLN-1", "Kim", app, name=six))
    _refused(answer, "professional.name")


def test_a_function_of_another_category_is_refused(app: InApp) -> None:
    app.as_caller(SCHOOL)
    answer = app.request(
        "POST", "/v1/signals", json=_body("LLN-1", "Kim", app, function="huisarts")
    )
    _refused(answer, "professional.function")
    assert "category" in answer.json()["errors"][0]["message"]
    for code in [f.code for f in functions.of_category(Category.EDUCATION)]:
        ok = app.request(
            "POST", "/v1/signals", json=_body(f"LLN-{code}", f"kid-{code}", app, function=code)
        )
        assert ok.status_code == 201, ok.text


def test_partners_see_the_code_and_its_dutch_label(app: InApp) -> None:
    app.as_caller(SCHOOL)
    school = _body("LLN-1", "Kim", app, function="intern_begeleider", name="Anna van der Berg")
    assert app.request("POST", "/v1/signals", json=school).status_code == 201
    app.as_caller(GP)
    gp = _body("HA-1", "Kim", app, function="poh_ggz", name="Karim Bouali")
    answer = app.request("POST", "/v1/signals", json=gp)
    assert answer.status_code == 201, answer.text
    (match,) = answer.json()["matches"]
    (partner,) = match["participants"]
    assert partner["professional"]["function"] == "intern_begeleider"
    assert partner["professional"]["function_label"] == "Intern begeleider"
    app.as_caller(SCHOOL)
    items = app.request("GET", "/v1/notifications").json()["items"]
    shown = items[-1]["match"]["participants"][0]["professional"]
    assert (shown["function"], shown["function_label"]) == ("poh_ggz", "Praktijkondersteuner GGZ")
    own = app.request("GET", "/v1/signals").json()["items"][0]["professional"]
    assert own["function_label"] == "Intern begeleider"


def test_the_function_list_is_served(app: InApp) -> None:
    app.as_caller(SCHOOL)
    own = app.request("GET", "/v1/functions")
    assert own.status_code == 200, own.text
    (education,) = own.json()["categories"]
    assert education["category"] == "education"
    assert {"code": "intern_begeleider", "label": "Intern begeleider"} in education["functions"]
    assert education["functions"][-1] == {"code": "overig", "label": "Overige functie"}
    gp = app.request("GET", "/v1/functions", params={"category": "gp"}).json()["categories"]
    assert [c["category"] for c in gp] == ["gp"]
    every = app.request("GET", "/v1/functions", params={"category": "all"}).json()["categories"]
    assert [c["category"] for c in every] == [c.value for c in Category if c.reports]
    bogus = app.request("GET", "/v1/functions", params={"category": "mishandeling"})
    _refused(bogus, "category")
    app.anonymous()
    assert app.request("GET", "/v1/functions").status_code == 401


def test_the_openapi_document_lists_the_codes(app: InApp) -> None:
    document = app.request("GET", "/openapi.json").json()
    text = json.dumps(document)
    assert "/v1/functions" in document["paths"]
    assert '"intern_begeleider"' in text and '"function_label"' in text
