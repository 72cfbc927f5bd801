"""Signed, sealed files that key holders' operators carry between holders: the format
shared by share repair (``vir.keyholder.repair``) and key generation
(``vir.keyholder.dkg``).

A file is one canonical JSON object (sorted keys, no spaces, ASCII), of a known
version and kind with exactly that kind's fields. A signed one also names its signer's
key and carries an Ed25519 signature (the holder's checkpoint key) over its family's
domain and the canonical body without the signature. A scalar travels only sealed
(``vir.crypto.sealedbox``) to the recipient's one-use box key, prefixed with a context
that says what it is, from whom and to whom, so that a box moved to another place is
refused. Outputs are new files (0600, O_EXCL, synced). Every refusal names the file and
the problem, never a value it holds: the parser's own messages, which may quote the
input, are not passed on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vir.audit.checkpoint import parse_verifier_key
from vir.crypto import sealedbox, threshold
from vir.crypto.keyfile import write_new_file
from vir.crypto.signing import CheckpointSigner, ed25519_verify
from vir.domain import strict_json
from vir.domain.encoding import b64url_decode, b64url_encode
from vir.domain.errors import ConfigurationError, CryptoError

SIGNATURE_BYTES = 64
_OPRF_KEY_FILE = re.compile(r"oprf-epoch-[0-9]+\.key(\.wrapped)?")
_FIELD_NAME = re.compile(r"[a-z_]{1,32}")


@dataclass(frozen=True)
class Family:
    """One family of files: ``name`` in messages ("a version 1 repair file"), the
    ``domain`` its signatures and sealed contexts start with, and each kind's fields."""

    name: str
    version: int
    domain: bytes
    fields: Mapping[str, frozenset[str]]
    max_bytes: int = 1 << 20


# -- writing ---------------------------------------------------------------------------


def canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def render(body: Mapping[str, Any]) -> bytes:
    return canonical(body) + b"\n"


def sign(family: Family, body: dict[str, Any], signer: CheckpointSigner) -> bytes:
    """``body`` with its signer's key name and signature, rendered."""
    name, public_key = parse_verifier_key(signer.verifier_key())
    body = body | {"signer": name}
    message = family.domain + canonical(body)
    signature = signer.sign_bytes(message)
    if not ed25519_verify(public_key, signature, message):
        raise ConfigurationError(
            "this key holder's checkpoint key does not verify its own signature"
        )
    return render(body | {"signature": b64url_encode(signature)})


