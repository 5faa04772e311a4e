"""Importing images from other registries into image streams, as OpenShift's ImageStreamImport
does: the manifest (an index with its children, or one platform's image of it) is fetched and
kept with its `Image`, and a tag event points at the source. Layer blobs stay upstream until
a pull fetches them (pull-through).

An import is two steps: `fetch` reads from upstream with no transaction open; `store` writes
everything in one transaction, after the project's quotas and limits allow it, so that a
failure leaves nothing behind (no manifest without its Image, no tag event)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import structlog
from sqlalchemy import Connection

from ..db.objects import Conflict, Key, ObjectStore, SyncTransaction
from ..db.prepared import Prepared
from ..db.schema import manifest_blobs, manifests, repository_manifests
from ..db.statements import insert_ignore
from ..kube import format_time
from ..oci import mediatypes
from ..oci.digest import Digest
from ..oci.manifest import Descriptor, InvalidManifest, ParsedManifest, parse_manifest
from ..upstream.client import RegistryClient, RemoteManifest, UpstreamError
from ..upstream.credentials import Credentials, credentials_for
from ..upstream.reference import RemoteReference
from .admission import admit_image, admit_new_stream, admit_stream_change, namespace_objects
from .builder import MANAGED, MANIFEST_BLOB_STORED, image_from_manifest
from .history import add_event, ensure_repository
from .limits import LIMIT_RANGES
from .streams import GROUP, new_stream, save_image, stream_key

log = structlog.get_logger("wharf.import")

SECRETS = "secrets"
LEGACY = "Legacy"
PRESERVE_ORIGINAL = "PreserveOriginal"
IMPORT_MODES = (LEGACY, PRESERVE_ORIGINAL)
# An image config larger than this is not read into the Image (configs are small JSON).
MAX_CONFIG_BYTES = 1024 * 1024
# Imports of one request running at once: an import of 50 tags must not open 50 connections.
CONCURRENT_FETCHES = 4
IMPORT_SUCCESS = "ImportSuccess"
# Tries of one import's write while other writers change the same stream.
_STORE_ATTEMPTS = 5
T = TypeVar("T")

Object = dict[str, Any]


@dataclass(frozen=True)
class Wanted:
    """One image to import: where from, and how."""

    source: RemoteReference
    insecure: bool = False
    mode: str = LEGACY


@dataclass
class Fetched:
    """What an import read from upstream: the manifests to keep (the tagged one first) and
    their Images (the same order)."""

    reference: str  # the tagged manifest's pull spec by digest: host/repo@digest
    digest: str
    manifests: list[ParsedManifest]
    images: list[Object]
    children: list[Object] = field(default_factory=list)  # the Images of an index's children

    @property
    def image(self) -> Object:
        return self.images[0]


def _platform_rank(child: Descriptor) -> int:
    platform = child.platform
    if platform is not None and (platform.os, platform.architecture) == ("linux", "amd64"):
        return 0
    return 1


def pick_child(children: Iterable[Descriptor]) -> Descriptor | None:
    """The child a Legacy import tags: linux/amd64, else the first image manifest."""
    images = [c for c in children if c.mediaType in mediatypes.IMAGE_MANIFESTS]
    return min(images, key=_platform_rank) if images else None


def _imported_image(manifest: ParsedManifest, reference: str, config: bytes | None) -> Object:
    """The Image of an imported manifest: built as a push builds one, but neither managed by
    this registry nor with its blobs stored here (OpenShift marks only pushed images so)."""
    image = image_from_manifest(manifest, reference, config)
    annotations = image["metadata"]["annotations"]
    for pushed_only in (MANAGED, MANIFEST_BLOB_STORED):
        annotations.pop(pushed_only, None)
    return image


class Fetcher:
    """Reads images from upstream with one client per registry for the fetcher's life."""

    def __init__(self, session: aiohttp.ClientSession, secrets: list[Object]) -> None:
        self.session = session
        self.secrets = secrets
        self._clients: dict[tuple[str, bool], RegistryClient] = {}

    def client(self, registry: str, insecure: bool) -> RegistryClient:
        key = (registry, insecure)
        if key not in self._clients:
            credentials: Credentials | None = credentials_for(registry, self.secrets)
            self._clients[key] = RegistryClient(
                registry, insecure=insecure, credentials=credentials, session=self.session
            )
        return self._clients[key]

    async def tags(self, source: RemoteReference, insecure: bool, limit: int) -> list[str]:
        return await self.client(source.registry, insecure).tags(source.repository, limit)

    async def fetch(self, wanted: Wanted) -> Fetched:
        """The image `wanted` names, read whole (manifests and configs); UpstreamError when
        any part of it cannot be."""
        source = wanted.source
        client = self.client(source.registry, wanted.insecure)
        remote = await client.manifest(source.repository, source.digest or source.tag or "latest")
        top = _parsed(remote)
        if top.children:
            if wanted.mode == LEGACY:
                chosen = pick_child(top.children)
                if chosen is None:
                    raise UpstreamError("Invalid", f"{source}: the index has no image manifest")
                manifest, image = await self._image(client, source, chosen.digest)
                digest = str(manifest.digest)
                return Fetched(str(source.by_digest(digest)), digest, [manifest], [image])
            children = [
                await self._image(client, source, c.digest)
                for c in top.children
                if c.mediaType in mediatypes.IMAGE_MANIFESTS
            ]
            reference = str(source.by_digest(str(top.digest)))
            index_image = _imported_image(top, reference, None)
            return Fetched(
                reference,
                str(top.digest),
                [top, *(c[0] for c in children)],
                [index_image, *(c[1] for c in children)],
                [c[1] for c in children],
            )
        config = await self._config(client, source, top)
        reference = str(source.by_digest(str(top.digest)))
        return Fetched(reference, str(top.digest), [top], [_imported_image(top, reference, config)])

    async def _image(
        self, client: RegistryClient, source: RemoteReference, digest: str
    ) -> tuple[ParsedManifest, Object]:
        manifest = _parsed(await client.manifest(source.repository, digest))
        if manifest.children:
            raise UpstreamError("Invalid", f"{source}: an index inside an index")
        config = await self._config(client, source, manifest)
        reference = str(source.by_digest(str(manifest.digest)))
        return manifest, _imported_image(manifest, reference, config)

    @staticmethod
    async def _config(
        client: RegistryClient, source: RemoteReference, manifest: ParsedManifest
    ) -> bytes | None:
        """The image's config, to fill the Image's metadata (checked against its digest)."""
        config = manifest.config
        if config is None or config.size > MAX_CONFIG_BYTES:
            return None
        async with client.blob(source.repository, config.digest) as blob:
            data = bytearray()
            async for chunk in blob.chunks():
                data += chunk
                if len(data) > config.size:
                    break
        expected = Digest.parse(config.digest)
        if len(data) != config.size or Digest.of(bytes(data), expected.algorithm) != expected:
            raise UpstreamError("Invalid", f"{source}: the image config does not match its digest")
        return bytes(data)


