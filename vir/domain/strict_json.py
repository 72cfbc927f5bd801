"""Reading JSON that someone hands vir (a file on the command line, a body from the
network) without letting it crash the reader: a bounded size, a depth limit checked
before the parser recurses, numbers that stay numbers (no 10,000-digit integer, no
``1e400`` turned into infinity, no ``NaN``), and every object key once.

Every refusal is a ``NotJson`` (a ValueError) whose message names the problem and
never quotes the input: callers put it in their own one-line error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_DEPTH = 32  # no document vir reads nests deeper than a handful of levels
MAX_INT_DIGITS = 64  # an epoch, a size, a count: never near this long

# A JSON string (escapes included), unrolled so the regex engine never backtracks far;
# and the brackets that nest.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class NotJson(ValueError):
    """Why the input is not accepted as JSON, in words that never quote it."""


class TooLarge(NotJson):
    """The file holds more than the reader accepts."""


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path``, reading no more than ``max_bytes`` + 1 of it (``/dev/zero``
    ends too): TooLarge when there is more, OSError when it cannot be read."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(f"larger than {max_bytes} bytes")
    return data


def load_file(path: Path, max_bytes: int, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document in ``path`` (``read_bounded``, then ``loads``): OSError when it
    cannot be read, NotJson when it is not accepted."""
    return loads(read_bounded(path, max_bytes), max_depth=max_depth)


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON document ``data`` (UTF-8 bytes, or text), or NotJson."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Decoded here rather than by json.loads, which guesses UTF-16 or -32 from
            # the first bytes.
            raise NotJson("not UTF-8 text") from None
    else:
        text = data
    if depth(text, max_depth) > max_depth:
        raise NotJson(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except NotJson:
        raise
    except (ValueError, RecursionError, OverflowError):
        # The parser's own message may quote the input: it is not passed on.
        raise NotJson("not JSON") from None


def depth(text: str, stop: int = MAX_DEPTH) -> int:
    """How deep the brackets of ``text`` nest outside its strings (counting stops just
    past ``stop``). Malformed text may count wrongly: the parser refuses it anyway."""
    level = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            level += 1
            if level > deepest:
                deepest = level
                if deepest > stop:
                    break
        else:
            level -= 1
    return deepest


def unique_object(
    pairs: list[tuple[str, Any]], twice: Callable[[str], Exception]
) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object, or ``twice(key)`` raised for
    its first key given twice (with two, which value counts?). Built in C first: the
    keys are looked through only when there is one to find."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise twice(key)
            seen.add(key)
    return found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return unique_object(pairs, lambda _key: NotJson("JSON with a key twice in one object"))


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise NotJson(f"JSON with a number of more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJson("JSON with a number out of range")
    return value


def _constant(text: str) -> Any:
    raise NotJson("JSON with NaN or Infinity, which JSON does not have")
