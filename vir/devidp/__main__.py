"""``python -m vir.devidp --config idp.json --port N --cert C --key K``: the development
OpenID provider over HTTPS (``make run`` starts it; so do the tests)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from vir.devidp.app import create_idp_app
from vir.devidp.provider import Provider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vir.devidp", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="users and clients (JSON)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="its private key (PEM)")
    args = parser.parse_args(argv)
    issuer = f"https://{args.host}:{args.port}"
    provider = Provider.from_file(issuer, args.config)
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
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