def _parsed(remote: RemoteManifest) -> ParsedManifest:
    try:
        return parse_manifest(remote.payload, remote.media_type, Digest.parse(remote.digest))
    except InvalidManifest as exc:
        raise UpstreamError("Invalid", f"invalid manifest: {exc}") from None


async def secrets_of(objects: ObjectStore, namespace: str) -> list[Object]:
    """The project's secrets: the pull secrets among them are the upstream credentials."""
    found, _ = await objects.items(SECRETS, namespace)
    return found


# Storing


_ADD_MANIFEST = Prepared(
    lambda dialect: insert_ignore(dialect, manifests),
    ["digest", "media_type", "payload", "subject", "artifact_type", "annotations", "created_at"],
)
_LINK_MANIFEST = Prepared(
    lambda dialect: insert_ignore(dialect, repository_manifests),
    ["repository_id", "digest", "created_at"],
)
_NAME_BLOB = Prepared(
    lambda dialect: insert_ignore(dialect, manifest_blobs), ["manifest_digest", "blob_digest"]
)


def store_manifest(conn: Connection, repository_id: int, manifest: ParsedManifest) -> None:
    """Keep a fetched manifest linked to the repository, and the blobs it names (which stay
    upstream until pulled), as the registry keeps a pushed one."""
    digest = str(manifest.digest)
    now = datetime.now(UTC).replace(tzinfo=None)
    artifact_type = manifest.artifact_type or (
        manifest.config.mediaType if manifest.config else None
    )
    _ADD_MANIFEST.run(
        conn,
        digest=digest,
        media_type=manifest.media_type,
        payload=manifest.payload,
        subject=manifest.subject.digest if manifest.subject else None,
        artifact_type=artifact_type,
        annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
        created_at=now,
    )
    _LINK_MANIFEST.run(conn, repository_id=repository_id, digest=digest, created_at=now)
    for blob in sorted({d.digest for d in manifest.blobs}):
        _NAME_BLOB.run(conn, manifest_digest=digest, blob_digest=blob)


