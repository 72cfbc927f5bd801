"""Share repair (``vir keyholder repair ...``) when every key holder keeps its keys in an
HSM: a 2-of-3 deployment, each holder with a SoftHSM2 token and PIN file of its own
(its share wrapped by the token's AES key, its checkpoint key a token object), loses
holder 2 and repairs it from holders 1 and 3, the files carried between them as the
operators would.

"Lost", for a holder with an HSM (docs/operations.md, "Losing a key holder": "its keys
directory (or HSM)"): its keys directory (the wrapped share), its database, its token
and its PIN file are gone. The token is deleted from SoftHSM2, so the AES key that
wrapped the share and the checkpoint key go with it: a copy of the wrapped file would
be of no use. The replacement is prepared as the operations guide says (database,
organisations, no ``init``) with a fresh, empty token of another label and PIN: a new
HSM. ``repair request`` makes its checkpoint key in that token.

Afterwards the repaired share is at rest only wrapped by the new token (no plain key
file; no share in any encoding in the keys directory, the repair files, the database or
any command's output); the repair files are signed by the helpers' token-held
checkpoint keys and ``finish`` checks them (under swapped verifier keys it refuses and
stores nothing); restarted, holder 2 unwraps its share, and with holder 1 down, holders
2 and 3 give the pseudonym they gave before the loss.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.key_forms import written_forms
from support.service import (
    RunningService,
    keyholder_listing,
    once_served,
    run_vir,
    start_keyholders,
    start_service,
    stop_process,
)
from support.softhsm import HsmToken, SoftHsm, session_softhsm

from vir.audit.checkpoint import parse_verifier_key
from vir.client.canonical import nl_bsn
from vir.crypto import keys
from vir.crypto.signing import SIGNING_KEY_LABEL, ed25519_verify, signing_key_path
from vir.domain.encoding import b64url_decode
from vir.keyholder import repair

pytestmark = pytest.mark.integration

BSN = "123456782"
LOST = 2
HELPERS = (1, 3)


@dataclass
class Deployment:
    service: RunningService
    softhsm: SoftHsm
    tokens: dict[int, HsmToken] = field(default_factory=dict)
    # Each holder's epoch-1 share, read from its key file before it went into its token.
    shares: dict[int, bytes] = field(default_factory=dict)
    # Every key holder command's standard output and error.
    outputs: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.service.root

    def env(self, number: int) -> dict[str, str]:
        env: dict[str, str] = self.service.env | keyholder_listing(self.root)[number - 1]["env"]
        return env

    def keys_dir(self, number: int) -> Path:
        return Path(self.env(number)["VIR_KEYHOLDER_KEYS_DIR"])

    def run(self, number: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``vir keyholder ARGS`` as holder ``number`` (with its token)."""
        done = run_vir(self.root, self.env(number), "keyholder", *args, check=check)
        self.outputs += [done.stdout, done.stderr]
        return done

    def ok(self, number: int, *args: str) -> str:
        return self.run(number, *args).stdout

    def use_token(self, number: int, token: HsmToken) -> None:
        """Holder ``number`` keeps its keys in ``token`` from now on: its environment in
        keyholders.json (what its commands and its restarts use) names it."""
        path = self.root / "dev" / "keyholders.json"
        listing = json.loads(path.read_text())
        listing[number - 1]["env"] |= {
            "SOFTHSM2_CONF": str(token.conf),
            "VIR_PKCS11_MODULE": str(token.module),
            "VIR_PKCS11_TOKEN": token.label,
            "VIR_PKCS11_PIN_FILE": str(token.pin_file),
        }
        path.write_text(json.dumps(listing, indent=2) + "\n")
        self.tokens[number] = token


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> SoftHsm:
    return session_softhsm(tmp_path_factory)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, softhsm: SoftHsm) -> Iterator[Deployment]:
    """2-of-3; before its first start each holder's key files are moved into a token of
    its own (``vir keyholder hsm-import``), as docs/operations.md moves a holder."""
    root = tmp_path_factory.mktemp("threshold-repair-hsm")
    service = start_service(root, threshold="2-of-3", keyholders=False)
    try:
        found = Deployment(service, softhsm)
        for number in (1, 2, 3):
            (key,) = keys.load_oprf_keyring(found.keys_dir(number)).keys
            assert key.share_index == number
            found.shares[number] = key.secret
            found.use_token(number, softhsm.new_token())
            imported = found.ok(number, "hsm-import")
            assert "1 key file(s) now wrapped by the HSM" in imported
            assert "checkpoint key moved into the HSM" in imported
        service.keyholders, _urls = start_keyholders(root, service.env)
        yield found
    finally:
        service.stop()


