"""GET /openshift/token: the registry's token endpoint, as OpenShift's registry answers it.

It issues nothing: a valid cluster token sent as the Basic password comes back as the registry
token, and a request without credentials gets the token `anonymous`."""

from __future__ import annotations

import json

from aiohttp import web

from ..auth.authenticator import basic_credentials
from .cluster_access import ANONYMOUS_TOKEN, ClusterAccess, split_repository

CLUSTER_ACCESS = web.AppKey("cluster_access", ClusterAccess)


def _scope_problem(scope: str) -> str | None:
    """Why a `repository:<name>:<actions>` scope is refused; None when it is acceptable."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None  # malformed scopes are ignored, as OpenShift does
    kind = parts[0].split("(")[0]
    name = ":".join(parts[1:-1])
    if kind in ("repository", "signature") and split_repository(name) is None:
        return f"repository name {name!r} invalid: it must be of the format <project>/<name>"
    return None


async def token(request: web.Request) -> web.Response:
    for scope in request.query.getall("scope", []):
        for part in scope.split(" "):
            problem = _scope_problem(part)
            if problem is not None:
                return web.json_response({"details": problem}, status=401)
    header = request.headers.get("Authorization")
    if header is None:
        return web.json_response({"token": ANONYMOUS_TOKEN, "access_token": ANONYMOUS_TOKEN})
    credentials = basic_credentials(header)
    if credentials is None or not credentials[1]:
        return web.Response(status=401)
    presented = credentials[1]
    if await request.app[CLUSTER_ACCESS].user_for(presented) is None:
        return web.Response(status=401)
    return web.Response(
        body=json.dumps({"token": presented, "access_token": presented}),
        content_type="application/json",
    )
