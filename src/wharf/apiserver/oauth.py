"""OpenShift's OAuth endpoints, enough for `oc login`-style clients: discovery, the
challenging client's Basic challenge, the implicit and code grants, and the token page."""

from __future__ import annotations

import html
import secrets
import time
from urllib.parse import urlencode

from aiohttp import web

from ..auth.authenticator import Authenticator, basic_credentials
from ..auth.user import UserInfo

CHALLENGING_CLIENT = "openshift-challenging-client"
BROWSER_CLIENT = "openshift-browser-client"
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
_CODES = web.AppKey("oauth_codes", dict)
CODE_SECONDS = 300


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def metadata(request: web.Request) -> web.Response:
    base = _base(request)
    return web.json_response(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "scopes_supported": [
                "user:full",
                "user:info",
                "user:check-access",
                "user:list-projects",
            ],
            "response_types_supported": ["code", "token"],
            "grant_types_supported": ["authorization_code", "implicit"],
            "code_challenge_methods_supported": ["plain", "S256"],
        }
    )


def _challenge() -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": 401,
            "reason": "Unauthorized",
            "message": "Unauthorized",
        },
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="openshift"'},
    )


async def _login(request: web.Request) -> UserInfo | None:
    credentials = basic_credentials(request.headers.get("Authorization", ""))
    if credentials is None:
        return None
    return await request.app[AUTHENTICATOR].login(*credentials)


async def authorize(request: web.Request) -> web.Response:
    client = request.query.get("client_id", "")
    response_type = request.query.get("response_type", "")
    if client not in (CHALLENGING_CLIENT, BROWSER_CLIENT) or response_type not in ("token", "code"):
        return web.json_response({"error": "unauthorized_client"}, status=400)
    user = await _login(request)
    if user is None:
        return _challenge()
    authenticator = request.app[AUTHENTICATOR]
    base = _base(request)
    if response_type == "token":
        token = await authenticator.issue_token(user, client)
        fragment = urlencode(
            {
                "access_token": token,
                "expires_in": authenticator.token_lifetime,
                "scope": "user:full",
                "token_type": "Bearer",
            }
        )
        raise web.HTTPFound(f"{base}/oauth/token/implicit#{fragment}")
    code = secrets.token_urlsafe(32)
    request.app[_CODES][code] = (user, client, time.monotonic())
    query = {
        "code": code,
        **({"state": request.query["state"]} if "state" in request.query else {}),
    }
    redirect = request.query.get("redirect_uri") or f"{base}/oauth/token/implicit"
    if not redirect.startswith(base):
        return web.json_response({"error": "invalid_request"}, status=400)
    raise web.HTTPFound(f"{redirect}?{urlencode(query)}")


async def token(request: web.Request) -> web.Response:
    form = await request.post()
    code = str(form.get("code", ""))
    entry = request.app[_CODES].pop(code, None)
    if form.get("grant_type") != "authorization_code" or entry is None:
        return web.json_response({"error": "invalid_grant"}, status=400)
    user, client, issued = entry
    if time.monotonic() - issued > CODE_SECONDS:
        return web.json_response({"error": "invalid_grant"}, status=400)
    authenticator = request.app[AUTHENTICATOR]
    access = await authenticator.issue_token(user, client)
    return web.json_response(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": authenticator.token_lifetime,
            "scope": "user:full",
        }
    )


async def implicit(_request: web.Request) -> web.Response:
    return web.Response(text="You may close this page.", content_type="text/plain")


async def token_request(request: web.Request) -> web.Response:
    """The page a person opens to get a token for `wharf login --token`."""
    user = await _login(request)
    if user is None:
        return _challenge()
    access = await request.app[AUTHENTICATOR].issue_token(user, BROWSER_CLIENT)
    server = html.escape(_base(request))
    body = (
        "<!DOCTYPE html><html><head><title>Your API token</title></head><body>"
        f"<h2>Your API token is</h2><code>{html.escape(access)}</code>"
        f"<h2>Log in with this token</h2><pre>wharf login --token={html.escape(access)} "
        f"--server={server}</pre></body></html>"
    )
    return web.Response(text=body, content_type="text/html", headers={"Cache-Control": "no-store"})


def install(app: web.Application, authenticator: Authenticator) -> None:
    app[AUTHENTICATOR] = authenticator
    app[_CODES] = {}
    app.router.add_get("/.well-known/oauth-authorization-server", metadata)
    app.router.add_get("/oauth/authorize", authorize)
    app.router.add_post("/oauth/token", token)
    app.router.add_get("/oauth/token/implicit", implicit)
    app.router.add_get("/oauth/token/request", token_request)
