"""The household rule over the HTTP API: a parent belongs to the young person.

Once any active signal names Q as a parent of X, every signal on X is in Q's
household (DESIGN.md §3), also one that names no parents; the link lasts while
some active signal names it. Written against the API only (the whole app
in-process, ``support.inapp``): signals go in with ``POST /v1/signals`` and out
with ``DELETE``, and what each organisation learns is read from
``GET /v1/notifications`` and ``GET /v1/matches``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.inapp import InApp, in_app, signal_body
from support.instore import ORGS
from support.world import person

from vir.domain.encoding import b64url_encode

SCHOOL, GP, YOUTH_CARE, POLICE = range(4)
NAME = {i: org.name for i, org in enumerate(ORGS)}

# (type, own local_ref, via, the other organisations shown, whether shown active)
Seen = tuple[str, str, str, tuple[str, ...], bool]


class Index:
    """The API as organisations use it, with each organisation's notification cursor."""

    def __init__(self, app: InApp) -> None:
        self.app = app
        self.epoch = app.epoch
        self.cursor: dict[int, str | None] = dict.fromkeys(range(len(ORGS)))
        self.texts: list[str] = []

    def register(self, org: int, ref: str, child: str, parents: tuple[str, ...] = ()) -> None:
        body = signal_body(ref, child, self.epoch)
        body["parents"] = [b64url_encode(person(p)) for p in parents]
        self.app.as_caller(org)
        reply = self.app.request("POST", "/v1/signals", json=body)
        assert reply.status_code == 201, reply.text

    def withdraw(self, org: int, ref: str) -> None:
        self.app.as_caller(org)
        reply = self.app.request("DELETE", f"/v1/signals/{ref}", params={"reason": "risk_ended"})
        assert reply.status_code == 204, reply.text

    def news(self, org: int) -> list[Seen]:
        """The organisation's notifications since it last looked."""
        self.app.as_caller(org)
        after = self.cursor[org]
        reply = self.app.request(
            "GET", "/v1/notifications", params={"limit": 100, **({"after": after} if after else {})}
        )
        assert reply.status_code == 200, reply.text
        page = reply.json()
        self.cursor[org] = page["next"]
        self.texts.append(reply.text)
        return sorted(
            (
                item["type"],
                item["local_ref"],
                item["match"]["via"],
                tuple(sorted(p["organisation"]["name"] for p in item["match"]["participants"])),
                item["match"]["active"],
            )
            for item in page["items"]
        )

    def everyone(self) -> dict[str, list[Seen]]:
        return {NAME[org]: self.news(org) for org in range(len(ORGS))}

    def matches(self, org: int, ref: str) -> list[tuple[str, tuple[str, ...]]]:
        self.app.as_caller(org)
        reply = self.app.request("GET", "/v1/matches", params={"local_ref": ref})
        assert reply.status_code == 200, reply.text
        return sorted(
            (m["via"], tuple(sorted(p["organisation"]["name"] for p in m["participants"])))
            for m in reply.json()["matches"]
        )


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    with in_app(tmp_path) as app:
        yield Index(app)


def names(*orgs: int) -> tuple[str, ...]:
    return tuple(sorted(NAME[o] for o in orgs))


def test_school_gp_youth_care_one_household_until_the_school_withdraws(index: Index) -> None:
    # The school names Q as the mother of X; the GP registers X without parents.
    index.register(SCHOOL, "sc-x", "X", parents=("Q",))
    index.register(GP, "gp-x", "X")
    assert index.everyone() == {
        NAME[SCHOOL]: [("match.created", "sc-x", "person", names(GP), True)],
        NAME[GP]: [("match.created", "gp-x", "person", names(SCHOOL), True)],
        NAME[YOUTH_CARE]: [],
        NAME[POLICE]: [],
    }
    # Youth care registers X's sibling Y with mother Q: one household of all three,
    # the GP included through the school's parent link.
    index.register(YOUTH_CARE, "yc-y", "Y", parents=("Q",))
    assert index.everyone() == {
        NAME[SCHOOL]: [("match.created", "sc-x", "parent", names(GP, YOUTH_CARE), True)],
        NAME[GP]: [("match.created", "gp-x", "parent", names(SCHOOL, YOUTH_CARE), True)],
        NAME[YOUTH_CARE]: [("match.created", "yc-y", "parent", names(SCHOOL, GP), True)],
        NAME[POLICE]: [],
    }
    assert index.matches(GP, "gp-x") == [
        ("parent", names(SCHOOL, YOUTH_CARE)),
        ("person", names(SCHOOL)),
    ]

    # The school withdraws: no active signal names Q as X's parent any more. The
    # household keeps one young person (Y) and ends; so does the person match on X.
    index.withdraw(SCHOOL, "sc-x")
    assert index.everyone() == {
        NAME[SCHOOL]: [],
        NAME[GP]: [
            ("match.left", "gp-x", "parent", names(YOUTH_CARE), False),
            ("match.left", "gp-x", "person", (), False),
        ],
        NAME[YOUTH_CARE]: [("match.left", "yc-y", "parent", names(GP), False)],
        NAME[POLICE]: [],
    }
    assert index.matches(GP, "gp-x") == []
    assert index.matches(YOUTH_CARE, "yc-y") == []
    for text in index.texts:  # never a pseudonym on the wire
        for who in ("X", "Y", "Q"):
            assert b64url_encode(person(who)) not in text


