"""``GET /health``: reachable without a client certificate, says nothing about data."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter()


class Health(BaseModel):
    status: str


@router.get("/health", response_model=Health, tags=["service"])
def health() -> Health:
    return Health(status="ok")
