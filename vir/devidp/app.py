"""The development OpenID provider's web layer (Starlette), over HTTPS.

``GET /authorize`` shows the demo users to sign in as (no password: this provider is
for development and tests); picking one posts back to ``/authorize``, which redirects
to the client with a code. ``POST /token`` exchanges it (client secret and PKCE
verifier) for an access token and an ID token; ``/jwks.json`` publishes the signing
key; ``/.well-known/openid-configuration`` says where everything is.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from vir.devidp.provider import Provider, oauth2_request

# The authorization request's parameters, carried from the sign-in page back to it.
_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "acr_values",
)
_FORM = "application/x-www-form-urlencoded"
_LIMIT = 4096  # bytes of a form or query: more is not an authorization request
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self' https:; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _response(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    status, body, headers = result
    content = body if isinstance(body, str) else json.dumps(body)
    media = "application/json" if body else None
    return Response(content, status_code=status, headers=dict(headers), media_type=media)


async def _values(request: Request) -> tuple[dict[str, str], dict[str, str]] | None:
    """The query's and (for a POST) the form's values, one each; None when too large,
    repeated, or not a form."""
    if len(request.url.query) > _LIMIT:
        return None
    query = _unique(request.query_params.multi_items())
    form: dict[str, str] | None = {}
    if request.method == "POST":
        body = await request.body()
        if len(body) > _LIMIT:
            return None
        if request.headers.get("content-type", "").split(";")[0].strip() != _FORM:
            return None
        try:
            form = _unique(parse_qsl(body.decode("ascii"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return None
    if query is None or form is None or set(query) & set(form):
        return None
    return query, form


def _unique(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            return None
        values[key] = value
    return values


def _page(provider: Provider, values: dict[str, str]) -> str:
    carried = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(values[name])}">'
        for name in _PARAMETERS
        if name in values
    )
    choices = "".join(
        f'<li><form method="post" action="/authorize">{carried}'
        f'<input type="hidden" name="sub" value="{html.escape(user.sub)}">'
        f'<button type="submit">{html.escape(user.name)}</button> '
        f"<span>{html.escape(', '.join(user.roles))}, organisatie {user.organisation}"
        f"</span></form></li>"
        for user in provider.users.values()
    )
    return (
        '<!doctype html><html lang="nl"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Inloggen (ontwikkelomgeving)</title></head><body><main>"
        "<h1>Inloggen bij de ontwikkel-identiteitsprovider</h1>"
        "<p>Dit is de identiteitsprovider van de ontwikkelomgeving: kies een "
        "demogebruiker. Een echte organisatie gebruikt haar eigen provider.</p>"
        f"<ul>{choices}</ul></main></body></html>"
    )


def _message_page(title: str, heading: str, text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>{title}'
        f"</title></head><body><main><h1>{heading}</h1><p>{html.escape(text)}"
        "</p></main></body></html>",
        status,
        headers=_HEADERS,
    )


def _error_page(error: str) -> HTMLResponse:
    """A 400 page naming the OAuth error: shown, not redirected (the address to send
    the browser to is what was not valid)."""
    return _message_page("Fout", "Ongeldig verzoek", error, 400)


def create_idp_app(provider: Provider) -> Starlette:
    async def discovery(_request: Request) -> Response:
        return JSONResponse(provider.discovery(), headers=_HEADERS)

    async def jwks(_request: Request) -> Response:
        return JSONResponse(provider.jwks(), headers=_HEADERS)

    async def authorize(request: Request) -> Response:
        read = await _values(request)
        if read is None:
            return JSONResponse({"error": "invalid_request"}, 400, headers=_HEADERS)
        values = read[0] | read[1]
        oauth = oauth2_request(request.method, str(request.url), *read, request.headers)
        if request.method == "POST":
            response = _response(provider.authorize(oauth, values.get("sub", "")))
            response.headers.update(_HEADERS)
            return response
        error = provider.check_authorization(oauth)
        if error is not None:
            return _error_page(error)
        return HTMLResponse(_page(provider, values), headers=_HEADERS)

    async def token(request: Request) -> Response:
        read = await _values(request)
        if read is None:
            return JSONResponse({"error": "invalid_request"}, 400, headers=_HEADERS)
        oauth = oauth2_request("POST", str(request.url), *read, request.headers)
        response = _response(provider.token(oauth))
        response.headers.update(_HEADERS)
        return response

    async def userinfo(request: Request) -> Response:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        claims = provider.userinfo(value) if scheme.lower() == "bearer" else None
        if claims is None:
            return JSONResponse(
                {"error": "invalid_token"},
                401,
                headers=_HEADERS | {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(claims, headers=_HEADERS)

    async def logout(request: Request) -> Response:
        read = await _values(request)
        if read is None:
            return _error_page("invalid_request")
        back, error = provider.end_session(read[0] | read[1])
        if error is not None:
            return _error_page(error)
        if back is not None:
            return RedirectResponse(back, 303, headers=_HEADERS)
        return _message_page(
            "Uitgelogd", "Uitgelogd", "U bent uitgelogd bij de ontwikkel-identiteitsprovider."
        )

    async def home(_request: Request) -> Response:
        return RedirectResponse("/.well-known/openid-configuration")

    return Starlette(
        routes=[
            Route("/", home),
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks.json", jwks),
            Route("/authorize", authorize, methods=["GET", "POST"]),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
            Route("/logout", logout, methods=["GET", "POST"]),
        ]
    )


def authorization_url(issuer: str, **params: str) -> str:
    """``issuer``'s authorization endpoint with ``params`` (for tests and tools)."""
    return f"{issuer.rstrip('/')}/authorize?{urlencode(params)}"
