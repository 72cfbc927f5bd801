"""The HTTPS + mutual TLS connection to vir, and client-side pseudonymisation."""

from __future__ import annotations

import contextlib
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx

from vir.client.professional import check_professional
from vir.client.transport import Connections, through_proxy
from vir.client.webhooks import WebhookVerifier
from vir.crypto import oprf, threshold
from vir.crypto.keyfile import derived_key
from vir.domain import strict_json
from vir.domain.addresses import check_label
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.local_ref import is_local_ref, path_segment

BATCH = 64  # the largest batch POST /v1/oprf/evaluate accepts
MAX_SIGNAL_BATCH = 500  # the largest batch POST /v1/signals/batch accepts
DEFAULT_URL = "https://127.0.0.1:8443"
DEFAULT_KEYHOLDER_URL = "https://127.0.0.1:8444"


MAX_DEV_FILE = 1 << 20  # orgs.json, roles.json, endpoints.json: a few kilobytes


class ClientError(Exception):
    """Base of the client's errors."""


class ServiceError(ClientError):
    """The service answered with a problem+json (or another non-success status)."""

    def __init__(self, status: int, problem: dict[str, Any], where: str = "") -> None:
        self.status = status
        self.problem = problem
        said = f"{status} {problem.get('title', '')}: {problem.get('detail', '')}"
        super().__init__(f"{where}: {said}" if where else said)


class ProtocolError(ClientError):
    """The service's answer does not follow the contract (wrong count, invalid element)."""


class EpochNotAccepted(ClientError):
    """The index refused the key epoch the key holders pseudonymised under: no fault of
    the input, but of the rotation's order (``epoch_refusal``)."""


def epoch_refusal(epoch: object, status: object, problem: Mapping[str, Any]) -> ClientError | None:
    """When the index answered ``status``/``problem`` (a problem, or a batch item's
    result) to a request whose ``epoch`` the key holders gave, because it does not
    accept that epoch: the one line that says which step of the rotation is missing.
    None for any other answer."""
    errors = problem.get("errors")
    if status != 422 or not isinstance(errors, list):
        return None
    said = [
        str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("field") == "epoch"
    ]
    if not said:
        return None
    if f"epoch {epoch} was retired" in said[0]:
        # The key holders still serve an epoch whose grace period ended at the index:
        # they never activated the rotation that replaced it.
        return EpochNotAccepted(
            f"the index no longer accepts the key holders' epoch {epoch} (retired there): "
            "the key holders must activate the rotation's new epoch (vir keyholder "
            'activate; docs/operations.md, "Rotating the OPRF key")'
        )
    return EpochNotAccepted(
        f"the index does not accept the key holders' epoch {epoch} yet: the index must "
        "run vir keys rekey with the rotation's token before the key holders activate it "
        '(docs/operations.md, "Rotating the OPRF key")'
    )


@contextlib.contextmanager
def epoch_of_key_holders(epoch: int) -> Iterator[None]:
    """Around a request that sends pseudonyms made under ``epoch`` at the key holders: the
    index's refusal of that epoch raised as ``EpochNotAccepted`` (``epoch_refusal``)."""
    try:
        yield
    except ServiceError as error:
        refused = epoch_refusal(epoch, error.status, error.problem)
        if refused is None:
            raise
        raise refused from None


class EpochsDiffer(ClientError):
    """Fewer than t key holders answer under any one key epoch: the holders' operators
    are activating a rotation one by one. Retrying later succeeds."""


# Requests that may be sent again after a refusal: their effect is the same however
# often they arrive. POST /v1/oprf/evaluate computes and stores nothing; POST
# /v1/signals (and /v1/signals/batch, item by item) is idempotent by the contract (the
# same local_ref with the same content answers 200 with the same signal, other content
# 409), so a registration whose answer was refused or lost is repeated without
# registering twice. Other POSTs (consultations, privacy-officer requests: each one is
# a logged lookup) and PATCH (each change notifies match partners) are never repeated.
REPEATABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
REPEATABLE_POSTS = frozenset({"/v1/oprf/evaluate", "/v1/signals", "/v1/signals/batch"})


