"""The key holders' evaluation counts, for the privacy report.

Pseudonyms are made at the key holder, so the index's own log no longer sees them;
the privacy report's evaluation volumes and its bulk-pseudonymisation flag read the
key holders' counts (``GET /v1/oprf/usage``, per organisation and clock hour), asked
with the index's own client certificate (an index operator's, registered at each key
holder).

What the counts prove (:func:`tally`). One pseudonymisation of an element sends it to
several key holders: t of the n with the Python client (another only in place of one
that failed), every one of them from the portal, any number from a client of one's
own. A key holder evaluates it at most once, so per organisation and hour the true
number N of elements sent satisfies ``N >= max_i c_i``, where c_i is holder i's
count: the figure the report shows, a lower bound that stays true when a key holder's
log misses part of the period (a repaired or replaced holder starts an empty log) or
a holder did not answer. The sum of the counts divided by t is no bound at all (the
portal asks every holder: it counts each element n/t times; a lost log: too few), but
when every pseudonymisation reached exactly t holders and every log is complete it is
N: the bulk flag uses it as well as the lower bound, so that a client spreading its
elements over the holders (each then sees t/n of them) is not missed
(:class:`HourCount`).

Every pseudonymisation reaches t holders, so it reaches at least one of any n-t+1 of
them: fewer answering holders could leave a whole organisation's pseudonymisations
unseen, and the counts are then unavailable rather than a misleading zero.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from vir.domain.dates import parse_timestamp

__all__ = ["Counted", "CountsUnavailable", "HourCount", "KeyholderCounts", "needed", "tally"]


class CountsUnavailable(Exception):
    """The key holders could not be asked (down, refused, or not configured), or too few
    answered: the report says so instead of showing zeroes."""


@dataclass(frozen=True, slots=True)
class HourCount:
    """One organisation's evaluations in one clock hour, from the key holders' counts."""

    oin: str
    hour: dt.datetime
    # The highest count of one key holder: the organisation sent at least this many
    # elements in the hour, whatever the client and however incomplete a log.
    at_least: int
    # The key holders' counts added up, divided by t (rounded up): the number when every
    # element reached exactly t key holders and every log covers the hour.
    per_threshold: int


@dataclass(frozen=True, slots=True)
class Counted:
    """What the key holders answered, counted (:func:`tally`)."""

    hours: tuple[HourCount, ...]
    threshold: int
    keyholders: int  # n: how many were asked
    silent: tuple[str, ...] = ()  # the base URLs of those that did not answer

    @property
    def answered(self) -> int:
        return self.keyholders - len(self.silent)


def needed(keyholders: int, threshold: int) -> int:
    """How many of ``keyholders`` must answer so that every pseudonymisation, which
    reaches ``threshold`` of them, reached at least one that answered: n - t + 1."""
    return max(1, keyholders - threshold + 1)


def tally(
    answers: Sequence[Mapping[tuple[str, dt.datetime], int]], threshold: int
) -> tuple[HourCount, ...]:
    """Each answering key holder's counts per (organisation, hour), combined: the
    highest of them (a lower bound) and their sum divided by ``threshold``; oldest hour
    first."""
    seen: dict[tuple[str, dt.datetime], list[int]] = defaultdict(list)
    for answer in answers:
        for key, elements in answer.items():
            seen[key].append(elements)
    return tuple(
        HourCount(oin, hour, max(counts), -(-sum(counts) // threshold))
        for (oin, hour), counts in sorted(seen.items(), key=lambda i: (i[0][1], i[0][0]))
    )


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

    def _ask(
        self, url: str, context: ssl.SSLContext, params: dict[str, str]
    ) -> Counter[tuple[str, dt.datetime]] | None:
        """One key holder's counts, or None when it did not answer with them."""
        found: Counter[tuple[str, dt.datetime]] = Counter()
        try:
            with httpx.Client(base_url=url, verify=context, timeout=self.timeout) as http:
                response = http.get("/v1/oprf/usage", params=params)
            response.raise_for_status()
            for item in response.json()["items"]:
                hour = parse_timestamp(str(item["hour"]))
                found[(str(item["oin"]), hour)] += int(item["elements"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return found

    def counts(self, start: dt.date, end: dt.date) -> Counted:
        """The key holders' counts over ``[start, end)``, combined (:func:`tally`);
        CountsUnavailable when fewer than n - t + 1 of them answered (the report then
        says so rather than showing zeroes)."""
        try:
            context = ssl.create_default_context(cafile=str(self.ca))
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError):
            raise CountsUnavailable("no certificate of the index for the key holder") from None
        params = {"from": start.isoformat(), "to": end.isoformat()}
        answers, silent = [], []
        for url in self.urls:
            found = self._ask(url, context, params)
            if found is None:
                silent.append(url)
            else:
                answers.append(found)
        n = len(self.urls)
        if len(answers) < needed(n, self.threshold):
            if n == 1:
                raise CountsUnavailable("a key holder did not answer with its counts")
            raise CountsUnavailable(
                f"{len(answers)} of the {n} key holders answered with their counts "
                f"({', '.join(silent)} did not); {needed(n, self.threshold)} must, so that "
                f"every pseudonymisation (made by {self.threshold} of them) is seen: make "
                "the report again when they answer"
            )
        return Counted(tally(answers, self.threshold), self.threshold, n, tuple(silent))
