"""What a signal, its changes and a reporting organisation must meet to enter the index.

Every intake rule lives here, as a pure function: the facts it judges (the
current key epoch, the caller's category, ``today``) are parameters, and a
broken rule raises a domain error naming the field (``InputError``,
``InvalidElement``). The services gather the facts and call these; the API only
parses the wire format. Whether a pseudonym is a valid group element is a
question for the crypto layer, so the caller passes that predicate in
(``is_valid_element``): the domain imports no crypto.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from vir.domain import functions
from vir.domain.errors import InputError, InvalidElement
from vir.domain.lifecycle import ARCHIVE_YEARS
from vir.domain.organisations import Category, Organisation
from vir.domain.signals import Professional, add_years, latest_removal


@dataclass(frozen=True)
class SignalRequest:
    """A signal as a reporting organisation asks to register it (pseudonyms as bytes)."""

    local_ref: str
    epoch: int
    person: bytes
    parents: tuple[bytes, ...]
    address: bytes | None
    remove_on: dt.date | None
    professional: Professional
    archive_until: dt.date | None = None

    def content_hash(self) -> bytes:
        """What makes a repeat idempotent, besides the pseudonyms themselves: the same
        content under the same ``local_ref``.

        Epoch-independent on purpose: a rekey multiplies every stored pseudonym by δ, so
        a hash over pseudonyms would go stale with every rotation, and a repeat made
        under the new epoch (or the old one during its grace period) must still be
        recognised. The pseudonyms are compared as stored instead, after conversion to
        the stored epoch (``same_registration``); the hash covers everything else,
        including how many parents were named and whether an address was.
        """
        return content_digest(
            len(self.parents),
            self.address is not None,
            self.remove_on,
            self.professional,
            self.archive_until,
        )


def content_digest(
    parents: int,
    has_address: bool,
    remove_on: dt.date | None,
    professional: Professional,
    archive_until: dt.date | None,
) -> bytes:
    """SHA-256 of a registration's content other than its pseudonyms (``content_hash``)."""
    document: dict[str, object] = {
        "parents": parents,
        "address": has_address,
        "remove_on": remove_on.isoformat() if remove_on else None,
        "professional": professional.as_dict(),
    }
    if archive_until is not None:
        document["archive_until"] = archive_until.isoformat()
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()


def same_registration(
    stored_hash: bytes,
    stored: tuple[bytes, frozenset[bytes], bytes | None],
    request: SignalRequest,
    stored_remove_on: dt.date | None = None,
) -> bool:
    """Whether ``request`` (its pseudonyms converted to the stored epoch) repeats the
    registration stored with ``stored_hash`` and (person, parents, address).

    The removal date is compared as requested: a repeat that leaves it out again is the
    same content on any later day (the default moves with the date, the stored one does
    not). A repeat that now states the very date the first registration got by default
    (``stored_remove_on``, as the 201 answered it) is the same content too: that is
    what the signal holds. An ``archive_until`` the first registration did not state is
    the same content when it changes nothing for the stored signal (``_late_birthday``).
    """
    if _late_birthday(request, stored_remove_on):
        request = replace(request, archive_until=None)
    person, parents, address = stored
    restated = (
        request.remove_on is not None
        and request.remove_on == stored_remove_on
        and stored_hash == replace(request, remove_on=None).content_hash()
    )
    return (
        (stored_hash == request.content_hash() or restated)
        and person == request.person
        and parents == frozenset(request.parents)
        and address == request.address
    )


def _late_birthday(request: SignalRequest, stored_remove_on: dt.date | None) -> bool:
    """Whether the request's ``archive_until`` falls on or after the day the stored
    signal's archived copy would be destroyed anyway (its removal date plus the archive
    term): stating it changes nothing for that signal. A client works the 23rd birthday
    out from today (vir.client.lifecycle.removal_dates) and states it once it falls
    within today's terms; for a signal made earlier, with earlier terms, it then falls
    after them. Found by a review in stop 42: a nightly ``vir-client sync`` of a file
    with dates of birth turned such rows into conflicts from that day on."""
    return (
        request.archive_until is not None
        and stored_remove_on is not None
        and request.archive_until >= add_years(stored_remove_on, ARCHIVE_YEARS)
    )


def check_epoch(
    epoch: int, current: int, accepted: Collection[int] = (), retired: Collection[int] = ()
) -> None:
    """Pseudonyms are made under the current key epoch, or one the index still accepts
    and converts (``accepted``: during a rekey and the grace period after it)."""
    if epoch != current and epoch not in accepted:
        raise epoch_refused(epoch, {current, *accepted}, retired)


def epoch_refused(epoch: int, accepted: Collection[int], retired: Collection[int]) -> InputError:
    """The refusal of pseudonyms made under ``epoch``, naming the accepted epochs, and
    saying so when ``epoch`` is one of the ``retired`` (its grace period is over)."""
    choices = ", ".join(str(e) for e in sorted(accepted))
    why = f"epoch {epoch} was retired: " if epoch in retired else ""
    return InputError(
        "epoch", f"{why}pseudonyms must be made under an accepted key epoch ({choices})"
    )