def repeatable(method: str, path: str) -> bool:
    """Whether ``method path`` may be sent again after a 429 or 503."""
    method = method.upper()
    return method in REPEATABLE_METHODS or (
        method == "POST" and httpx.URL(path).path in REPEATABLE_POSTS
    )


@dataclass(frozen=True)
class RetryPolicy:
    """When the client sends a refused request again, and how long it waits first.

    A 429 (rate limited) or 503 (not stored: vir changed nothing) of a repeatable
    request is sent again after ``Retry-After`` seconds (``default_wait`` when the
    header is absent or not a number of seconds) plus up to ``jitter`` of that at
    random, so clients refused together do not return together. At most
    ``max_retries`` times, and never past ``max_wait`` seconds of waiting in all: a
    wait that would go past it is not started, the refusal is raised instead.
    ``RetryPolicy(max_retries=0)`` switches retrying off.
    """

    max_retries: int = 3
    max_wait: float = 30.0
    jitter: float = 0.1
    default_wait: float = 1.0
    statuses: frozenset[int] = frozenset({429, 503})

    def wait(
        self, response: httpx.Response, retries: int, waited: float, rng: random.Random
    ) -> float | None:
        """Seconds to wait before sending the request of ``response`` again, after
        ``retries`` retries and ``waited`` seconds; None: do not send it again."""
        if response.status_code not in self.statuses or retries >= self.max_retries:
            return None
        if not repeatable(response.request.method, response.request.url.path):
            return None
        seconds = _retry_after(response.headers.get("retry-after"), self.default_wait)
        seconds += seconds * self.jitter * rng.random()
        return seconds if waited + seconds <= self.max_wait else None


def _retry_after(value: str | None, default: float) -> float:
    # vir sends whole seconds; an HTTP-date (RFC 9110 §10.2.3) or junk gets the default.
    if value is not None and value.strip().isascii() and value.strip().isdigit():
        return float(value.strip())
    return default


@dataclass(frozen=True)
class Pseudonymised:
    epoch: int
    pseudonyms: list[str]  # base64url, ready for the wire


