"""The one seam through which every handler asks whether the caller may act on a repository."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from aiohttp import web

from .errors import RegistryError


class Action(StrEnum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"


class AccessDenied(RegistryError):
    """A caller whose credentials are good may not do what they asked (not: credentials missing
    or wrong). The message says who may not do what, and where."""


class Authorizer(Protocol):
    async def authorize(
        self, request: web.Request, repository: str | None, actions: Sequence[Action]
    ) -> None:
        """Return if the caller may do all `actions` on `repository` (None: the registry itself);
        raise RegistryError UNAUTHORIZED (AccessDenied for a known caller) otherwise."""

    async def may_pull(self, request: web.Request, repository: str) -> bool:
        """Whether the caller may pull `repository`, without raising (catalog, mount source)."""

    async def authorize_metrics(self, request: web.Request) -> None:
        """Return if the caller may read the registry's metrics; raise as `authorize` does."""

    async def authorize_prune(self, request: web.Request) -> None:
        """Return if the caller may remove blobs from the registry's storage (/admin/blobs);
        raise as `authorize` does."""


class AllowAll:
    """Everybody may do everything: the data plane on its own, before logins exist."""

    async def authorize(
        self, request: web.Request, repository: str | None, actions: Sequence[Action]
    ) -> None:
        return None

    async def may_pull(self, request: web.Request, repository: str) -> bool:
        return True

    async def authorize_metrics(self, request: web.Request) -> None:
        return None

    async def authorize_prune(self, request: web.Request) -> None:
        return None