def _lose(found: Deployment, number: int) -> None:
    """Stop holder ``number``; destroy its keys directory, database, token and PIN file;
    then prepare its replacement as an operator would: a fresh token (another label and
    PIN), its database and the organisations that call it. No ``init``."""
    stop_process(found.service.keyholders[number - 1])
    url = found.env(number)["VIR_KEYHOLDER_DATABASE_URL"]
    assert url.startswith("sqlite:///")  # holders 2..n: always SQLite (keyholder.devsetup)
    shutil.rmtree(found.keys_dir(number))
    database = Path(url.removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        path.unlink()
    old = found.tokens[number]
    subprocess.run(
        [found.softhsm.util, "--delete-token", "--token", old.label],
        env=found.softhsm.env,
        capture_output=True,
        check=True,
    )
    old.pin_file.unlink()
    found.use_token(number, found.softhsm.new_token())
    assert found.tokens[number].label != old.label

    found.ok(number, "db", "upgrade")
    found.ok(number, *found.service.org_add("education"))


def _pseudonym(service: RunningService) -> str:
    with service.client("education") as school:
        made = once_served(1, lambda: school.pseudonymise([nl_bsn(BSN)]))
    assert made.epoch == 1
    return made.pseudonyms[0]


def _signed_by(path: Path, verifier: str) -> bool:
    """Whether the repair file ``path`` carries a good signature of ``verifier``'s key
    over the rest of its canonical JSON (checked here, not by vir's own reader)."""
    doc = json.loads(path.read_bytes())
    name, public_key = parse_verifier_key(verifier)
    body = {k: v for k, v in doc.items() if k != "signature"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    signature = b64url_decode(doc["signature"])
    return (
        doc["signer"] == name
        and signature is not None
        and ed25519_verify(public_key, signature, repair.DOMAIN + canonical.encode("ascii"))
    )


def test_a_lost_hsm_holder_is_repaired_into_a_new_token(
    deployment: Deployment, tmp_path: Path
) -> None:
    found = deployment
    service = found.service
    before = _pseudonym(service)
    verifiers = {h: found.ok(h, "key").strip() for h in HELPERS}
    # The helpers sign with the keys in their tokens: no key file, the token's public key.
    for helper in HELPERS:
        assert not signing_key_path(found.keys_dir(helper)).exists()
        with found.tokens[helper].open() as token:
            in_token = token.ed25519_public_key(SIGNING_KEY_LABEL)
        assert parse_verifier_key(verifiers[helper])[1] == in_token

    _lose(found, LOST)

    # The five steps, each on its own holder; the files travel through ``work``.
    work = tmp_path / "carried"
    work.mkdir(mode=0o700)
    request = work / "request.json"
    found.ok(
        LOST,
        *("repair", "request", "--index", str(LOST), "--helpers", "1,3"),
        *("--threshold", "2-of-3", "--out", str(request)),
    )
    joins = [str(work / f"join-{h}.json") for h in HELPERS]
    deals = [str(work / f"deal-{h}.json") for h in HELPERS]
    sums = [str(work / f"sum-{h}.json") for h in HELPERS]
    given = [arg for h in HELPERS for arg in ("--verifier-key", f"{h}={verifiers[h]}")]
    for helper, out in zip(HELPERS, joins, strict=True):
        found.ok(helper, "repair", "join", "--request", str(request), "--out", out)
    for helper, out in zip(HELPERS, deals, strict=True):
        found.ok(
            helper,
            *("repair", "deal", "--request", str(request), "--joins", *joins),
            *given,
            *("--out", out),
        )
    for helper, out in zip(HELPERS, sums, strict=True):
        found.ok(
            helper,
            *("repair", "sum", "--request", str(request), "--joins", *joins),
            *("--deals", *deals, *given, "--out", out),
        )
    for helper, files in zip(HELPERS, zip(joins, deals, sums, strict=True), strict=True):
        for name in files:
            assert _signed_by(Path(name), verifiers[helper]), name
            other = verifiers[HELPERS[0] if helper == HELPERS[1] else HELPERS[1]]
            assert not _signed_by(Path(name), other), name

    finish = ("repair", "finish", "--request", str(request), "--joins", *joins, "--sums", *sums)
    swapped = [
        *("--verifier-key", f"1={verifiers[3]}"),
        *("--verifier-key", f"3={verifiers[1]}"),
    ]
    refused = found.run(LOST, *finish, *swapped, check=False)
    assert refused.returncode != 0
    assert "not signed by helper 1's key" in refused.stderr
    new_keys = found.keys_dir(LOST)
    assert not list(new_keys.glob("oprf-epoch-*"))  # nothing stored
    assert len(list(new_keys.glob("repair-*.box"))) == 1  # kept, to run again
    done = found.ok(LOST, *finish, *given)
    assert "stored its repaired share of epoch(s) 1" in done

    # At rest only wrapped by the new token.
    names = sorted(p.name for p in new_keys.iterdir())
    assert names == ["oprf-epoch-1.key.wrapped"], names
    assert not list(new_keys.rglob("oprf-epoch-*.key"))
    with found.tokens[LOST].open() as token:
        ring = keys.load_oprf_keyring(new_keys, token=token)
        facts = token.key_facts(SIGNING_KEY_LABEL)
    (checkpoint,) = [f for f in facts if f.object_class == "private"]
    assert [(k.epoch, k.share_index, k.secret) for k in ring.keys] == [
        (1, LOST, found.shares[LOST])
    ]
    # ``request`` made the new holder's checkpoint key inside its token.
    assert checkpoint.never_extractable and checkpoint.always_sensitive
    assert found.ok(LOST, "epochs") == found.ok(3, "epochs")

    # Restarted, it unwraps its share; with holder 1 down, holders 2 and 3 answer.
    (process,), _urls = start_keyholders(service.root, service.env, missing_only=True)
    service.keyholders[LOST - 1] = process
    stop_process(service.keyholders[0])
    assert _pseudonym(service) == before

    # No share in any form anywhere but wrapped: keys directory, repair files, database,
    # every command's output, the new holder's log.
    texts = [p.read_bytes() for p in new_keys.iterdir()]
    texts += [p.read_bytes() for p in work.iterdir()]
    database = Path(found.env(LOST)["VIR_KEYHOLDER_DATABASE_URL"].removeprefix("sqlite:///"))
    texts += [p.read_bytes() for p in database.parent.glob(database.name + "*")]
    texts += [text.encode() for text in found.outputs]
    texts.append(service.keyholder_log(LOST).encode())
    assert len(list(work.iterdir())) == 7
    for text in texts:
        for secret in found.shares.values():
            for form in written_forms(secret):
                assert form not in text
