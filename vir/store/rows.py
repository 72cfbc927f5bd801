"""Rows kept one per key, replaced whole: an organisation's OpenID provider at the index
(``organisation_oidc``) and at the key holder (``keyholder_oidc``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from vir.store.tables import Base


def put(session: Session, table: type[Base], key: str, values: Mapping[str, Any]) -> None:
    """Insert the row of primary key ``key`` with ``values``, or replace its values."""
    row = session.get(table, key)
    if row is None:
        session.add(table(**{_key_name(table): key}, **values))
        return
    for name, value in values.items():
        setattr(row, name, value)


def drop(session: Session, table: type[Base], key: str) -> bool:
    """Delete the row of primary key ``key``; whether there was one."""
    row = session.get(table, key)
    if row is None:
        return False
    session.delete(row)
    return True


def _key_name(table: type[Base]) -> str:
    (column,) = inspect(table).primary_key
    return str(column.name)
