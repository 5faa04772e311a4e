"""Publishing into image streams, as OpenShift's registry does on every push: the manifest,
its `Image`, the stream (made on the first push, if the pusher may create image streams) and
the tag event, all in one transaction, so that watchers see a push once it is whole."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ..auth.rbac import RbacAuthorizer
from ..auth.user import ANONYMOUS, Attributes, UserInfo
from ..db.objects import Key, ObjectStore, SyncTransaction
from ..images.admission import Refused, admit_push
from ..images.builder import image_from_manifest
from ..images.history import remove_tag, repository_id, tags_of
from ..images.streams import (
    GROUP,
    NAMESPACES,
    new_stream,
    record_tag,
    save_image,
    stream_key,
    touch,
)
from ..oci.manifest import ParsedManifest
from ..storage.base import BlobStore
from .cluster_access import USER_KEY, split_repository
from .errors import RegistryError
from .metadata import RegistryMetadata

# Image configs are small JSON documents; anything larger is not read into the Image.
MAX_CONFIG_BYTES = 1024 * 1024

InternalAddress = Callable[[], Awaitable[str]]


def _denied(message: str) -> RegistryError:
    return RegistryError("DENIED", message)


class StreamPublisher:
    def __init__(
        self,
        metadata: RegistryMetadata,
        objects: ObjectStore,
        blobs: BlobStore,
        rbac: RbacAuthorizer,
        internal_address: InternalAddress,
    ) -> None:
        self.metadata = metadata
        self.objects = objects
        self.blobs = blobs
        self.rbac = rbac
        self.internal_address = internal_address

    @staticmethod
    def _user(request: web.Request) -> UserInfo:
        user = request.get(USER_KEY)
        return user if isinstance(user, UserInfo) else ANONYMOUS

    async def publish(
        self, request: web.Request, name: str, manifest: ParsedManifest, tag: str | None
    ) -> None:
        project, stream_name = split_repository(name) or ("", "")
        namespace = Key(NAMESPACES, "", project)
        config = None
        if manifest.config is not None and manifest.config.size <= MAX_CONFIG_BYTES:
            # A descriptor with the wrong size reads nothing here, and fails the write below.
            config = await self.blobs.read(manifest.config.digest, manifest.config.size)
        reference = f"{await self.internal_address()}/{name}@{manifest.digest}"
        image = image_from_manifest(manifest, reference, config)
        key = stream_key(project, stream_name)
        if tag is not None:
            # Making a stream by pushing needs the right to create image streams.
            wanted = Attributes(
                self._user(request), "create", GROUP, "imagestreams", "", project, stream_name
            )
            if not await self.rbac.allowed(wanted) and await self.objects.get(key) is None:
                user = self._user(request).name
                raise _denied(
                    f"{user} may not create image stream {stream_name} in project {project}"
                )

        def write(tx: SyncTransaction) -> int:
            # Checked in the transaction: a namespace deleted meanwhile takes its records along
            # (wharf.images.history.forget), and must not get this push's afterwards.
            if not tx.exists(namespace):
                raise _denied(f'namespace "{project}" not found')
            found = tx.get(key) if tag is not None else None
            try:
                # The project's quotas and limits, before anything is written.
                admit_push(tx.conn, project, stream_name, image, tag, found)
            except Refused as exc:
                raise _denied(exc.message) from None
            repository = self.metadata.store_manifest(tx.conn, name, manifest)
            save_image(tx, image)
            if tag is not None:
                # Another push may make the stream at the same moment (PostgreSQL).
                stream = found or tx.get_or_create(key, new_stream(project, stream_name))
                digest = str(manifest.digest)
                record_tag(tx, project, stream_name, tag, digest, stream, linked=True)
            return repository

        self.metadata.remember(name, await self.objects.run(write))

    async def untag(self, request: web.Request, name: str, tag: str) -> bool:
        project, stream_name = split_repository(name) or ("", "")
        key = stream_key(project, stream_name)

        def write(tx: SyncTransaction) -> bool:
            found = repository_id(tx.conn, name)
            if found is None or not remove_tag(tx.conn, found, tag):
                return False
            stream = tx.get(key)
            if stream is not None:
                stream["spec"]["tags"] = [
                    t for t in stream["spec"].get("tags") or [] if t.get("name") != tag
                ]
                touch(tx, key, stream)
            return True

        return await self.objects.run(write)

    async def delete_manifest(self, request: web.Request, name: str, digest: str) -> bool:
        history = await self.metadata.db.run_read(lambda conn: tags_of(conn, name))
        # As OpenShift: a manifest the stream still refers to is not deleted (untag it first).
        if any(event.digest == digest for events in history.values() for event in events):
            raise RegistryError(
                "UNSUPPORTED", f"{digest} is still referenced by image stream {name}"
            )
        found = await self.metadata.repository_id(name)
        return found is not None and await self.metadata.delete_manifest(found, digest)
