"""The key holder's evaluation counts, for the privacy report.

Pseudonyms are made at the key holder, so the index's own log no longer sees them;
the privacy report's evaluation volumes and its bulk-pseudonymisation flag read the
key holder's counts (``GET /v1/oprf/usage``, per organisation and clock hour), asked
with the index's own client certificate (an index operator's, registered at the key
holder). With a threshold deployment every evaluation reaches t of the n holders:
their counts are summed and divided by t.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from vir.domain.dates import parse_timestamp


class CountsUnavailable(Exception):
    """The key holder could not be asked (down, refused, or not configured): the report
    says so instead of showing zeroes."""


@dataclass(frozen=True)
class KeyholderCounts:
    urls: tuple[str, ...]
    threshold: int
    ca: Path
    cert: Path
    key: Path
    timeout: float = 30.0

    @property
    def where(self) -> str:
        return ", ".join(self.urls)

    def counts(self, start: dt.date, end: dt.date) -> list[tuple[str, dt.datetime, int]]:
        """(organisation, hour, elements) over ``[start, end)``; CountsUnavailable when a key
        holder cannot be asked (the report then says so rather than showing zeroes)."""
        total: Counter[tuple[str, dt.datetime]] = Counter()
        try:
            context = ssl.create_default_context(cafile=str(self.ca))
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError):
            raise CountsUnavailable("no certificate of the index for the key holder") from None
        params = {"from": start.isoformat(), "to": end.isoformat()}
        for url in self.urls:
            try:
                with httpx.Client(base_url=url, verify=context, timeout=self.timeout) as http:
                    response = http.get("/v1/oprf/usage", params=params)
                response.raise_for_status()
                for item in response.json()["items"]:
                    hour = parse_timestamp(str(item["hour"]))
                    total[(str(item["oin"]), hour)] += int(item["elements"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                raise CountsUnavailable("a key holder did not answer with its counts") from None
        return [
            (oin, hour, -(-n // self.threshold))
            for (oin, hour), n in sorted(total.items(), key=lambda i: (i[0][1], i[0][0]))
        ]