def _condition(status: str, reason: str, message: str, generation: int) -> Object:
    return {
        "type": IMPORT_SUCCESS,
        "status": status,
        "lastTransitionTime": format_time(datetime.now(UTC)),
        "reason": reason,
        "message": message,
        "generation": generation,
    }


def set_conditions(stream: Object, tag: str, conditions: list[Object]) -> None:
    """A tag's conditions, kept in the stored stream's status (the rest of the status is the
    tag history, computed when the stream is read)."""
    status = stream.setdefault("status", {})
    kept = [t for t in status.get("tags") or [] if t.get("tag") != tag]
    if conditions:
        kept.append({"tag": tag, "conditions": conditions})
    status["tags"] = sorted(kept, key=lambda t: str(t.get("tag")))
    if not status["tags"]:
        stream.pop("status", None)


def spec_tag_for(tag: str, source: str, policy: Mapping[str, Any], reference: Object) -> Object:
    """The spec tag an import with `to` records: the source, how it is imported and served."""
    return {
        "name": tag,
        "annotations": None,
        "from": {"kind": "DockerImage", "name": source},
        "reference": False,
        "importPolicy": dict(policy),
        "referencePolicy": reference or {"type": "Source"},
    }


def _with_spec_tag(stream: Object, spec_tag: Object | None) -> tuple[Object, bool]:
    """The stream with `spec_tag` in place of its namesake; whether the spec changed."""
    if spec_tag is None:
        return stream, False
    spec = stream.setdefault("spec", {})
    tags = spec.get("tags") or []
    old = next((t for t in tags if t.get("name") == spec_tag["name"]), None)
    if old is not None and {k: v for k, v in old.items() if k != "generation"} == spec_tag:
        return stream, False
    generation = int(stream["metadata"].get("generation", 1)) + 1
    stream["metadata"]["generation"] = generation
    spec["tags"] = [
        *(t for t in tags if t.get("name") != spec_tag["name"]),
        {**spec_tag, "generation": generation},
    ]
    return stream, True


