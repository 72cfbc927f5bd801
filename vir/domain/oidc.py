"""The values an organisation's OpenID provider is configured with, checked the same way
wherever they are set: at the index for the portal's sign-in (``vir org oidc``) and at
the key holder for people's access tokens (``vir keyholder oidc``)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from vir.domain.errors import InputError

_VALUE = re.compile(r"[A-Za-z0-9._:/~+-]{1,200}")
_CLAIM = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")


def check_issuer(issuer: str) -> None:
    """An https URL of printable ASCII, without query, fragment or user name, at most
    300 characters; InputError naming ``issuer`` otherwise."""
    split = urlsplit(issuer)
    if (
        split.scheme != "https"
        or not split.hostname
        or split.query
        or split.fragment
        or "@" in split.netloc
        or "?" in issuer
        or "#" in issuer
        or len(issuer) > 300
        or not (issuer.isascii() and issuer.isprintable())
        or " " in issuer
    ):
        raise InputError("issuer", "an https URL without query, fragment or user name")


def is_value(value: str) -> bool:
    """A client id, audience, acr or claim value: 1 to 200 of ``A-Za-z0-9._:/~+-``."""
    return _VALUE.fullmatch(value) is not None


def check_value(field: str, value: str) -> None:
    """``is_value``, or InputError naming ``field``."""
    if not is_value(value):
        raise InputError(field, "1 to 200 letters, digits or ._:/~+-")


def is_claim_name(name: str) -> bool:
    """Letters, digits and ``_.:-``, at most 64, not starting with a digit or sign."""
    return _CLAIM.fullmatch(name) is not None