def check_elements(request: SignalRequest, is_valid_element: Callable[[bytes], bool]) -> None:
    """Every pseudonym of the request is a valid group element (InvalidElement names it)."""
    elements = [("person", request.person)]
    elements += [(f"parents[{i}]", p) for i, p in enumerate(request.parents)]
    if request.address is not None:
        elements.append(("address", request.address))
    for field, element in elements:
        if not is_valid_element(element):
            raise InvalidElement(field)


def check_parents(person: bytes, parents: tuple[bytes, ...]) -> None:
    """Each parent once, and never the young person themself."""
    if len(set(parents)) != len(parents):
        raise InputError("parents", "a parent is listed twice")
    if person in parents:
        raise InputError("parents", "the young person cannot be their own parent")


def removal_date(
    remove_on: dt.date | None,
    archive_until: dt.date | None,
    today: dt.date,
    made: dt.date | None = None,
) -> dt.date:
    """The day the signal is removed: ``remove_on``, which must lie in the future and at
    most two years after the signal was ``made`` (today for a new one; ``latest_removal``),
    and not after the young person turns 23 (``archive_until``); when not given, the
    latest day allowed. A signal's date changed later is held to the day it was made:
    Jeugdwet ch. 7 §1 removes a signal at the latest two years after it was made, and
    moving the date on again and again would keep it for good.

    ``archive_until`` itself must lie in the future: a young person who is 23 or older is
    outside the index's scope.
    """
    latest = latest_removal(made or today)
    if archive_until is not None:
        if archive_until <= today:
            raise InputError(
                "archive_until", "the young person is 23 or older: outside the index's scope"
            )
        if remove_on is None or remove_on > archive_until:
            latest = min(latest, archive_until)
    if remove_on is None:
        return latest
    if archive_until is not None and remove_on > archive_until:
        raise InputError(
            "remove_on", "a signal must be removed when the young person turns 23 (archive_until)"
        )
    if remove_on <= today:
        raise InputError("remove_on", "the removal date must be in the future")
    if remove_on > latest:
        raise InputError(
            "remove_on",
            f"the removal date may be at most two years after the signal was made "
            f"({latest.isoformat()})",
        )
    return remove_on


def check_function(
    category: Category, professional: Professional | None, field: str = "professional.function"
) -> None:
    """The professional's function code is one of the caller's category's. A category that
    registers nothing (a municipality) is refused by ``policy.require_reporter`` instead."""
    if professional is not None and category.reports:
        functions.check_for(category, professional.function, field)


def check_signal(
    request: SignalRequest,
    *,
    category: Category,
    current_epoch: int,
    today: dt.date,
    is_valid_element: Callable[[bytes], bool],
    accepted_epochs: Collection[int] = (),
    retired_epochs: Collection[int] = (),
) -> dt.date:
    """Every intake rule of a new signal, in the order the errors are reported; returns
    its removal date (``removal_date``). ``accepted_epochs``: epochs besides the current
    one whose pseudonyms the index converts on arrival; ``retired_epochs``: those it no
    longer accepts (named as such when refused)."""
    check_function(category, request.professional)
    check_epoch(request.epoch, current_epoch, accepted_epochs, retired_epochs)
    check_elements(request, is_valid_element)
    check_parents(request.person, request.parents)
    return removal_date(request.remove_on, request.archive_until, today)


def check_informed(on: dt.date, today: dt.date, registered_on: dt.date) -> None:
    """The information duty was met on a day between registration and today."""
    if on > today:
        raise InputError("informed.on", "the date lies in the future")
    if on < registered_on:
        raise InputError("informed.on", "the date lies before the signal was made")


# What a spreadsheet reads as a formula at the start of a cell (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_ORGANISATION_NAME = 200


def check_organisation_name(name: str) -> None:
    """An organisation's name is shown in reports, CSV downloads, PDFs and e-mail: plain
    text on one line that no spreadsheet takes for a formula."""
    if not name.strip():
        raise InputError("name", "an organisation needs a name")
    if len(name) > MAX_ORGANISATION_NAME:
        raise InputError("name", f"at most {MAX_ORGANISATION_NAME} characters")
    if any(unicodedata.category(char)[0] == "C" or char in "\u2028\u2029" for char in name):
        raise InputError("name", "may not hold control characters or line breaks")
    if name != name.strip():
        raise InputError("name", "may not start or end with a space")
    if name.startswith(FORMULA_START):
        raise InputError("name", "may not start with =, +, - or @: a spreadsheet reads a formula")


def check_convenant(org: Organisation) -> None:
    """An organisation that may report needs the reference of its written agreement
    (convenant) with the municipality (Jeugdwet art. 7.1.3.2)."""
    if org.category.reports and not (org.convenant and org.convenant.strip()):
        raise InputError("convenant", "a reporting organisation needs a convenant reference")
