"""The OPRF evaluator: the one component that holds the secret key ``k``.

Its interface is deliberately narrow (the current epoch, and evaluate a batch),
so that it can move into a separate service with its own operator and keys
(DESIGN.md §4, two trust domains) without the index noticing. Whatever else needs
a pseudonym asks through it (``pseudonymise``); nothing outside ``vir.crypto``
touches the key or the group arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from vir.crypto import oprf
from vir.crypto.keys import OprfKeyring
from vir.domain.errors import InvalidElement


class Evaluator(Protocol):
    @property
    def epoch(self) -> int: ...

    def evaluate(self, blinded_elements: Sequence[bytes]) -> list[bytes]:
        """``k·B`` for each element; raises InvalidElement naming the first bad index."""
        ...


class LocalEvaluator:
    """An in-process evaluator over a keyring loaded from ``keys/``."""

    def __init__(self, keyring: OprfKeyring) -> None:
        self._key = keyring.current

    def __repr__(self) -> str:
        return f"LocalEvaluator(epoch={self._key.epoch})"

    @property
    def epoch(self) -> int:
        return self._key.epoch

    def evaluate(self, blinded_elements: Sequence[bytes]) -> list[bytes]:
        # Validate the whole batch before any evaluation: a bad batch costs no key operation.
        for index, element in enumerate(blinded_elements):
            if not oprf.is_valid_element(element):
                raise InvalidElement(f"blinded_elements[{index}]")
        return [oprf.evaluate(self._key.secret, element) for element in blinded_elements]


def pseudonymise(evaluator: Evaluator, canonical_input: bytes) -> bytes:
    """The pseudonym ``k·H(x)`` of ``canonical_input``, obtained as a client obtains it:
    blinded here, evaluated by ``evaluator``, unblinded here. Through the narrow interface,
    so that it works as well when the evaluator runs elsewhere; the evaluator sees only a
    blinded element. Used for institutional addresses (``vir address exclude``)."""
    blind, blinded = oprf.blind(canonical_input)
    (evaluated,) = evaluator.evaluate([blinded])
    return oprf.unblind(blind, evaluated)
