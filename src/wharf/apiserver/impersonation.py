"""Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*` headers), as Kubernetes does
it: the caller must be allowed to `impersonate` each thing named, else 403; then the request runs
as the user named, in the groups named and system:authenticated (not the groups the user
is in: as Kubernetes, only what the headers say)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from aiohttp import web

from ..auth.user import (
    AUTHENTICATED,
    SERVICE_ACCOUNT_PREFIX,
    Attributes,
    UserInfo,
    service_account_user,
)
from .errors import bad_request, forbidden

USER, GROUP, UID = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid"
EXTRA = "impersonate-extra-"

Allowed = Callable[[Attributes], Awaitable[bool]]


def wanted(request: web.Request) -> bool:
    return any(name.lower().startswith("impersonate-") for name in request.headers)


def _asked(caller: UserInfo, user: str, uid: str) -> list[Attributes]:
    """What the caller must be allowed: `impersonate` on each user, group, uid and extra."""
    if user.startswith(SERVICE_ACCOUNT_PREFIX):
        namespace, _, name = user[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        needed = [Attributes(caller, "impersonate", "", "serviceaccounts", "", namespace, name)]
    else:
        needed = [Attributes(caller, "impersonate", "", "users", "", "", user)]
    if uid:
        needed.append(Attributes(caller, "impersonate", "", "uids", "", "", uid))
    return needed


def _extras(request: web.Request) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        if name.lower().startswith(EXTRA):
            key = unquote(name[len(EXTRA) :]).lower()
            found.setdefault(key, []).append(value)
    return found


async def impersonated(request: web.Request, caller: UserInfo, allowed: Allowed) -> UserInfo:
    """The user the request runs as; 400 when the headers name no user, 403 when the caller
    may not impersonate what they name."""
    user = request.headers.get(USER, "")
    if not user:
        raise bad_request("impersonating groups, a uid or extras needs Impersonate-User as well")
    groups = request.headers.getall(GROUP, [])
    uid = request.headers.get(UID, "")
    extras = _extras(request)
    asked = _asked(caller, user, uid)
    asked += [Attributes(caller, "impersonate", "", "groups", "", "", g) for g in groups]
    for key, values in extras.items():
        asked += [
            Attributes(caller, "impersonate", "authentication.k8s.io", "userextras", key, "", v)
            for v in values
        ]
    for attributes in asked:
        if not await allowed(attributes):
            raise forbidden(
                caller.name,
                "impersonate",
                attributes.api_group,
                attributes.resource_with_subresource,
                attributes.namespace,
                attributes.name,
            )
    if user.startswith(SERVICE_ACCOUNT_PREFIX) and not groups:
        namespace, _, name = user[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
        return service_account_user(namespace, name, uid)
    everyone = () if user == "system:anonymous" else (AUTHENTICATED,)
    return UserInfo(user, uid, (*groups, *everyone), extras)
