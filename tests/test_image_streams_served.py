"""Image streams as served (wharf.apiserver.image_kinds): a stream's status is computed from its
tag history and the registry's addresses, kept per process and encoded once; here, on a real
database, everything that changes the history or the addresses shows in the next list, and
a list of unchanged streams computes and encodes nothing again."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

from tests.support.stores import object_store
from wharf.apiserver import image_kinds
from wharf.apiserver.image_kinds import Addresses, ImageStreamResource, Served
from wharf.apiserver.resources import Call, ListQuery
from wharf.auth.user import UserInfo
from wharf.db.objects import ObjectStore, SyncTransaction
from wharf.images.history import remove_tag, repository_id
from wharf.images.streams import new_stream, record_tag, stream_key, touch

NS = "team"
CALL = Call(UserInfo("admin"), NS)
DIGESTS = [f"sha256:{n:064x}" for n in range(4)]


class Setting:
    """The registry's addresses, as the route (which the test changes) makes them."""

    def __init__(self) -> None:
        self.now = Addresses("image-registry.svc:5000")

    async def __call__(self) -> Addresses:
        return self.now


async def push(objects: ObjectStore, name: str, tag: str, digest: str) -> None:
    def write(tx: SyncTransaction) -> None:
        key = stream_key(NS, name)
        stream = tx.get(key) or tx.get_or_create(key, new_stream(NS, name))
        record_tag(tx, NS, name, tag, digest, stream)

    await objects.run(write)


async def listed(resource: ImageStreamResource) -> dict[str, Any]:
    """name -> the stream as the list's JSON says it, checked against the list's objects."""
    page = await resource.list_page(CALL, ListQuery())
    assert page.encoded is not None
    decoded = [json.loads(text) for text in page.encoded]
    assert decoded == page.items  # the JSON says what the objects say
    return {item["metadata"]["name"]: item for item in decoded}


def tags(stream: dict[str, Any]) -> dict[str, list[str]]:
    return {t["tag"]: [i["image"] for i in t["items"]] for t in stream["status"].get("tags", [])}


def recomputed(resource: ImageStreamResource, before: dict[Any, Served]) -> list[str]:
    """The streams whose served form was made again since `before` (a copy of what was kept)."""
    return sorted(key[1] for key, served in resource._kept.items() if before.get(key) is not served)


def test_every_change_shows_in_the_next_list_and_nothing_else_is_computed_again(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            setting = Setting()
            resource = ImageStreamResource(image_kinds.IMAGE_STREAM, objects, setting)
            await push(objects, "app", "v1", DIGESTS[0])
            await push(objects, "db", "v1", DIGESTS[1])
            first = await listed(resource)
            assert tags(first["app"]) == {"v1": [DIGESTS[0]]}

            # Unchanged: served as kept, byte for byte.
            kept = dict(resource._kept)
            assert await listed(resource) == first
            assert recomputed(resource, kept) == []

            # A push: only that stream again, with its new history.
            await push(objects, "app", "v1", DIGESTS[2])
            await push(objects, "app", "v2", DIGESTS[3])
            now = await listed(resource)
            assert recomputed(resource, kept) == ["app"]
            assert tags(now["app"]) == {"v1": [DIGESTS[2], DIGESTS[0]], "v2": [DIGESTS[3]]}
            assert now["db"] == first["db"]

            # A tag removed, as deleting an ImageStreamTag does it.
            def untag(tx: SyncTransaction) -> None:
                found = repository_id(tx.conn, f"{NS}/app")
                assert found is not None and remove_tag(tx.conn, found, "v2")
                touch(tx, stream_key(NS, "app"), tx.get(stream_key(NS, "app")) or {})

            await objects.run(untag)
            assert tags((await listed(resource))["app"]) == {"v1": [DIGESTS[2], DIGESTS[0]]}

            # The history pruned through the status, as `prune images` does it.
            pruned = copy.deepcopy(now["app"])
            del pruned["metadata"]["resourceVersion"]
            pruned["status"]["tags"] = [
                {"tag": "v1", "items": [{"image": DIGESTS[2], "created": created(now, "v1")}]}
            ]
            await resource.update(Call(CALL.user, NS, subresource="status"), "app", pruned)
            assert tags((await listed(resource))["app"]) == {"v1": [DIGESTS[2]]}
            # GET serves what the list serves.
            assert tags(await resource.get(CALL, "app")) == {"v1": [DIGESTS[2]]}

            # A route: every stream names its public address at once.
            kept = dict(resource._kept)
            setting.now = Addresses("image-registry.svc:5000", "registry.example.com")
            routed = await listed(resource)
            assert recomputed(resource, kept) == ["app", "db"]
            public = routed["db"]["status"]["publicDockerImageRepository"]
            assert public == "registry.example.com/team/db"

    asyncio.run(scenario())


def created(streams: dict[str, Any], tag: str) -> str:
    """When the head of the app stream's `tag` was recorded."""
    entry = next(t for t in streams["app"]["status"]["tags"] if t["tag"] == tag)
    return str(entry["items"][0]["created"])


def test_a_list_longer_than_what_is_kept_is_served_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            resource = ImageStreamResource(image_kinds.IMAGE_STREAM, objects, Setting())
            resource.SERVED_KEPT = 3
            for n in range(7):
                await push(objects, f"s{n}", "v1", DIGESTS[n % 4])
            for _ in range(2):
                streams = await listed(resource)
                assert sorted(streams) == [f"s{n}" for n in range(7)]
                assert all(tags(s)["v1"] for s in streams.values())
            assert len(resource._kept) == 3

    asyncio.run(scenario())
