"""Who is calling: bearer tokens (OAuth access tokens, service-account tokens) and passwords."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from ..db.objects import AlreadyExists, Key, ObjectStore
from ..kube import format_time, new_uid, now, parse_time
from .htpasswd import PROVIDER, Htpasswd
from .resources import (
    GROUPS,
    IDENTITIES,
    OAUTH_ACCESS_TOKENS,
    SERVICE_ACCOUNT_TOKENS,
    SERVICE_ACCOUNTS,
    USERS,
)
from .tokens import (
    DEFAULT_LIFETIME,
    SERVICE_ACCOUNT_PREFIX,
    looks_like_token,
    new_token,
    stored_name,
)
from .user import AUTHENTICATED, AUTHENTICATED_OAUTH, UserInfo, service_account_user


class InvalidCredentials(Exception):
    """Credentials were sent, and they are not valid (garbage, expired or revoked)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer` header; None without one."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) of a Basic header; None when it does not decode."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except ValueError:  # not base64 (binascii.Error), not ASCII, not UTF-8: all ValueErrors
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


_AUTH_RESOURCES = (
    OAUTH_ACCESS_TOKENS,
    USERS,
    GROUPS,
    IDENTITIES,
    SERVICE_ACCOUNTS,
    SERVICE_ACCOUNT_TOKENS,
)


class Authenticator:
    # A revoked token is refused by every process within this time (they share no memory).
    CACHE_SECONDS = 0.5

    def __init__(
        self, store: ObjectStore, htpasswd: Htpasswd, token_lifetime: int = DEFAULT_LIFETIME
    ) -> None:
        self.store = store
        self.htpasswd = htpasswd
        self.token_lifetime = token_lifetime
        self._cache: dict[str, tuple[float, int, UserInfo | None]] = {}
        # Lookups under way, by token and by the auth writes seen when they began: requests
        # that arrive meanwhile (dozens, when the answer for a busy client expires) wait for
        # the same answer instead of each reading the database.
        self._lookups: dict[tuple[str, int], asyncio.Future[UserInfo | None]] = {}

    async def authenticate(self, request: web.Request) -> UserInfo | None:
        token = bearer_token(request)
        if token is None:
            if request.headers.get("Authorization"):
                raise InvalidCredentials("unsupported authorization scheme")
            return None
        user = await self.user_for_token(token)
        if user is None:
            raise InvalidCredentials("invalid bearer token")
        return user

    async def user_for_token(self, token: str) -> UserInfo | None:
        """The user a token stands for; None for a token that is not (or no longer) valid.

        Answers are remembered for at most CACHE_SECONDS, and forgotten at once when this
        process writes tokens, users, groups or service accounts: a revocation through this
        server takes effect at the next request, one through another process within a second.
        """
        if not looks_like_token(token):
            return None
        name = stored_name(token)
        writes = self.store.writes_to(_AUTH_RESOURCES)
        moment = time.monotonic()
        cached = self._cache.get(name)
        if cached is not None and cached[0] > moment and cached[1] == writes:
            return cached[2]
        key = (name, writes)
        lookup = self._lookups.get(key)
        if lookup is None:
            lookup = self._lookups[key] = asyncio.ensure_future(self._lookup(token))

            def done(finished: asyncio.Future[UserInfo | None]) -> None:
                self._lookups.pop(key, None)
                if not finished.cancelled():
                    finished.exception()  # told to whoever waited; none left is no error

            lookup.add_done_callback(done)
        # Shielded: a caller that goes away does not cancel the answer for the others.
        user = await asyncio.shield(lookup)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[name] = (moment + self.CACHE_SECONDS, writes, user)
        return user

    async def _lookup(self, token: str) -> UserInfo | None:
        if token.startswith(SERVICE_ACCOUNT_PREFIX):
            return await self._service_account_for(token)
        record = await self.store.get(Key(OAUTH_ACCESS_TOKENS, "", stored_name(token)))
        if record is None or self._expired(record):
            return None
        user = await self.store.get(Key(USERS, "", record.get("userName", "")))
        if user is None or user["metadata"].get("uid") != record.get("userUID"):
            return None  # the user was deleted (and perhaps made anew) since the token was issued
        return await self.user_info(user)

    @staticmethod
    def _expired(record: dict[str, Any]) -> bool:
        lifetime = int(record.get("expiresIn") or 0)
        if lifetime <= 0:
            return False
        created = parse_time(record["metadata"]["creationTimestamp"])
        return _now() >= created + timedelta(seconds=lifetime)

    async def _service_account_for(self, token: str) -> UserInfo | None:
        record = await self.store.get(Key(SERVICE_ACCOUNT_TOKENS, "", stored_name(token)))
        if record is None or _now() >= parse_time(record["spec"]["expirationTimestamp"]):
            return None
        namespace = record["spec"]["namespace"]
        account = await self.store.get(
            Key(SERVICE_ACCOUNTS, namespace, record["spec"]["serviceAccountName"])
        )
        if account is None or account["metadata"]["uid"] != record["spec"]["serviceAccountUID"]:
            return None
        return service_account_user(
            namespace, account["metadata"]["name"], account["metadata"]["uid"]
        )

    async def user_info(self, user: dict[str, Any]) -> UserInfo:
        name = user["metadata"]["name"]
        groups, _ = await self.store.items(GROUPS)
        member_of = [g["metadata"]["name"] for g in groups if name in (g.get("users") or [])]
        return UserInfo(
            name,
            user["metadata"].get("uid", ""),
            (*member_of, AUTHENTICATED, AUTHENTICATED_OAUTH),
        )

    # Logging in

    async def login(self, username: str, password: str) -> UserInfo | None:
        """Check a password; on the first login, create the User and its Identity."""
        if not await asyncio.to_thread(self.htpasswd.verify, username, password):
            return None
        user = await self.ensure_user(username)
        return await self.user_info(user)

    async def ensure_user(self, username: str) -> dict[str, Any]:
        key = Key(USERS, "", username)
        existing = await self.store.get(key)
        if existing is not None:
            return existing
        identity_name = f"{PROVIDER}:{username}"
        uid = new_uid()
        user = {
            "apiVersion": "user.openshift.io/v1",
            "kind": "User",
            "metadata": {"name": username, "uid": uid, "creationTimestamp": now()},
            "identities": [identity_name],
            "groups": None,
        }
        identity = {
            "apiVersion": "user.openshift.io/v1",
            "kind": "Identity",
            "metadata": {"name": identity_name, "uid": new_uid(), "creationTimestamp": now()},
            "providerName": PROVIDER,
            "providerUserName": username,
            "user": {"name": username, "uid": uid},
        }
        try:
            async with self.store.transaction() as tx:
                created = await tx.create(key, user)
                identity_key = Key(IDENTITIES, "", identity_name)
                stale = await tx.get(identity_key)
                if stale is None:
                    await tx.create(identity_key, identity)
                else:
                    # The identity outlived a deleted user: it now maps to the new one.
                    stale["user"] = identity["user"]
                    await tx.update(identity_key, stale)
        except AlreadyExists:
            found = await self.store.get(key)
            assert found is not None
            return found
        return created

    async def issue_token(self, user: UserInfo, client: str, lifetime: int | None = None) -> str:
        token = new_token()
        lifetime = self.token_lifetime if lifetime is None else lifetime
        name = stored_name(token)
        record = {
            "apiVersion": "oauth.openshift.io/v1",
            "kind": "OAuthAccessToken",
            "metadata": {"name": name, "uid": new_uid(), "creationTimestamp": format_time(_now())},
            "clientName": client,
            "expiresIn": lifetime,
            "scopes": ["user:full"],
            "redirectURI": "",
            "userName": user.name,
            "userUID": user.uid,
        }
        async with self.store.transaction() as tx:
            await tx.create(Key(OAUTH_ACCESS_TOKENS, "", name), record)
        return token

    async def issue_service_account_token(
        self, namespace: str, account: dict[str, Any], lifetime: int
    ) -> tuple[str, str]:
        """A new token for the service account; returns (token, expirationTimestamp)."""
        token = new_token(SERVICE_ACCOUNT_PREFIX)
        expires = format_time(_now() + timedelta(seconds=lifetime))
        name = stored_name(token)
        record = {
            "metadata": {"name": name, "uid": new_uid(), "creationTimestamp": format_time(_now())},
            "spec": {
                "namespace": namespace,
                "serviceAccountName": account["metadata"]["name"],
                "serviceAccountUID": account["metadata"]["uid"],
                "expirationTimestamp": expires,
            },
        }
        async with self.store.transaction() as tx:
            await tx.create(Key(SERVICE_ACCOUNT_TOKENS, "", name), record)
        return token, expires