def refuse_existing(out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise ConfigurationError(
            f"{out} already exists; vir never overwrites it: choose another --out"
        )


def write_output(path: Path, data: bytes) -> None:
    """A new file (0600 from the first byte, O_EXCL: never overwrites), synced."""
    try:
        write_new_file(path, data)
    except FileExistsError:
        raise ConfigurationError(
            f"{path} already exists; vir never overwrites it: choose another --out"
        ) from None


# -- reading ---------------------------------------------------------------------------


def bad(path: Path, problem: str) -> ConfigurationError:
    return ConfigurationError(f"{path}: {problem}")


def load(family: Family, path: Path, kind: str) -> dict[str, Any]:
    """The document of ``kind`` in ``path``, its fields exactly the kind's."""
    try:
        with path.open("rb") as handle:
            data = handle.read(family.max_bytes + 1)
    except OSError:
        raise ConfigurationError(f"{path} cannot be read") from None
    if len(data) > family.max_bytes:
        raise bad(path, f"too large for a {family.name} file")
    try:
        doc = strict_json.loads(data)
    except strict_json.NotJson as error:
        raise bad(path, f"not a {family.name} file: {error}") from None
    if not isinstance(doc, dict):
        raise bad(path, "not a JSON object")
    if doc.get("version") != family.version or type(doc.get("version")) is not int:
        raise bad(path, f"not a version {family.version} {family.name} file")
    if doc.get("kind") != kind:
        found = doc.get("kind")
        shown = f"a {found} file" if found in family.fields else f"not a {family.name} file"
        raise bad(path, f"{shown}, where a {kind} file is expected")
    expected = family.fields[kind]
    unknown = set(doc) - expected
    if unknown:
        names = sorted(n for n in unknown if _FIELD_NAME.fullmatch(n))
        shown = f": {', '.join(names)}" if len(names) == len(unknown) else ""
        raise bad(path, f"{len(unknown)} unknown field(s){shown}")
    missing = sorted(expected - set(doc))
    if missing:
        raise bad(path, f"missing field(s): {', '.join(missing)}")
    return doc


def signed_by(family: Family, doc: Mapping[str, Any], path: Path, key: tuple[str, bytes]) -> bool:
    """Whether ``doc`` names key ``key`` as its signer and its signature verifies."""
    name, public_key = key
    signature = bytes_field(doc["signature"], SIGNATURE_BYTES, "signature", path)
    body = {k: v for k, v in doc.items() if k != "signature"}
    return doc["signer"] == name and ed25519_verify(
        public_key, signature, family.domain + canonical(body)
    )


def bytes_field(value: object, size: int, what: str, path: Path) -> bytes:
    data = b64url_decode(value) if isinstance(value, str) else None
    if data is None or len(data) != size:
        raise bad(path, f"{what} is not {size} bytes in canonical base64url")
    return data


def sealed_field(value: object, what: str, path: Path) -> bytes:
    data = b64url_decode(value) if isinstance(value, str) else None
    if data is None or not 48 < len(data) <= 512:
        raise bad(path, f"the {what} is not a sealed box in canonical base64url")
    return data


def open_scalar(
    box: bytes,
    keypair: sealedbox.BoxKeyPair,
    context: bytes,
    where: str,
    *,
    run: str,
    mixed_up: str,
) -> bytes:
    """The scalar sealed in ``box`` behind ``context``. In a refusal, ``where`` names the
    box, ``run`` what a run of the procedure is called ("request"), and ``mixed_up`` what
    else a box that opens may have been sealed for ("request, epoch or holder")."""
    try:
        plain = sealedbox.open_sealed(box, keypair)
    except CryptoError:
        raise ConfigurationError(
            f"{where} does not open with this key holder's box key: it was altered, or "
            f"sealed for another holder or {run}"
        ) from None
    scalar = plain[len(context) :]
    if not plain.startswith(context) or len(scalar) != 32:
        raise ConfigurationError(
            f"{where} was sealed for another {mixed_up}: the files are mixed up"
        )
    return scalar


# -- verifier keys, thresholds, keys directories -----------------------------------------


def parse_verifier_keys(values: Iterable[str]) -> dict[int, str]:
    """``--verifier-key INDEX=KEY`` values by holder index."""
    found: dict[int, str] = {}
    for value in values:
        index, sep, key = value.partition("=")
        if not sep or not _is_number(index.strip()):
            raise ConfigurationError(
                "a verifier key is given as INDEX=KEY (the holder's share index, then its "
                "`vir keyholder key`)"
            )
        number = int(index.strip())
        if number in found:
            raise ConfigurationError(f"two verifier keys for holder {number}")
        found[number] = key.strip()
    return found


def verifiers(
    holders: Sequence[int],
    given: Mapping[int, str],
    me: int | None,
    signer: CheckpointSigner | None,
    *,
    role: str,
    outside: str,
) -> dict[int, tuple[str, bytes]]:
    """Each of ``holders``' (key name, Ed25519 key), called ``role`` in messages; this
    holder's own (``me``) may be left out, and must be its own when given. ``outside``
    says what a key for another holder is not one of ("a helper of this request")."""
    extra = sorted(set(given) - set(holders))
    if extra:
        raise ConfigurationError(
            f"a verifier key is given for holder {extra[0]}, which is not {outside} "
            f"({role}s {names(holders)})"
        )
    keys: dict[int, tuple[str, bytes]] = {}
    for holder in holders:
        if holder in given:
            text = given[holder]
        elif holder == me and signer is not None:
            text = signer.verifier_key()
        else:
            raise ConfigurationError(
                f"no verifier key for {role} {holder}: give --verifier-key {holder}=KEY "
                "(that holder's `vir keyholder key`)"
            )
        try:
            keys[holder] = parse_verifier_key(text)
        except ValueError as error:
            raise ConfigurationError(f"the verifier key of {role} {holder}: {error}") from None
    if (
        me is not None
        and signer is not None
        and keys[me] != parse_verifier_key(signer.verifier_key())
    ):
        raise ConfigurationError(
            f"the verifier key given for holder {me} is not this key holder's own"
        )
    return keys


def parse_threshold(text: str) -> tuple[int, int]:
    try:
        return threshold.parse_threshold(text)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


def same_threshold(configured: int, t: int, what: str) -> None:
    """Refuse when this holder's ``VIR_KEYHOLDER_THRESHOLD`` is not the t of the
    ``what`` ("request", "run") its files name."""
    if configured != t:
        raise ConfigurationError(
            f"this key holder's threshold (VIR_KEYHOLDER_THRESHOLD) is {configured}, the "
            f"{what}'s is {t}: the {what} is for another deployment"
        )


def refuse_oprf_keys(keys_dir: Path, why: str) -> None:
    """Refuse when ``keys_dir`` holds an OPRF key or share of any epoch (``why``: what the
    step makes instead, and that it never replaces a key)."""
    if keys_dir.is_dir():
        found = sorted(p.name for p in keys_dir.iterdir() if _OPRF_KEY_FILE.fullmatch(p.name))
        if found:
            raise ConfigurationError(f"{keys_dir} already holds an OPRF key ({found[0]}): {why}")


def names(indices: Iterable[int]) -> str:
    return ",".join(str(i) for i in indices)


def _is_number(text: str) -> bool:
    """ASCII digits, at most 3 (a share index is 1..255): never another script's digits."""
    return text.isascii() and text.isdigit() and len(text) <= 3
