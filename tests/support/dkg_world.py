"""New key holders in folders (``support.holder_folders``) that generate their shares
together with ``vir keyholder dkg start|deal|finish``. Every dealer's polynomial is
recorded as it is drawn (``threshold.random_polynomial``): only a test may know them,
to compute k = Σ f_J(0), which no holder ever does."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from support.holder_folders import HolderFolders

from vir.crypto import keys, oprf, sealedbox, threshold
from vir.crypto.signing import load_signing_key
from vir.domain.encoding import b64url_encode
from vir.keyholder import dkg, exchange
from vir.keyholder.custody import Custody
from vir.store.migrate import upgrade

_RUN = re.compile(r"--run (\S+)")
_DIGEST = re.compile(r"public record digest ([0-9a-f]{64})")


@dataclass
class Generation(HolderFolders):
    n: int = field(default=3, kw_only=True)
    polynomials: list[list[bytes]] = field(default_factory=list, kw_only=True)
    # Settings of a holder's own beyond the folders' (its HSM's VIR_PKCS11_*).
    extra_env: dict[int, dict[str, str]] = field(default_factory=dict, kw_only=True)

    def env(self, number: int) -> dict[str, str]:
        return super().env(number) | self.extra_env.get(number, {})

    @property
    def holders(self) -> range:
        return range(1, self.n + 1)

    @property
    def key(self) -> bytes:
        """k = Σ f_J(0) over the recorded polynomials (one per dealer)."""
        assert len(self.polynomials) == self.n
        return self.key_of(self.holders)

    def key_of(self, dealers: Sequence[int]) -> bytes:
        """Σ_{J∈dealers} f_J(0): the key qualified ``dealers`` make (drawn in start order,
        holder 1 first)."""
        return threshold.add_scalars([self.polynomials[j - 1][0] for j in dealers])

    def share(self, number: int, epoch: int = 1) -> threshold.Share:
        found = keys.load_oprf_keyring(self.keys_dir(number)).get(epoch)
        assert found is not None and found.share_index is not None
        return threshold.Share(found.share_index, found.secret)

    def verifiers(self, numbers: Sequence[int] | None = None) -> list[str]:
        found = []
        for number in self.holders if numbers is None else numbers:
            found += ["--verifier-key", self.verifier(number)]
        return found

    def start(self, number: int, run: str | None = None, *, out: str = "") -> Path:
        path = self.file(out or f"start-{number}.json")
        extra = [] if run is None else ["--run", run]
        self.ok(
            number,
            "dkg",
            "start",
            "--index",
            str(number),
            "--holders",
            str(self.n),
            "--threshold",
            str(self.threshold),
            "--out",
            str(path),
            *extra,
        )
        return path

    def starts(self) -> tuple[str, list[str]]:
        """Holder 1 starts a run, the others join it: the run id and the start files."""
        first = self.file("start-1.json")
        printed = self.ok(
            1,
            "dkg",
            "start",
            "--index",
            "1",
            "--holders",
            str(self.n),
            "--threshold",
            str(self.threshold),
            "--out",
            str(first),
        )
        found = _RUN.search(printed)
        assert found is not None, printed
        run = found[1]
        paths = [str(first)] + [str(self.start(j, run)) for j in self.holders if j != 1]
        return run, paths

    def deal_args(
        self, starts: Sequence[str], out: Path, verifiers: Sequence[int] | None = None
    ) -> list[str]:
        """``dkg deal`` with ``starts``, the verifier keys of ``verifiers`` (all)."""
        keys = self.verifiers(verifiers)
        return ["dkg", "deal", "--starts", *starts, *keys, "--out", str(out)]

    def deal(self, number: int, starts: Sequence[str]) -> str:
        path = self.file(f"deal-{number}.json")
        self.ok(number, *self.deal_args(starts, path))
        return str(path)

    def finish_args(
        self,
        starts: Sequence[str],
        deals: Sequence[str],
        out: str = "",
        exclude: Sequence[int] = (),
        step: str = "finish",
    ) -> list[str]:
        extra = ["--out", out] if out else []
        for j in exclude:
            extra += ["--exclude", str(j)]
        return ["dkg", step, "--starts", *starts, "--deals", *deals, *self.verifiers(), *extra]

    def check(
        self,
        number: int,
        starts: Sequence[str],
        deals: Sequence[str],
        exclude: Sequence[int] = (),
    ) -> str:
        """``dkg check`` on holder ``number``: the digest it printed."""
        return self._digest(number, self.finish_args(starts, deals, "", exclude, step="check"))

    def finish(
        self,
        number: int,
        starts: Sequence[str],
        deals: Sequence[str],
        exclude: Sequence[int] = (),
    ) -> str:
        """Finish on holder ``number``, its public record in public-N.json: its digest."""
        out = str(self.file(f"public-{number}.json"))
        return self._digest(number, self.finish_args(starts, deals, out, exclude))

    def _digest(self, number: int, args: list[str]) -> str:
        said = self.ok(number, *args)
        found = _DIGEST.search(said)
        assert found is not None, said
        return found[1]

    def run_of(self, number: int, starts: Sequence[str]) -> dkg.Run:
        """The run as holder ``number`` reads it."""
        signer = load_signing_key(self.keys_dir(number), f"test/holder-{number}")
        verifiers = exchange.parse_verifier_keys(self.verifiers()[1::2])
        run, _me, _keypair, _keys = dkg.read_run(
            Custody(self.keys_dir(number), None), signer, [Path(p) for p in starts], verifiers
        )
        return run

    def deal_wrongly(self, starts: Sequence[str], deal: str, dealer: int, holder: int) -> None:
        """Dealer ``dealer`` seals holder ``holder`` a value off its polynomial (with the
        right context) and signs its deal again: it dealt wrongly."""
        run = self.run_of(holder, starts)

        def wrong_value(doc: dict[str, Any]) -> None:
            context = dkg._context(run, dealer, holder)
            sealed = sealedbox.seal(context + oprf.random_scalar(), run.starts[holder].box_key)
            doc["shares"][str(holder)] = b64url_encode(sealed)

        self.resign(dkg.FAMILY, Path(deal), dealer, wrong_value)

    def box_keys(self, number: int) -> list[Path]:
        return sorted(self.keys_dir(number).glob("dkg-*.box"))

    def polynomials_kept(self, number: int) -> list[Path]:
        """The polynomial files (plain or wrapped) in holder ``number``'s keys directory."""
        return sorted(self.keys_dir(number).glob("dkg-*.polynomial*"))