class Refusal(Exception):
    """An import the project does not allow (a quota, a limit, a namespace gone)."""

    def __init__(self, reason: str, message: str, code: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code = code


def store(
    tx: SyncTransaction,
    namespace: str,
    name: str,
    tag: str,
    fetched: Fetched,
    spec_tag: Object | None,
    create: bool = True,
) -> Object:
    """Keep `fetched` under the stream's `tag` (made if new, when `create`), in one
    transaction: the project's quotas and limits first, then manifests, Images, the stream and
    its tag event. Returns the stream as stored."""
    from .admission import Refused

    if not tx.exists(Key("namespaces", "", namespace)):
        raise Refusal("NotFound", f'namespaces "{namespace}" not found', 404)
    key = stream_key(namespace, name)
    found = tx.get(key)
    if found is None and not create:
        raise Refusal("NotFound", f'imagestreams.{GROUP} "{name}" not found', 404)
    old_spec = (found or {}).get("spec") or {}
    stream = copy.deepcopy(found) if found is not None else new_stream(namespace, name)
    stream, spec_changed = _with_spec_tag(stream, spec_tag)
    try:
        # As everywhere: the quota on streams (locked first), then the limits.
        if found is None:
            admit_new_stream(tx.conn, namespace, name)
        ranges = namespace_objects(tx.conn, LIMIT_RANGES, namespace, lock=True)
        admit_image(tx.conn, namespace, name, fetched.image, ranges)
        admit_stream_change(
            tx.conn, namespace, name, old_spec, stream.get("spec"), [fetched.digest], ranges
        )
    except Refused as exc:
        raise Refusal("Forbidden", exc.message, 403) from None
    repository_id = ensure_repository(tx.conn, f"{namespace}/{name}")
    # Children before their index: an index names manifests the repository holds.
    for manifest in reversed(fetched.manifests):
        store_manifest(tx.conn, repository_id, manifest)
    for image in fetched.images:
        save_image(tx, copy.deepcopy(image), managed=False)
    generation = int(stream["metadata"].get("generation", 1))
    changed = add_event(tx.conn, repository_id, tag, fetched.digest, generation, fetched.reference)
    had_conditions = any(
        t.get("tag") == tag for t in (stream.get("status") or {}).get("tags") or []
    )
    set_conditions(stream, tag, [])
    if found is None:
        # Another writer's stream made meanwhile would lack this import's spec tag: again.
        if tx.get_or_create(key, stream) is not stream:
            raise Conflict(key)
    elif changed or spec_changed or had_conditions:
        stream = tx.update(key, stream, expected_version=_version(found))
    return stream


def _version(stream: Object) -> int:
    return int(stream["metadata"]["resourceVersion"])


async def run_stored(objects: ObjectStore, fn: Callable[[SyncTransaction], T]) -> T:
    """`fn` (store or record_failure) in a transaction, again when another writer changed the
    stream between its read and its write: an import never reverts a concurrent edit."""
    for attempt in range(_STORE_ATTEMPTS):
        try:
            return await objects.run(fn)
        except Conflict:
            if attempt == _STORE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def record_failure(
    tx: SyncTransaction,
    namespace: str,
    name: str,
    tag: str,
    reason: str,
    message: str,
) -> bool:
    """Note on an existing stream that importing `tag` failed (condition ImportSuccess False);
    False when there is no such stream (a failed import makes none)."""
    key = stream_key(namespace, name)
    stream = tx.get(key)
    if stream is None:
        return False
    generation = int(stream["metadata"].get("generation", 1))
    old = next(
        (t for t in (stream.get("status") or {}).get("tags") or [] if t.get("tag") == tag), None
    )
    condition = _condition("False", reason, message, generation)
    previous = (old or {}).get("conditions") or []
    if previous and {k: v for k, v in previous[0].items() if k != "lastTransitionTime"} == {
        k: v for k, v in condition.items() if k != "lastTransitionTime"
    }:
        return True  # the same failure again: nothing to tell watchers
    expected = _version(stream)
    set_conditions(stream, tag, [condition])
    tx.update(key, stream, expected_version=expected)
    return True


# Spec tags that import


def external_source(spec_tag: Mapping[str, Any], own_hosts: Iterable[str]) -> str | None:
    """The pull spec a spec tag imports from: a DockerImage elsewhere, not a reference-only
    tag; None for any other."""
    source = spec_tag.get("from")
    if not isinstance(source, dict) or source.get("kind") != "DockerImage":
        return None
    if spec_tag.get("reference"):
        return None
    name = str(source.get("name") or "")
    if not name or name.split("/", 1)[0] in set(own_hosts):
        return None
    return name


def pending(stream: Object, history: Mapping[str, list[Any]]) -> list[Object]:
    """Spec tags whose import has not been tried since their generation: no tag event and no
    condition of that generation or newer."""
    found = []
    conditions = {
        t.get("tag"): t.get("conditions") or []
        for t in (stream.get("status") or {}).get("tags") or []
    }
    for spec_tag in (stream.get("spec") or {}).get("tags") or []:
        name = spec_tag.get("name")
        generation = int(spec_tag.get("generation") or 0)
        events = history.get(str(name)) or []
        if any(e.generation >= generation for e in events[:1]):
            continue
        if any(int(c.get("generation") or 0) >= generation for c in conditions.get(name, [])):
            continue
        found.append(spec_tag)
    return found


async def gather_bounded(coroutines: list[Any], limit: int = CONCURRENT_FETCHES) -> list[Any]:
    """Run `coroutines` with at most `limit` at once; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(coroutine: Any) -> Any:
        async with gate:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


def streams_with_imports(streams: list[Object]) -> list[Object]:
    return [
        s
        for s in streams
        if any(
            (t.get("from") or {}).get("kind") == "DockerImage"
            for t in (s.get("spec") or {}).get("tags") or []
        )
    ]
