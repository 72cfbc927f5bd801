"""``python -m vir.devidp --config idp.json --port N --cert C --key K``: the development
OpenID provider over HTTPS (``make run`` starts it; so do the tests). ``--audience``:
the ``aud`` of its access tokens (the key holder's); ``--signing-key``: a private P-256
JWK (JSON) to sign with instead of a new key, for tests that make tokens of their own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import uvicorn
from joserfc.jwk import ECKey

from vir.devidp.app import create_idp_app
from vir.devidp.provider import KEYHOLDER_AUDIENCE, Provider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vir.devidp", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="users and clients (JSON)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="its private key (PEM)")
    parser.add_argument("--audience", default=KEYHOLDER_AUDIENCE, help="aud of access tokens")
    parser.add_argument("--signing-key", type=Path, help="private P-256 JWK (JSON) to sign with")
    args = parser.parse_args(argv)
    issuer = f"https://{args.host}:{args.port}"
    key = None
    if args.signing_key is not None:
        key = ECKey.import_key(json.loads(args.signing_key.read_text(encoding="utf-8")))
    provider = Provider.from_file(issuer, args.config, audience=args.audience, key=key)
    print(f"vir: development OpenID provider at {issuer}", flush=True)
    uvicorn.run(
        create_idp_app(provider),
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.cert),
        ssl_keyfile=str(args.key),
        access_log=False,
        server_header=False,
        log_level="warning",
        # A development server: on SIGTERM, idle keep-alive connections (the key holder
        # fetching keys, a browser) are closed after a second, not waited for.
        timeout_graceful_shutdown=1,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
