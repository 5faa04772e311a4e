"""The seam through which the registry records manifests and moves tags.

On its own the registry keeps tags as plain tag history (`LocalTags`); integrated with the
cluster, the same history belongs to image streams and a push also records the Image and tells
watchers (`registry.stream_publisher.StreamPublisher`)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from sqlalchemy import Connection

from ..images.history import add_event
from ..oci.manifest import ParsedManifest
from .metadata import RegistryMetadata


class Publisher(Protocol):
    async def publish(
        self, request: web.Request, name: str, manifest: ParsedManifest, tag: str | None
    ) -> None:
        """Store `manifest` in repository `name` and, with a tag, put it at the tag's head."""

    async def untag(self, request: web.Request, name: str, tag: str) -> bool:
        """Remove `tag` from repository `name`; False when it has no such tag."""

    async def delete_manifest(self, request: web.Request, name: str, digest: str) -> bool:
        """Remove the manifest from repository `name`; False when it is not there."""


class LocalTags:
    def __init__(self, metadata: RegistryMetadata) -> None:
        self.metadata = metadata

    async def publish(
        self, request: web.Request, name: str, manifest: ParsedManifest, tag: str | None
    ) -> None:
        def write(conn: Connection) -> int:
            repository_id = self.metadata.store_manifest(conn, name, manifest)
            if tag is not None:
                add_event(conn, repository_id, tag, str(manifest.digest), 1)
            return repository_id

        self.metadata.remember(name, await self.metadata.db.run_write(write))

    async def untag(self, request: web.Request, name: str, tag: str) -> bool:
        repository_id = await self.metadata.repository_id(name)
        return repository_id is not None and await self.metadata.delete_tag(repository_id, tag)

    async def delete_manifest(self, request: web.Request, name: str, digest: str) -> bool:
        repository_id = await self.metadata.repository_id(name)
        return repository_id is not None and await self.metadata.delete_manifest(
            repository_id, digest
        )
