"""The service's rules on a professional's contact details, checked before sending.

The index refuses a name that is not shaped like a name, an e-mail address or
phone number with room for a sentence, and a function that is not a code of the
catalogue (``GET /v1/functions``): ``vir.domain.contact`` and
``vir.domain.functions``. The client applies the same rules first, so a back
office learns which field is wrong without a round trip, and nothing refused
leaves the organisation. Whether the code belongs to the organisation's category
only the service knows (it knows the category from the certificate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vir.domain.errors import InputError
from vir.domain.signals import Professional


def check_professional(details: Any, field: str = "professional") -> None:
    """Raise ``InputError`` naming ``professional.name`` (and so on), never the value.

    Only string fields are checked here; a wrong shape or type is left to the service,
    which answers it with a 422 naming the field.
    """
    if not isinstance(details, Mapping):
        return
    values = {k: details.get(k) for k in ("name", "email", "phone", "function")}
    if not all(v is None or isinstance(v, str) for v in values.values()):
        return
    if values["name"] is None:
        return
    try:
        Professional(values["name"], values["email"], values["phone"], values["function"])
    except InputError as error:
        raise InputError(f"{field}.{error.field}", error.detail) from None