def tls_context(ca_file: Path, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


@dataclass(frozen=True)
class Endpoints:
    """Where to call: the index, the key holder(s), and how many of them must answer
    (``threshold`` t of n; 1 with a single key holder). ``.vir/dev/endpoints.json``."""

    index: str
    keyholders: tuple[str, ...]
    threshold: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= max(1, len(self.keyholders)):
            raise ClientError("threshold: must be between 1 and the number of key holders")

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        try:
            found = strict_json.load_file(path, MAX_DEV_FILE)
            index, keyholders = found["index"], found["keyholders"]
            threshold = found.get("threshold", 1)
            if (
                not isinstance(index, str)
                or not isinstance(keyholders, list)
                or not all(isinstance(url, str) for url in keyholders)
                or type(threshold) is not int
            ):
                raise TypeError("not an endpoints file")
            return cls(index, tuple(keyholders), threshold)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise ClientError(
                f"{path} is not an endpoints file (index, keyholders, threshold)"
            ) from None


JOINED_MOST = 256  # paths joined to a base URL that a client keeps (VirClient._joined)


class VirClient:
    """A back-office system's connection, holding its organisation certificate and key:
    to the index, and to the key holder(s) that pseudonymise."""

    # Class defaults, so that a client made without __init__ (tests) retries the same way.
    retry: RetryPolicy = RetryPolicy()
    _sleep: Callable[[float], None] = staticmethod(time.sleep)
    _rng: random.Random = random.Random()  # noqa: S311 (jitter, not a secret)
    _holders: tuple[httpx.Client, ...] = ()
    # Which of the clients above send on the client's own connections (vir.client.
    # transport); one absent here (not https, a proxy in the environment, a test's mock)
    # sends with httpx.
    _senders: Mapping[httpx.Client, Connections] = MappingProxyType({})
    _pool: ThreadPoolExecutor | None = None  # asks threshold key holders at once
    # Paths joined to a client's base URL, kept (``_joined``); None: not kept.
    _urls: dict[tuple[httpx.Client, str], httpx.URL] | None = None
    _pool_made = threading.Lock()
    threshold: int = 1

    def __init__(
        self,
        base_url: str,
        ca_file: Path,
        cert_file: Path,
        key_file: Path,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        *,
        keyholders: Sequence[str] = (),
        threshold: int = 1,
    ) -> None:
        """``base_url``: the index; ``keyholders``: the key holders' base URLs, of which
        ``threshold`` must answer each pseudonymisation (none: this client only talks to
        the index, with pseudonyms made elsewhere)."""
        oprf.require_strict_backend()  # it checks every element the service returns
        if retry is not None:
            self.retry = retry
        Endpoints(base_url, tuple(keyholders), threshold)  # checks the threshold
        context = tls_context(ca_file, cert_file, key_file)
        self._key_file = key_file
        self._http = httpx.Client(base_url=base_url, verify=context, timeout=timeout)
        self._holders = tuple(
            httpx.Client(base_url=url, verify=context, timeout=timeout) for url in keyholders
        )
        self._senders = {
            http: Connections(context, timeout)
            for http in (self._http, *self._holders)
            if http.base_url.scheme == "https" and not through_proxy(http.base_url)
        }
        self.threshold = threshold
        self._urls = {}

    def _joined(self, http: httpx.Client, path: str) -> httpx.URL | str:
        """``path`` joined to ``http``'s base URL as httpx joins it, kept for the next
        request to it: httpx otherwise parses the path and the joined URL afresh for
        every request (``build_request``: 37 us, 15 with the URL given; this project's
        machine). At most ``JOINED_MOST`` kept: a path may hold a local_ref."""
        urls = self._urls
        merge = getattr(http, "_merge_url", None)  # httpx's own join, when it has one
        if urls is None or merge is None:
            return path
        key = (http, path)
        found = urls.get(key)
        if found is None:
            if len(urls) >= JOINED_MOST:
                urls.clear()
            found = urls[key] = merge(path)
        return found

    def local_key(self, purpose: str) -> bytes:
        """A secret of this client's own for ``purpose``: derived from its private key
        file (HKDF-SHA256), so the same on every run with that key and known to no one
        without the file; never sent, written or printed."""
        return derived_key(self._key_file.read_bytes(), purpose)

    @staticmethod
    def webhook_verifier(secret: str) -> WebhookVerifier:
        """A verifier of vir's webhook requests signed with ``secret`` (``whsec_...``):
        signature, timestamp within 5 minutes, duplicates by id (``vir.client.webhooks``)."""
        return WebhookVerifier(secret)

    @classmethod
    def from_dev(
        cls,
        organisation: str,
        dev_dir: Path = Path(".vir/dev"),
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        *,
        keyholders: Sequence[str] | None = None,
        threshold: int | None = None,
    ) -> VirClient:
        """Connect as a demo organisation of ``.vir/dev/orgs.json`` (by OIN, category or name
        prefix), or with a role certificate of ``roles.json`` (by role: ``privacy_officer``,
        ``coordinator``, ``address_officer``, ``follow_up_officer``,
        ``national_privacy_officer``), to the index and key holders of
        ``endpoints.json`` (``base_url``: another index)."""
        listing = dev_dir / "orgs.json"
        if not listing.is_file():
            raise ClientError(
                f"no development set-up in {dev_dir} (no orgs.json): start one with make run, "
                "or give the index, key holder and certificate"
            )
        orgs = _dev_listing(listing)
        roles_file = dev_dir / "roles.json"
        if roles_file.exists():
            orgs += _dev_listing(roles_file)
        endpoints_file = dev_dir / "endpoints.json"
        endpoints = (
            Endpoints.load(endpoints_file)
            if endpoints_file.exists()
            else Endpoints(DEFAULT_URL, (DEFAULT_KEYHOLDER_URL,))
        )
        for org in orgs:
            if organisation in (org["oin"], org.get("category"), org.get("role")) or org[
                "name"
            ].startswith(organisation):
                return cls(
                    base_url or endpoints.index,
                    dev_dir / "ca.crt",
                    dev_dir / org["cert"],
                    dev_dir / org["key"],
                    retry=retry,
                    keyholders=keyholders or endpoints.keyholders,
                    threshold=threshold or (1 if keyholders else endpoints.threshold),
                )
        known = sorted({str(o.get("category") or o.get("role")) for o in orgs} - {"None"})
        raise ClientError(
            f"no demo organisation matches {organisation!r} in {dev_dir}; give an OIN, a "
            f"name's start or one of: {', '.join(known)}"
        )

    def __enter__(self) -> VirClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for sender in self._senders.values():
            sender.close()
        self._http.close()
        for holder in self._holders:
            holder.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        *,
        via: httpx.Client | None = None,
    ) -> httpx.Response:
        """One call to the index (``via``: another server, a key holder), sent again after
        a 429 or 503 as ``retry`` says; a problem answer raises ServiceError."""
        http = via if via is not None else self._http
        sender = self._senders.get(http)
        retries, waited = 0, 0.0
        while True:
            if sender is None:
                response = http.request(method, path, json=body, params=params)
            else:
                url = self._joined(http, path)
                response = sender.send(http.build_request(method, url, json=body, params=params))
            pause = self.retry.wait(response, retries, waited, self._rng)
            if pause is None:
                break
            response.close()
            self._sleep(pause)
            retries, waited = retries + 1, waited + pause
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:200]}
            # A key holder keeps its own register of organisations: say which refused.
            where = f"key holder {http.base_url}".rstrip("/") if http in self._holders else ""
            raise ServiceError(response.status_code, problem, where)
        return response

    def download(
        self, path: str, params: dict[str, Any], advance: Callable[[int, int], object]
    ) -> bytes:
        """``GET path`` (a report) read in chunks; ``advance(received, total)`` is told
        after each, ``total`` the Content-Length (0 when not given), for a progress bar.
        A problem answer raises ServiceError. Not sent again after a 429 or 503: a report
        is logged each time it is made."""
        with self._http.stream("GET", path, params=params) as response:
            if response.status_code >= 400:
                response.read()
                try:
                    problem = response.json()
                except ValueError:
                    problem = {"detail": response.text[:200]}
                raise ServiceError(response.status_code, problem)
            total = int(response.headers.get("content-length") or 0)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                advance(len(body), total)
            return bytes(body)

    def pseudonymise(self, inputs: Sequence[str]) -> Pseudonymised:
        """Blind → evaluate at the key holder(s) → unblind for canonical inputs; returns
        ``N = k·H(x)`` each. With a threshold, t key holders each evaluate with their share
        and the answers are combined (Lagrange at 0) before unblinding: the same N."""
        if not self._holders:
            raise ClientError("no key holder configured: give keyholders (endpoints.json)")
        epoch: int | None = None
        pseudonyms: list[str] = []
        for start in range(0, len(inputs), BATCH):
            chunk = inputs[start : start + BATCH]
            blinded = [oprf.blind(x.encode("utf-8")) for x in chunk]
            chunk_epoch, evaluated = self._evaluate([element for _r, element in blinded])
            if epoch is not None and chunk_epoch != epoch:
                raise ProtocolError("the key epoch changed during one call; retry")
            epoch = chunk_epoch
            pseudonyms += [
                b64url_encode(n)
                for n in oprf.unblind_batch([r for r, _element in blinded], evaluated)
            ]
        if epoch is None:
            raise ClientError("nothing to pseudonymise")
        return Pseudonymised(epoch, pseudonyms)

    def _evaluate(self, blinded: list[bytes]) -> tuple[int, list[bytes]]:
        """``k·B`` for each blinded element, and the epoch: from one key holder, or
        combined from ``threshold`` answers under one epoch.

        The first t holders are asked at once; when some fail, as many of the others as
        are still needed are asked, in their order. When the answers are under different
        epochs (holders activating a rotation one by one), every holder not asked yet is
        asked at once, and the newest epoch that t of them answer under is used: once
        the index has taken the rotation's rekey token it accepts both (the older until
        its grace period ends, converted on arrival), and the newer is the one that
        stays accepted. Only answers of that epoch are combined, with the Lagrange
        coefficients of their own share indices."""
        body = {"blinded_elements": [b64url_encode(element) for element in blinded]}
        answers: list[tuple[int | None, int, list[bytes]]] = []
        failures: list[ClientError | httpx.HTTPError] = []
        waiting = list(self._holders)
        while waiting and _epoch_of(answers, self.threshold) is None:
            if len({epoch for _index, epoch, _elements in answers}) > 1:
                wave, waiting = waiting, []
            else:
                needed = self.threshold - len(answers)
                wave, waiting = waiting[:needed], waiting[needed:]
            for outcome in self._ask(wave, body, len(blinded)):
                if isinstance(outcome, tuple):
                    answers.append(outcome)
                else:
                    failures.append(outcome)
        epoch = _epoch_of(answers, self.threshold)
        if epoch is None:
            raise _too_few(answers, failures, self.threshold)
        used = [answer for answer in answers if answer[1] == epoch][: self.threshold]
        if self.threshold == 1:
            return epoch, used[0][2]
        indices = [index for index, _epoch, _elements in used]
        if None in indices or len(set(indices)) != len(indices):
            raise ProtocolError("the key holders did not answer with distinct share indices")
        combined = [
            threshold.combine([(int(index or 0), elements[i]) for index, _e, elements in used])
            for i in range(len(blinded))
        ]
        return epoch, combined

    def _ask(
        self, holders: list[httpx.Client], body: dict[str, Any], count: int
    ) -> list[tuple[int | None, int, list[bytes]] | ClientError | httpx.HTTPError]:
        """Each holder's answer or failure, in their order; several at once, each on
        a thread of its own, so that a threshold pseudonymisation takes about as long
        as one key holder's answer rather than t of them."""

        def one(
            holder: httpx.Client,
        ) -> tuple[int | None, int, list[bytes]] | ClientError | httpx.HTTPError:
            try:
                return self._answer(holder, body, count)
            except (ServiceError, httpx.HTTPError) as error:
                return error

        if len(holders) == 1:
            return [one(holders[0])]
        with self._pool_made:  # pseudonymise may be called from several threads at once
            if self._pool is None:
                self._pool = ThreadPoolExecutor(len(self._holders), "vir-keyholders")
            pool = self._pool
        return list(pool.map(one, holders))

    def _answer(
        self, holder: httpx.Client, body: dict[str, Any], count: int
    ) -> tuple[int | None, int, list[bytes]]:
        """One key holder's (share index, epoch, evaluated elements), each checked."""
        answer = self.request("POST", "/v1/oprf/evaluate", body, via=holder).json()
        evaluated = answer.get("evaluated_elements")
        if not isinstance(evaluated, list) or len(evaluated) != count:
            raise ProtocolError("the key holder returned a different number of elements")
        epoch, index = answer.get("epoch"), answer.get("share_index")
        if not isinstance(epoch, int) or not (index is None or isinstance(index, int)):
            raise ProtocolError("the key holder's answer has no valid epoch or share index")
        stated = answer.get("threshold", 1 if index is None else None)
        if stated != self.threshold:
            # A share combined with too few others (or a whole key combined) is no
            # pseudonym at all: refuse rather than register under a wrong one.
            raise ProtocolError(
                f"the key holder's answers are combined {stated!r} at a time; this client "
                f"is set to {self.threshold} (endpoints.json threshold, or --threshold)"
            )
        elements = []
        for text in evaluated:
            element = b64url_decode(text) if isinstance(text, str) else None
            if element is None or not oprf.is_valid_element(element):
                raise ProtocolError("the key holder returned an invalid element")
            elements.append(element)
        return index, epoch, elements

    def exclude_address(self, canonical: str, label: str) -> None:
        """A municipality's address officer: put an institutional address (canonical
        ``nl-address:...``) on the index's exclusion list, pseudonymised here. The label is
        checked first, as the index checks it (InputError naming ``label``): a refused
        label is not worth a pseudonymisation at the key holder."""
        label = check_label(label)
        made = self.pseudonymise([canonical])
        body = {"epoch": made.epoch, "address": made.pseudonyms[0], "label": label}
        with epoch_of_key_holders(made.epoch):
            self.request("POST", "/v1/address-exclusions", body)

    def include_address(self, canonical: str) -> None:
        """A municipality's address officer: take an address (canonical ``nl-address:...``)
        off the exclusion list, pseudonymised here; household matching through it resumes.
        A ServiceError 404 when it is not on the list."""
        made = self.pseudonymise([canonical])
        body = {"epoch": made.epoch, "address": made.pseudonyms[0]}
        with epoch_of_key_holders(made.epoch):
            self.request("DELETE", "/v1/address-exclusions", body)

    def address_exclusions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.request("GET", "/v1/address-exclusions").json()["items"]
        return found

    def register_signal(self, signal: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/signals``; returns the answer (signal id, removal date, matches).

        The professional's contact details are checked first (``InputError`` naming the
        field, e.g. ``professional.name``): what the service would refuse is not sent."""
        check_professional(signal.get("professional"))
        answer: dict[str, Any] = self.request("POST", "/v1/signals", signal).json()
        return answer

    def register_signals(self, signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``POST /v1/signals/batch``: 1..500 signals in one request, registered in order,
        each as ``register_signal`` would be. Returns one result per signal, in order:
        ``status`` 201 or 200 with the signal, or 409, 422, 429 or 503 with the problem
        (``retry_after`` on 429 and 503: from that item on nothing was tried; send those
        again later). Nothing is checked here first: an invalid item is the service's
        422 result, and does not keep the others from being registered."""
        if not 1 <= len(signals) <= MAX_SIGNAL_BATCH:
            raise ClientError(f"a batch holds 1..{MAX_SIGNAL_BATCH} signals")
        answer = self.request("POST", "/v1/signals/batch", {"signals": signals}).json()
        results = answer.get("results") if isinstance(answer, dict) else None
        if (
            not isinstance(results, list)
            or len(results) != len(signals)
            or not all(isinstance(r, dict) and isinstance(r.get("status"), int) for r in results)
        ):
            raise ProtocolError("the batch answer does not have one result per signal")
        return results

    def withdraw_signal(self, local_ref: str, reason: str) -> None:
        self.request("DELETE", _signal_path(local_ref), params={"reason": reason})

    def update_signal(self, local_ref: str, change: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /v1/signals/{local_ref}``: new ``professional`` and/or ``informed``
        (the contact details checked first, as in ``register_signal``)."""
        check_professional(change.get("professional"))
        answer: dict[str, Any] = self.request("PATCH", _signal_path(local_ref), change).json()
        return answer

    def list_signals(self, **params: Any) -> list[dict[str, Any]]:
        """Every own signal (``status``, ``uninformed`` as in ``GET /v1/signals``)."""
        items: list[dict[str, Any]] = []
        query = {"limit": 1000, **params}
        while True:
            page = self.request("GET", "/v1/signals", params=query).json()
            items += page["items"]
            if page["next"] is None:
                return items
            query["after"] = page["next"]

    def consult(self, canonical: str, purpose: str) -> dict[str, Any]:
        """Veilig Thuis: who is or was involved with a person (canonical input, local)."""
        made = self.pseudonymise([canonical])
        body = {"epoch": made.epoch, "person": made.pseudonyms[0], "purpose": purpose}
        with epoch_of_key_holders(made.epoch):
            answer: dict[str, Any] = self.request("POST", "/v1/consultations", body).json()
        return answer

    def _about_person(self, path: str, canonical: str, **extra: Any) -> dict[str, Any]:
        """``POST path`` with the person's pseudonym made here, and ``extra``."""
        made = self.pseudonymise([canonical])
        body = {"epoch": made.epoch, "person": made.pseudonyms[0], **extra}
        with epoch_of_key_holders(made.epoch):
            answer: dict[str, Any] = self.request("POST", path, body).json()
        return answer

    def access_report(self, canonical: str) -> dict[str, Any]:
        """Privacy officer: everything held on a person (GDPR art. 15), as JSON."""
        return self._about_person("/v1/privacy/access", canonical)

    def access_report_pdf(self, canonical: str) -> bytes:
        """The same, as the Dutch PDF for the data subject."""
        made = self.pseudonymise([canonical])
        with epoch_of_key_holders(made.epoch):
            response = self._http.post(
                "/v1/privacy/access",
                json={"epoch": made.epoch, "person": made.pseudonyms[0]},
                headers={"Accept": "application/pdf"},
            )
            if response.status_code >= 400:
                raise ServiceError(response.status_code, response.json())
        return response.content

    def erase(self, canonical: str, kind: str, signals: list[str] | None = None) -> list[str]:
        """Privacy officer: execute an erasure, objection or correction request."""
        extra: dict[str, Any] = {"kind": kind}
        if signals is not None:
            extra["signals"] = signals
        erased: list[str] = self._about_person("/v1/privacy/erasure", canonical, **extra)["erased"]
        return erased

    def deceased(self, canonical: str) -> list[str]:
        """Privacy officer: a death notice."""
        erased: list[str] = self._about_person("/v1/privacy/deaths", canonical)["erased"]
        return erased

    def functions(self, category: str | None = None) -> list[dict[str, Any]]:
        """``GET /v1/functions``: ``[{"category", "functions": [{"code", "label"}]}]`` for
        the organisation's own category, another one, or ``"all"``."""
        params = {"category": category} if category is not None else None
        found: list[dict[str, Any]] = self.request("GET", "/v1/functions", params=params).json()[
            "categories"
        ]
        return found

    def matches(self, local_ref: str) -> list[dict[str, Any]]:
        matches: list[dict[str, Any]] = self.request(
            "GET", "/v1/matches", params={"local_ref": local_ref}
        ).json()["matches"]
        return matches

    def notifications(
        self, after: str | None = None, limit: int = 100
    ) -> tuple[list[dict[str, Any]], str]:
        """One page of notifications and the cursor for the next call."""
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        page = self.request("GET", "/v1/notifications", params=params).json()
        return page["items"], page["next"]

    def all_notifications(self, after: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """Every notification after the cursor, following ``next`` until the end."""
        items: list[dict[str, Any]] = []
        while True:
            page, after = self.notifications(after, limit=500)
            items += page
            if not page:
                return items, after or ""


def _epoch_of(answers: list[tuple[int | None, int, list[bytes]]], needed: int) -> int | None:
    """The newest epoch of which there are ``needed`` answers; None: no such epoch."""
    counts = Counter(epoch for _index, epoch, _elements in answers)
    enough = [epoch for epoch, count in counts.items() if count >= needed]
    return max(enough) if enough else None


def _too_few(
    answers: list[tuple[int | None, int, list[bytes]]],
    failures: list[ClientError | httpx.HTTPError],
    needed: int,
) -> ClientError:
    """Why fewer than ``needed`` key holders answered under one epoch, in one line."""
    reasons = "; ".join(dict.fromkeys(str(failure) for failure in failures))
    failed = f"{len(failures)} key holder(s) failed" + (f" ({reasons})" if reasons else "")
    counts = Counter(epoch for _index, epoch, _elements in answers)
    if len(counts) > 1:
        under = ", ".join(f"epoch {epoch}: {counts[epoch]}" for epoch in sorted(counts))
        return EpochsDiffer(
            f"the key holders answer under different key epochs ({under}), fewer than "
            f"{needed} under any one" + (f"; {failed}" if failures else "") + ": a rotation "
            f"is being activated; retry once at least {needed} key holders serve one epoch"
        )
    if len(failures) == 1 and isinstance(failures[0], ServiceError):
        return failures[0]
    error = ClientError(f"{len(answers)} of the {needed} key holder answers needed; {failed}")
    error.__cause__ = failures[-1] if failures else None
    return error


def _signal_path(local_ref: str) -> str:
    """``/v1/signals/{local_ref}``, refusing a value that is no reference (``/``, ``?``:
    a request meant for one signal must not reach another URL); ``.`` and ``..`` go
    percent-encoded, so that no URL resolution turns them into another path."""
    if not is_local_ref(local_ref):
        raise ClientError("local_ref: not 1..64 of [A-Za-z0-9._:-]")
    return f"/v1/signals/{path_segment(local_ref)}"


def _dev_listing(path: Path) -> list[dict[str, str]]:
    """The demo certificates ``path`` (orgs.json, roles.json) lists, each with its
    ``oin``, ``name``, ``cert`` and ``key`` (and ``category`` or ``role``) as text."""
    try:
        found = strict_json.load_file(path, MAX_DEV_FILE)
    except OSError:
        raise ClientError(f"{path} cannot be read") from None
    except strict_json.NotJson as error:
        raise ClientError(f"{path} is not a development set-up's listing: {error}") from None
    if not isinstance(found, list) or not all(
        isinstance(entry, dict)
        and all(isinstance(entry.get(name), str) for name in ("oin", "name", "cert", "key"))
        and all(isinstance(value, str) for value in entry.values())
        for entry in found
    ):
        raise ClientError(f"{path} is not a development set-up's listing of certificates")
    return found