def test_the_gp_leaves_a_household_that_goes_on(index: Index) -> None:
    index.register(SCHOOL, "sc-x", "X", parents=("Q",))
    index.register(GP, "gp-x", "X")
    index.register(YOUTH_CARE, "yc-y", "Y", parents=("Q",))
    index.register(POLICE, "po-z", "Z", parents=("Q",))
    index.everyone()
    assert index.matches(GP, "gp-x") == [
        ("parent", names(SCHOOL, YOUTH_CARE, POLICE)),
        ("person", names(SCHOOL)),
    ]
    # The school withdraws: the household of Y and Z goes on, without X. The GP's
    # signal is still registered but out of it, and is told so (shown inactive).
    index.withdraw(SCHOOL, "sc-x")
    assert index.everyone() == {
        NAME[SCHOOL]: [],
        NAME[GP]: [
            ("match.left", "gp-x", "parent", names(YOUTH_CARE, POLICE), False),
            ("match.left", "gp-x", "person", (), False),
        ],
        NAME[YOUTH_CARE]: [("match.left", "yc-y", "parent", names(POLICE), True)],
        NAME[POLICE]: [("match.left", "po-z", "parent", names(YOUTH_CARE), True)],
    }
    assert index.matches(GP, "gp-x") == []
    # Youth care now names Q as X's parent too (a signal on X): the GP is back in.
    # (A participant is one signal: youth care is shown with both of its signals.)
    index.register(YOUTH_CARE, "yc-x", "X", parents=("Q",))
    assert index.everyone() == {
        NAME[SCHOOL]: [],
        NAME[GP]: [
            ("match.created", "gp-x", "parent", names(YOUTH_CARE, YOUTH_CARE, POLICE), True),
            ("match.created", "gp-x", "person", names(YOUTH_CARE), True),
        ],
        NAME[YOUTH_CARE]: [
            ("match.created", "yc-x", "parent", names(GP, POLICE), True),
            ("match.created", "yc-x", "person", names(GP), True),
            # The school's archived signal on X, offered once (DESIGN.md §3).
            ("match.historical", "yc-x", "person", names(SCHOOL), False),
            # Youth care's signal on Y sees the GP join (not its own new signal).
            ("match.joined", "yc-y", "parent", names(GP, POLICE), True),
        ],
        NAME[POLICE]: [("match.joined", "po-z", "parent", names(GP, YOUTH_CARE, YOUTH_CARE), True)],
    }


def test_the_gp_first_then_the_school_names_the_mother(index: Index) -> None:
    # The GP registers X without parents; youth care registers sibling Y with mother Q:
    # nothing links X to Q yet.
    index.register(GP, "gp-x", "X")
    index.register(YOUTH_CARE, "yc-y", "Y", parents=("Q",))
    assert all(seen == [] for seen in index.everyone().values())
    # The school names Q as X's mother: the link appears and the GP is in the household.
    index.register(SCHOOL, "sc-x", "X", parents=("Q",))
    assert index.everyone() == {
        NAME[SCHOOL]: [
            ("match.created", "sc-x", "parent", names(GP, YOUTH_CARE), True),
            ("match.created", "sc-x", "person", names(GP), True),
        ],
        NAME[GP]: [
            ("match.created", "gp-x", "parent", names(SCHOOL, YOUTH_CARE), True),
            ("match.created", "gp-x", "person", names(SCHOOL), True),
        ],
        NAME[YOUTH_CARE]: [("match.created", "yc-y", "parent", names(SCHOOL, GP), True)],
        NAME[POLICE]: [],
    }
    # The police registers X too, without parents: in the household through the link;
    # the earlier members learn that it joined.
    index.register(POLICE, "po-x", "X")
    assert index.everyone() == {
        NAME[SCHOOL]: [
            ("match.joined", "sc-x", "parent", names(GP, YOUTH_CARE, POLICE), True),
            ("match.joined", "sc-x", "person", names(GP, POLICE), True),
        ],
        NAME[GP]: [
            ("match.joined", "gp-x", "parent", names(SCHOOL, YOUTH_CARE, POLICE), True),
            ("match.joined", "gp-x", "person", names(SCHOOL, POLICE), True),
        ],
        NAME[YOUTH_CARE]: [("match.joined", "yc-y", "parent", names(SCHOOL, GP, POLICE), True)],
        NAME[POLICE]: [
            ("match.created", "po-x", "parent", names(SCHOOL, GP, YOUTH_CARE), True),
            ("match.created", "po-x", "person", names(SCHOOL, GP), True),
        ],
    }


def test_a_household_already_matched_is_joined_when_the_link_appears(index: Index) -> None:
    index.register(YOUTH_CARE, "yc-y", "Y", parents=("Q",))
    index.register(POLICE, "po-z", "Z", parents=("Q",))
    index.register(GP, "gp-x", "X")
    index.everyone()
    index.register(SCHOOL, "sc-x", "X", parents=("Q",))
    got = index.everyone()
    # The GP's signal joins with the school's: each newcomer gets the match as created,
    # the earlier members that two organisations joined.
    assert got[NAME[GP]] == [
        ("match.created", "gp-x", "parent", names(SCHOOL, YOUTH_CARE, POLICE), True),
        ("match.created", "gp-x", "person", names(SCHOOL), True),
    ]
    assert got[NAME[YOUTH_CARE]] == [
        ("match.joined", "yc-y", "parent", names(SCHOOL, GP, POLICE), True)
    ]
    assert got[NAME[POLICE]] == [
        ("match.joined", "po-z", "parent", names(SCHOOL, GP, YOUTH_CARE), True)
    ]
