"""Token lookups (wharf.auth.authenticator) on a real database: requests that arrive together
with one token share one lookup; a revocation through this process is never answered from a
lookup that began before it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.stores import object_store
from wharf.auth.authenticator import Authenticator
from wharf.auth.htpasswd import Htpasswd
from wharf.auth.resources import OAUTH_ACCESS_TOKENS
from wharf.auth.tokens import stored_name
from wharf.auth.user import UserInfo
from wharf.db.objects import Key


class Counting(Authenticator):
    lookups = 0

    async def _lookup(self, token: str) -> UserInfo | None:
        self.lookups += 1
        return await super()._lookup(token)


def test_requests_together_share_one_lookup_and_a_revocation_is_seen_at_once(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            auth = Counting(objects, Htpasswd(tmp_path / "htpasswd"))
            user = await auth.user_info(await auth.ensure_user("alice"))
            token = await auth.issue_token(user, "openshift-challenging-client")

            found = await asyncio.gather(*(auth.user_for_token(token) for _ in range(32)))
            assert {u.name if u else None for u in found} == {"alice"}
            assert auth.lookups == 1

            # A caller that gives up does not take the answer from the others.
            auth._cache.clear()
            first = asyncio.ensure_future(auth.user_for_token(token))
            others = [asyncio.ensure_future(auth.user_for_token(token)) for _ in range(3)]
            await asyncio.sleep(0)  # one turn: every request has joined the lookup
            assert len(auth._lookups) == 1
            first.cancel()
            assert [u.name for u in await asyncio.gather(*others) if u] == ["alice"] * 3
            assert auth.lookups == 2

            # Revoked here while a lookup is under way: the next request does not share it.
            auth._cache.clear()
            before = asyncio.ensure_future(auth.user_for_token(token))
            await asyncio.sleep(0)  # one turn: its lookup has begun
            assert len(auth._lookups) == 1
            async with objects.transaction() as tx:
                await tx.delete(Key(OAUTH_ACCESS_TOKENS, "", stored_name(token)))
            assert await auth.user_for_token(token) is None
            await before

    asyncio.run(scenario())
