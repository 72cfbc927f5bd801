"""The portal's forms: which fields each may carry, and problems in Dutch naming the field.

A form with a field it does not list is refused whole (``UnexpectedField``): in
particular the identity fields of the registration page (BSN, name, date of birth,
address), which have no ``name`` in the page and so reach the portal only when
someone posts them by hand. Neither the unexpected field's name nor its value is
repeated, logged or stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from vir.domain.dates import parse_iso_date
from vir.domain.encoding import b64url_decode
from vir.domain.errors import InputError, InvalidElement
from vir.domain.signals import WithdrawalReason

# What each form may carry (the CSRF token besides).
REGISTER = frozenset(
    {"epoch", "person", "parent_1", "parent_2", "address", "remove_on", "archive_until"}
    | {"name", "email", "phone", "function"}
)
CONTACT = frozenset({"name", "email", "phone", "function"})
WITHDRAW = frozenset({"reason", "confirm"})
REMOVAL = frozenset({"remove_on"})
FOLLOW_UP = frozenset({"event"})
HANDOVER = frozenset({"to"})
ANSWER = frozenset({"answer"})
CONTACT_PREFIX = "contact_"  # contact made with: one checkbox per organisation (OIN)
# The follow-up officer's list (a GET form: the number of days, the page's cursor) and
# reminder (a button: the CSRF token only).
OVERDUE_DAYS, OVERDUE_AFTER = "dagen", "na"
REMINDER: frozenset[str] = frozenset()

LABELS = {
    "epoch": "Sleutelperiode",
    "person": "Jeugdige",
    "parent_1": "Ouder 1",
    "parent_2": "Ouder 2",
    "address": "Adres",
    "remove_on": "Verwijderdatum",
    "archive_until": "Geboortedatum",
    "name": "Naam",
    "email": "E-mailadres",
    "phone": "Telefoonnummer",
    "function": "Functie",
    "reason": "Reden",
    "confirm": "Bevestiging",
    "contact_with": "Contact gehad met",
    "event": "Opvolging",
    "to": "Overdragen aan",
    "answer": "Antwoord",
    "dagen": "Aantal dagen",
    "na": "Pagina",
}
_PSEUDONYM = (
    "het pseudoniem ontbreekt of is niet geldig. Het wordt in uw browser gemaakt uit de "
    "gegevens die u invult; dat vraagt JavaScript. Vul de gegevens opnieuw in."
)
_EXPLAINED = {
    "epoch": _PSEUDONYM,
    "person": _PSEUDONYM,
    "parent_1": _PSEUDONYM,
    "parent_2": _PSEUDONYM,
    "address": _PSEUDONYM,
    "remove_on": (
        "vul een datum in de toekomst in (JJJJ-MM-DD), hoogstens twee jaar na het maken "
        "van de melding."
    ),
    "archive_until": (
        "de jongere is 23 jaar of ouder: de verwijsindex is voor jongeren onder 23. Kijk "
        "de geboortedatum na."
    ),
    "name": "vul een naam in (letters, spaties, koppeltekens; hoogstens 100 tekens).",
    "email": "vul een geldig e-mailadres in, of laat het veld leeg.",
    "phone": "vul een geldig telefoonnummer in (cijfers, eventueel met +), of laat het leeg.",
    "function": "kies een functie uit de lijst.",
    "reason": "kies een reden uit de lijst.",
    "confirm": "vink aan dat u weet dat intrekken niet ongedaan kan worden.",
    "contact_with": "kies een of meer organisaties uit deze match.",
    "event": "kies een stap uit de lijst.",
    "to": "kies een organisatie uit deze match.",
    "answer": "kies aannemen of afwijzen.",
    "dagen": "vul een heel aantal dagen in, van 1 tot en met 365.",
    "na": "deze pagina van de lijst bestaat niet. Begin bij de eerste pagina.",
}
REASON_LABELS = {
    WithdrawalReason.RISK_ENDED: "De zorgen zijn weggenomen",
    WithdrawalReason.UNJUSTIFIED: "De melding was niet terecht",
    WithdrawalReason.OBJECTION: "De jeugdige of ouder maakt bezwaar",
    WithdrawalReason.CORRECTION: "De melding is per vergissing gedaan (correctie)",
    WithdrawalReason.DECEASED: "De jeugdige is overleden",
}
FOLLOW_UP_LABELS = {
    "contact_made": "Contact gehad",
    "plan_agreed": "Plan afgesproken",
    "care_started": "Zorg gestart",
}


class UnexpectedField(Exception):
    """A form carried a field it does not have (its name and value are not kept)."""


class FormTooLarge(Exception):
    """A posted form is longer than ``VIR_PORTAL_MAX_FORM_BYTES`` (declared or sent): 413."""


class FormMalformed(Exception):
    """A urlencoded form that cannot be read (not UTF-8, or more than
    ``MAX_FORM_FIELDS`` fields): 400, not a CSRF refusal."""


# The most fields a form of the portal's own pages has: the "contact made with" form's
# checkboxes (one per other participant of a match, at most
# vir.services.matchregie.MAX_CONTACTS) and its CSRF token, with room to spare.
MAX_FORM_FIELDS = 64


def problem(field: str) -> tuple[str, str]:
    """(field, a Dutch sentence naming it) for a refused value of ``field``."""
    name = form_field(field)
    label = LABELS.get(name, "Formulier")
    explained = _EXPLAINED.get(name, "de waarde is niet geldig.")
    return name, f'Controleer het veld "{label}": {explained}'


def form_field(field: str) -> str:
    """The form's name for a service's field (``parents[0]`` is ``parent_1``)."""
    if field.startswith("parents["):
        index = field[len("parents[") : -1]
        return f"parent_{int(index) + 1}" if index.isdigit() and int(index) < 2 else "parent_1"
    if field.startswith("professional."):
        return field.split(".", 1)[1]
    return field


def only(fields: Mapping[str, str], allowed: Collection[str], *, prefix: str = "") -> None:
    """UnexpectedField unless every field (but ``csrf``) is allowed (or has ``prefix``)."""
    for key in fields:
        if key != "csrf" and key not in allowed and not (prefix and key.startswith(prefix)):
            raise UnexpectedField


def optional(fields: Mapping[str, str], name: str) -> str | None:
    value = fields.get(name, "").strip()
    return value or None


def pseudonym(fields: Mapping[str, str], name: str) -> bytes | None:
    """The 32 bytes of a posted pseudonym (canonical base64url), None when absent;
    InvalidElement naming the field otherwise. The services check it is an element."""
    value = fields.get(name, "")
    if not value:
        return None
    decoded = b64url_decode(value) if len(value) == 43 else None
    if decoded is None or len(decoded) != 32:
        raise InvalidElement(name)
    return decoded


def epoch(fields: Mapping[str, str]) -> int:
    value = fields.get("epoch", "")
    if not (value.isascii() and value.isdigit() and 0 < len(value) <= 9 and int(value) >= 1):
        raise InputError("epoch", "not a key epoch")
    return int(value)


def date(fields: Mapping[str, str], name: str) -> dt.date | None:
    value = optional(fields, name)
    if value is None:
        return None
    try:
        return parse_iso_date(value)
    except ValueError:
        raise InputError(name, "not a date (YYYY-MM-DD)") from None


def kept(fields: Mapping[str, str], names: Collection[str]) -> dict[str, str]:
    """The values to show again in a re-shown form: the non-identity fields only."""
    return {name: fields[name][:200] for name in names if name in fields}
