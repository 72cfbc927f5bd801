"""Container health check: GET /health on this instance, exit 0 when it answers ok.

Proxy mode (VIR_TLS_MODE=proxy): the app speaks plain HTTP to nginx, so the
check does too. Embedded mode: HTTPS without a client certificate (/health needs
none). The server certificate is issued for the public name, not 127.0.0.1, so
the check verifies the chain against HEALTHCHECK_CA when that is set and
otherwise only reads the status over loopback, sending nothing. HEALTHCHECK_URL
overrides the URL. Standard library only.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("VIR_PORT", "8443")
    scheme = "http" if os.environ.get("VIR_TLS_MODE") == "proxy" else "https"
    url = os.environ.get("HEALTHCHECK_URL", f"{scheme}://127.0.0.1:{port}/health")
    context = None
    if url.startswith("https:"):
        ca = os.environ.get("HEALTHCHECK_CA")
        if ca:
            context = ssl.create_default_context(cafile=ca)
            context.check_hostname = False
        else:
            context = ssl._create_unverified_context()  # noqa: S323 - loopback status only
    try:
        with urllib.request.urlopen(url, context=context, timeout=4) as response:  # noqa: S310
            ok = response.status == 200 and json.load(response).get("status") == "ok"
    except (OSError, ValueError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
