"""What every API handler needs: the object store, the kinds, and who may do what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from ..auth.user import Attributes, UserInfo
from ..db.objects import ObjectStore
from ..logs import USER_NAME
from .kinds import KindRegistry


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> UserInfo | None:
        """The caller, None when the request carries no credentials; raises ApiError 401 for
        credentials that are not valid."""


class Authorizer(Protocol):
    async def allowed(self, attributes: Attributes) -> bool: ...


@dataclass
class Api:
    store: ObjectStore
    kinds: KindRegistry
    authenticator: Authenticator
    authorizer: Authorizer

    async def authenticate(self, request: web.Request) -> UserInfo:
        """The caller of a request that needs one: no credentials is 401."""
        from . import impersonation
        from .errors import UNAUTHORIZED

        user = await self.authenticator.authenticate(request)
        if user is None:
            raise UNAUTHORIZED
        if impersonation.wanted(request):
            user = await impersonation.impersonated(request, user, self.authorizer.allowed)
        request[USER_NAME] = user.name
        return user


API = web.AppKey("api", Api)
