"""user.openshift.io/v1 (User, Group, Identity) and oauth.openshift.io/v1 (access tokens)."""

from __future__ import annotations

from ..auth.authenticator import Authenticator
from ..auth.resources import OAUTH_ACCESS_TOKENS
from ..db.objects import Key, ObjectStore, Page
from .errors import ApiError
from .kinds import READ_VERBS, Column, Kind, Strategy
from .meta import Object, path_segment_problem
from .resources import Call, ListQuery, Resource, page_of
from .shapes import ANY, INT, Nullable, S, top

ME = "~"


class NamedStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        return path_segment_problem(name)


class UserStrategy(NamedStrategy):
    def columns(self) -> list[Column]:
        return [
            Column("UID", "string", lambda o: o["metadata"].get("uid", "")),
            Column("Full Name", "string", lambda o: o.get("fullName", "")),
            Column("Identities", "string", lambda o: ", ".join(o.get("identities") or [])),
        ]


class UserResource(Resource):
    """Users, where `~` names the caller (for service accounts too, who have no User object)."""

    def __init__(self, kind: Kind, store: ObjectStore, authenticator: Authenticator) -> None:
        super().__init__(kind, store)
        self.authenticator = authenticator

    async def get(self, call: Call, name: str) -> Object:
        if name != ME:
            return await super().get(call, name)
        stored = await self.store.get(self.key("", call.user.name))
        user = (
            dict(stored)
            if stored
            else {
                "apiVersion": "user.openshift.io/v1",
                "kind": "User",
                "metadata": {"name": call.user.name, "uid": call.user.uid},
                "identities": [],
            }
        )
        user["groups"] = list(call.user.groups)
        return user


class TokenStrategy(NamedStrategy):
    def columns(self) -> list[Column]:
        return [
            Column("User Name", "string", lambda o: o.get("userName", "")),
            Column("Client Name", "string", lambda o: o.get("clientName", "")),
            Column("Expires", "integer", lambda o: o.get("expiresIn", 0)),
        ]


class OwnTokenResource(Resource):
    """useroauthaccesstokens: the caller's own tokens, to list and to delete."""

    def key(self, namespace: str, name: str) -> Key:
        return Key(OAUTH_ACCESS_TOKENS, "", name)

    def watched(self) -> list[str]:
        return [OAUTH_ACCESS_TOKENS]

    def _own(self, call: Call, obj: Object) -> bool:
        return obj.get("userName") == call.user.name

    async def present(self, call: Call, obj: Object) -> Object:
        return {**obj, "apiVersion": "oauth.openshift.io/v1", "kind": "UserOAuthAccessToken"}

    async def visible_to(self, call: Call, obj: Object) -> bool:
        return self._own(call, obj)

    async def get(self, call: Call, name: str) -> Object:
        obj = await self.store.get(self.key("", name))
        if obj is None or not self._own(call, obj):
            raise self._missing(name)
        return await self.present(call, obj)

    async def list(self, call: Call) -> tuple[list[Object], int]:
        items, version = await self.store.items(OAUTH_ACCESS_TOKENS)
        return [await self.present(call, i) for i in items if self._own(call, i)], version

    async def list_page(self, call: Call, query: ListQuery) -> Page:
        # Made per caller in memory: paged there too.
        return page_of(*await self.list(call), query)

    async def delete(self, call: Call, name: str, version: int | None = None) -> Object:
        await self.get(call, name)  # 404 for anybody else's token
        return await super().delete(call, name, version)

    async def create(self, call: Call, obj: Object) -> Object:
        raise ApiError(405, "tokens are made by logging in", "MethodNotAllowed")


_TOKEN_SHAPE = top(
    clientName=S,
    expiresIn=INT,
    scopes=[S],
    redirectURI=S,
    userName=S,
    userUID=S,
    authorizeToken=S,
    refreshToken=S,
    inactivityTimeoutSeconds=INT,
)

USER = Kind(
    "user.openshift.io",
    "v1",
    "User",
    "users",
    namespaced=False,
    strategy=UserStrategy(),
    shape=top(fullName=S, identities=[S], groups=Nullable([S])),
)
GROUP = Kind(
    "user.openshift.io",
    "v1",
    "Group",
    "groups",
    namespaced=False,
    strategy=NamedStrategy(),
    shape=top(users=[S]),
)
IDENTITY = Kind(
    "user.openshift.io",
    "v1",
    "Identity",
    "identities",
    namespaced=False,
    strategy=NamedStrategy(),
    shape=top(providerName=S, providerUserName=S, user={"name": S, "uid": S}, extra=ANY),
)
OAUTH_ACCESS_TOKEN = Kind(
    "oauth.openshift.io",
    "v1",
    "OAuthAccessToken",
    "oauthaccesstokens",
    namespaced=False,
    verbs=("delete", "get", "list", "watch"),
    strategy=TokenStrategy(),
    shape=_TOKEN_SHAPE,
)
USER_OAUTH_ACCESS_TOKEN = Kind(
    "oauth.openshift.io",
    "v1",
    "UserOAuthAccessToken",
    "useroauthaccesstokens",
    namespaced=False,
    verbs=("delete", *READ_VERBS),
    strategy=TokenStrategy(),
    shape=_TOKEN_SHAPE,
)
