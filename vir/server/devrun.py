"""``vir dev run`` (``make run``): the index, its key holder(s), the portal and the
development OpenID provider, each its own process.

The key holders listed in ``.vir/dev/keyholders.json`` (written by ``vir dev init``)
start first, each with its own environment; then the index. Ctrl-C (or SIGTERM)
stops them all. When one of them exits it is named, and the others are stopped too
and its exit status is returned (1 for one stopped by a signal); except a key holder
of a threshold set-up while at least t of them still serve, which is the property
such a set-up is there to show.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from vir.domain.errors import ConfigurationError

DEV_DIR = Path(".vir/dev")


def _start(args: list[str], extra: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "vir.cli", *args]
    return subprocess.Popen(command, env=os.environ | extra)  # noqa: S603 (our own command)


def _start_idp(dev_dir: Path) -> subprocess.Popen[bytes]:
    from vir.portal.devsetup import idp_port

    command = [sys.executable, "-m", "vir.devidp", "--config", str(dev_dir / "idp.json")]
    command += ["--port", str(idp_port()), "--cert", str(dev_dir / "server.crt")]
    command += ["--key", str(dev_dir / "server.key")]
    return subprocess.Popen(command)  # noqa: S603 (our own command)


def run_dev(dev_dir: Path = DEV_DIR) -> int:
    listing = dev_dir / "keyholders.json"
    if not listing.is_file():
        raise ConfigurationError(f"no {listing}; run first: vir dev init (or make run)")
    holders = json.loads(listing.read_text(encoding="utf-8"))
    endpoints = json.loads((dev_dir / "endpoints.json").read_text(encoding="utf-8"))
    named = {
        f"key holder {holder['number']} ({holder['url']})": _start(
            ["keyholder", "serve"], holder["env"]
        )
        for holder in holders
    }
    # The index reads the key holders' evaluation counts for the privacy report.
    usage = {
        "VIR_USAGE_KEYHOLDERS": ",".join(endpoints["keyholders"]),
        "VIR_USAGE_THRESHOLD": str(endpoints["threshold"]),
    }
    named[f"the index ({endpoints['index']})"] = _start(
        ["serve"], {k: v for k, v in usage.items() if k not in os.environ}
    )
    # The portal, and the development OpenID provider its demo organisations sign in with.
    named["the development OpenID provider"] = _start_idp(dev_dir)
    trust = {"VIR_PORTAL_OIDC_CA": str(dev_dir / "ca.crt")}
    named["the portal"] = _start(
        ["portal", "serve"], {k: v for k, v in trust.items() if k not in os.environ}
    )
    processes = list(named.values())
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    keyholders = {name for name in named if name.startswith("key holder ")}
    threshold = int(endpoints["threshold"])
    code = 0
    while not stopping:
        ended = [(name, p) for name, p in named.items() if p.poll() is not None]
        if ended:
            name, process = ended[0]
            del named[name]
            status = process.returncode
            how = f"was stopped by signal {-status}" if status < 0 else f"exited with {status}"
            serving = len(keyholders & named.keys())
            if name in keyholders and serving >= threshold:
                # Any t of them pseudonymise: what a threshold set-up is there to show.
                print(
                    f"vir: {name} {how}; {serving} of {len(keyholders)} key holders still "
                    f"serve (threshold {threshold}), going on",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            print(f"vir: {name} {how}; stopping the others", file=sys.stderr, flush=True)
            code = status if status > 0 else 1
            break
        time.sleep(0.2)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0 if stopping else code