@dataclass
class SetUpGeneration(Generation):
    """A generation among key holders set up elsewhere (``vir dev init``'s, to be served
    as real processes), each run with its own settings ``holder_env``."""

    holder_env: dict[int, dict[str, str]] = field(default_factory=dict, kw_only=True)

    def env(self, number: int) -> dict[str, str]:
        return self.holder_env[number]

    def keys_dir(self, number: int) -> Path:
        return Path(self.holder_env[number]["VIR_KEYHOLDER_KEYS_DIR"])

    def database_url(self, number: int) -> str:
        return self.holder_env[number]["VIR_KEYHOLDER_DATABASE_URL"]


def generation(root: Path, t: int, n: int, monkeypatch: pytest.MonkeyPatch) -> Generation:
    """n fresh holders (a database each; their keys directories made by start), with
    the dealers' polynomials recorded."""
    world = Generation(root, threshold=t, n=n)
    for number in world.holders:
        folder = root / f"holder-{number}"
        folder.mkdir(mode=0o700, parents=True)
        upgrade(world.database_url(number))
    return _recording(world, monkeypatch)


def generation_among(
    root: Path,
    t: int,
    holder_env: dict[int, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> SetUpGeneration:
    """A generation among the key holders whose settings are ``holder_env`` (by number;
    databases upgraded, no OPRF key), its files in ``root``/files, the dealers'
    polynomials recorded."""
    world = SetUpGeneration(root, threshold=t, n=len(holder_env), holder_env=holder_env)
    return _recording(world, monkeypatch)


_G = TypeVar("_G", bound=Generation)


def _recording(world: _G, monkeypatch: pytest.MonkeyPatch) -> _G:
    world.file("x").parent.mkdir(parents=True)
    draw = threshold.random_polynomial

    def recording(*args: Any, **kwargs: Any) -> list[bytes]:
        found = draw(*args, **kwargs)
        world.polynomials.append(found)
        return found

    monkeypatch.setattr(threshold, "random_polynomial", recording)
    return world
