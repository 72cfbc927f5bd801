"""The audit action catalogue, its emitters and docs/audit.md agree (STYLE.md: names several
modules must agree on live in one catalogue, and a test fails when they disagree)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from support.instore import T0

from vir.api.metrics import code_label
from vir.audit.actions import (
    CATALOGUE,
    Action,
    Performer,
    Purpose,
    UnknownAction,
    action_of,
    markdown_table,
)
from vir.audit.chain import Outcome
from vir.store import audit_log

ROOT = Path(__file__).resolve().parents[3]
VIR = ROOT / "vir"
CATALOGUE_MODULE = VIR / "audit" / "actions.py"
DOC = ROOT / "docs" / "audit.md"
BEGIN = "<!-- actions: generated from vir/audit/actions.py, checked by tests -->"
END = "<!-- end of actions -->"


def _modules() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(), str(path)))
        for path in sorted(VIR.rglob("*.py"))
        if path != CATALOGUE_MODULE and "migrations" not in path.parts
    ]


def _member(node: ast.AST) -> str | None:
    """``X`` of an ``Action.X`` expression."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Action"
    ):
        return node.attr
    return None


def _passed(node: ast.expr) -> list[str]:
    """The members an argument passes on: ``Action.X``, or either branch of ``a if c else b``."""
    if isinstance(node, ast.IfExp):
        return _passed(node.body) + _passed(node.orelse)
    name = _member(node)
    return [name] if name is not None else []


def emitted() -> dict[str, list[str]]:
    """Members passed as an argument to a call anywhere in vir/ (``new_event(Action.X, ...)``
    or a helper that hands its argument on), with where."""
    found: dict[str, list[str]] = {}
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                arguments = [*node.args, *(k.value for k in node.keywords)]
                for argument in arguments:
                    for name in _passed(argument):
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.setdefault(name, []).append(where)
    return found


def test_every_action_is_described() -> None:
    assert set(CATALOGUE) == set(Action)
    values = [a.value for a in Action]
    assert len(values) == len(set(values))
    for action in Action:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*\.[a-z]+(_[a-z]+)*", action.value), action
        assert code_label(action) == action.value, "an action must fit a metric label"
        assert action.name == action.value.upper().replace(".", "_"), action
        assert action.meaning.endswith("."), action
        assert action.label_nl and action.label_nl[0].isupper(), action
        assert isinstance(action.performer, Performer)
        assert isinstance(action.purpose, Purpose)


def test_an_action_outside_the_catalogue_is_refused() -> None:
    assert action_of("signal.registered") is Action.SIGNAL_REGISTERED
    for wrong in ("signal.registred", "test.entry", "", "SIGNAL.REGISTERED"):
        with pytest.raises(UnknownAction):
            audit_log.new_event(wrong, Outcome.SUCCESS, T0)  # type: ignore[arg-type]
    event = audit_log.new_event(Action.MATCH_CREATED, Outcome.SUCCESS, T0)
    assert type(event.action) is str and event.action == "match.created"
    assert b'"action":"match.created"' in event.encode()


def test_every_action_has_an_emitter() -> None:
    found = emitted()
    unused = [a.name for a in Action if a.name not in found]
    assert not unused, f"in the catalogue, emitted nowhere in vir/: {unused}"
    unknown = sorted(set(found) - {a.name for a in Action})
    assert not unknown, f"not in the catalogue: {unknown} at {[found[n] for n in unknown]}"


def test_no_action_is_written_or_compared_as_a_literal() -> None:
    """Emitters pass members and readers compare with members: a renamed action cannot
    silently drop a metric or a report line."""
    wrong = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            literals: list[ast.expr] = []
            if isinstance(node, ast.Compare) and any(
                isinstance(side, ast.Attribute) and side.attr == "action"
                for side in (node.left, *node.comparators)
            ):
                literals = [node.left, *node.comparators]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "new_event":
                literals = node.args[:1]
            for literal in literals:
                text = isinstance(literal, ast.Constant) and isinstance(literal.value, str)
                if text or isinstance(literal, ast.JoinedStr):
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not wrong, f"action literals outside the catalogue: {wrong}"


def test_docs_list_the_catalogue() -> None:
    text = DOC.read_text()
    assert BEGIN in text and END in text, f"docs/audit.md needs {BEGIN} ... {END}"
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip() + "\n"
    expected = markdown_table()
    assert table == expected, (
        "docs/audit.md's action table differs from vir/audit/actions.py; put this between "
        f"the markers:\n\n{expected}"
    )
