"""image.openshift.io/v1: Image, ImageStream, ImageStreamTag, ImageStreamMapping.

A stream's `status.tags` is never stored in the object: it is the tag history the registry keeps
(wharf.images.history), read on every presentation. Whatever changes that history (a push, a
mapping, a tag) also rewrites the stream object, so that watchers see the change at once."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ..auth.rbac import RbacAuthorizer
from ..auth.user import Attributes
from ..db.objects import Key, ObjectStore, Page, Transaction
from ..images.admission import Refused, admit_image, admit_new_stream, admit_stream_change
from ..images.history import (
    History,
    TagEvent,
    add_event,
    ensure_repository,
    forget,
    keep_only,
    remove_tag,
    tags_of_many,
)
from ..images.links import link_image
from ..images.spec_imports import SpecTagImports
from ..images.streams import (
    GROUP,
    IMAGE_STREAMS,
    IMAGES,
    record_tag,
    save_image,
    stream_key,
    touch,
)
from ..kube import format_time
from ..oci.digest import is_digest
from ..oci.names import NAME_RE, is_valid_tag
from .errors import ApiError, bad_request, conflict, invalid, not_found
from .kinds import Column, Kind, Strategy
from .meta import Object, path_segment_problem
from .resources import Call, ListQuery, Resource, page_of
from .shapes import ANY, INT, MAP, B, S, Shape, top


@dataclass(frozen=True)
class Addresses:
    """Where the registry is reached: inside the cluster, and through its route (if any)."""

    internal: str
    public: str | None = None


AddressSource = Callable[[], Awaitable[Addresses]]


def refused(exc: Refused) -> ApiError:
    """A quota's or limit's refusal as Kubernetes answers it: 403 Forbidden."""
    return ApiError(
        403, exc.message, "Forbidden", {"name": exc.name, "group": GROUP, "kind": exc.resource}
    )


def _admit_stream(
    conn: Connection,
    namespace: str,
    name: str,
    new: bool,
    old_spec: object,
    new_spec: object,
    added: list[str],
) -> None:
    """The project's quota on image streams (when the stream is `new`) and its image stream
    limits, checked before the transaction writes anything (wharf.images.admission)."""
    if new:
        admit_new_stream(conn, namespace, name)
    admit_stream_change(conn, namespace, name, old_spec, new_spec, added)


async def admit_stream(tx: Transaction, *args: Any) -> None:
    try:
        await tx.conn.run_sync(_admit_stream, *args)
    except Refused as exc:
        raise refused(exc) from None


# Image


class ImageStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        return path_segment_problem(name)

    def prepare_create(self, obj: Object) -> None:
        obj.setdefault("dockerImageMetadataVersion", "1.0")

    def prepare_update(self, new: Object, old: Object) -> None:
        # As in OpenShift, what describes an image's content cannot change after creation.
        for fixed in ("dockerImageMetadata", "dockerImageLayers", "dockerImageManifests"):
            if fixed in old:
                new[fixed] = old[fixed]

    def columns(self) -> list[Column]:
        return [Column("Image Reference", "string", lambda o: o.get("dockerImageReference", ""))]


# ImageStream


class ImageStreamStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        if not name:
            return "name is required"
        if "/" in name or not NAME_RE.fullmatch(name) or len(name) > 255:
            return (
                f'Invalid value: "{name}": must be lowercase letters, digits and separators '
                "(., _, __, -) that start and end with a letter or digit"
            )
        return None

    def prepare_create(self, obj: Object) -> None:
        obj.pop("status", None)
        spec = obj.setdefault("spec", {}) or {}
        obj["spec"] = spec
        spec.setdefault("lookupPolicy", {"local": False})
        for tag in spec.get("tags") or []:
            tag.setdefault("generation", 1)

    def prepare_update(self, new: Object, old: Object) -> None:
        new.pop("status", None)
        new.setdefault("spec", {}).setdefault("lookupPolicy", {"local": False})
        generation = new["metadata"].get("generation", 1)
        old_tags = {t.get("name"): t for t in (old.get("spec") or {}).get("tags") or []}
        for tag in new["spec"].get("tags") or []:
            if tag != old_tags.get(tag.get("name")):
                tag["generation"] = generation

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        problems = []
        for index, tag in enumerate((obj.get("spec") or {}).get("tags") or []):
            if not isinstance(tag, dict) or not is_valid_tag(str(tag.get("name", ""))):
                problems.append((f"spec.tags[{index}].name", "Invalid value: not a valid tag"))
        return problems

    def columns(self) -> list[Column]:
        return [
            Column("Image Repository", "string", _repository_column),
            Column("Tags", "string", _tags_column),
            Column("Updated", "string", _updated_column),
        ]


def _repository_column(obj: Object) -> str:
    status = obj.get("status") or {}
    return str(status.get("publicDockerImageRepository") or status.get("dockerImageRepository", ""))


def _tags_column(obj: Object) -> str:
    tags = [t["tag"] for t in (obj.get("status") or {}).get("tags") or []]
    shown = ",".join(tags[:3])
    return shown + (f" + {len(tags) - 3} more..." if len(tags) > 3 else "")


def _updated_column(obj: Object) -> str:
    from .tables import age

    newest = max(
        (
            t["items"][0]["created"]
            for t in (obj.get("status") or {}).get("tags") or []
            if t["items"]
        ),
        default=None,
    )
    return age({"metadata": {"creationTimestamp": newest}}) if newest else ""


def _event(internal: str, event: TagEvent) -> dict[str, Any]:
    return {
        "created": format_time(event.created),
        # An imported image is where it came from; one pushed here is in this repository.
        "dockerImageReference": event.reference or f"{internal}@{event.digest}",
        "image": event.digest,
        "generation": event.generation,
    }


def _pull_spec(stream: Object, spec_tag: Object | None, head: Object) -> str:
    """Where consumers pull a tag's image from, as OpenShift resolves it: with referencePolicy
    Local, this registry by digest (it pulls the image through); else the event's reference."""
    policy = ((spec_tag or {}).get("referencePolicy") or {}).get("type")
    internal = (stream.get("status") or {}).get("dockerImageRepository")
    if policy == "Local" and internal and head.get("image"):
        return f"{internal}@{head['image']}"
    return str(head["dockerImageReference"])


def _repository(stream: Object) -> str:
    meta = stream["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def _with_status(stream: Object, history: History, addresses: Addresses) -> Object:
    """The stream with its status as served: its repository's addresses and tag history."""
    repository = _repository(stream)
    internal = f"{addresses.internal}/{repository}"
    status: dict[str, Any] = {"dockerImageRepository": internal}
    if addresses.public:
        status["publicDockerImageRepository"] = f"{addresses.public}/{repository}"
    # Import conditions are the one part of the status kept in the stored stream.
    conditions = {
        str(t.get("tag")): t.get("conditions") or []
        for t in (stream.get("status") or {}).get("tags") or []
        if isinstance(t, dict)
    }
    tags = []
    for tag in sorted(set(history) | {t for t, found in conditions.items() if found}):
        entry: dict[str, Any] = {
            "tag": tag,
            "items": [_event(internal, e) for e in history.get(tag, [])],
        }
        if conditions.get(tag):
            entry["conditions"] = conditions[tag]
        tags.append(entry)
    if tags:
        status["tags"] = tags
    return {**stream, "status": status}


def _kept_items(obj: Object) -> dict[str, list[tuple[str, str]]]:
    """tag -> [(image, created)] of an ImageStream's status as a client sent it."""
    status = obj.get("status") or {}
    tags = status.get("tags") or [] if isinstance(status, dict) else None
    if not isinstance(tags, list):
        raise bad_request("status.tags must be a list")
    kept: dict[str, list[tuple[str, str]]] = {}
    for tag in tags:
        items = tag.get("items") if isinstance(tag, dict) else None
        if not isinstance(tag, dict) or not isinstance(tag.get("tag"), str):
            raise bad_request("status.tags[].tag must be a string")
        if not isinstance(items or [], list):
            raise bad_request("status.tags[].items must be a list")
        kept.setdefault(tag["tag"], []).extend(
            (str(item.get("image", "")), str(item.get("created", "")))
            for item in items or []
            if isinstance(item, dict)
        )
    return kept


def imports_from_elsewhere(stream: Object) -> bool:
    """Whether any spec tag of the stream names an image by pull spec (maybe another
    registry's: wharf.images.spec_imports decides, knowing this registry's hosts)."""
    return any(
        isinstance(t, dict) and (t.get("from") or {}).get("kind") == "DockerImage"
        for t in (stream.get("spec") or {}).get("tags") or []
    )


def _version(obj: Object) -> str:
    return str(obj["metadata"].get("resourceVersion", ""))


def _served_key(obj: Object) -> tuple[str, str]:
    meta = obj["metadata"]
    return str(meta.get("namespace", "")), str(meta["name"])


@dataclass(frozen=True, slots=True)
class Served:
    """A stream as served at one resourceVersion: its status and its JSON, computed once.

    The status depends on the stored stream, its tag history and the addresses. The history
    changes only together with a rewrite of the stream (which moves its resourceVersion), and
    it is read after the stream, never before: so the status kept for a version is never
    older than that version."""

    key: tuple[str, str]
    version: str
    addresses: Addresses
    status: Object
    text: str

    @classmethod
    def of(cls, stream: Object, history: History, addresses: Addresses) -> Served:
        served = _with_status(stream, history, addresses)
        text = json.dumps(served, separators=(",", ":"))
        return cls(_served_key(stream), _version(stream), addresses, served["status"], text)


class ImageStreamResource(Resource):
    # Streams whose served form a process keeps (about 2 KiB each): a list of this many is
    # encoded once, not once per request.
    SERVED_KEPT = 20_000

    def __init__(
        self,
        kind: Kind,
        store: ObjectStore,
        addresses: AddressSource,
        imports: SpecTagImports | None = None,
    ) -> None:
        super().__init__(kind, store)
        self.addresses = addresses
        self.imports = imports
        self._kept: dict[tuple[str, str], Served] = {}

    def import_soon(self, call: Call, stream: Object) -> None:
        """Spec tags from other registries are imported after the write, in the background."""
        if self.imports is not None and not call.dry_run and imports_from_elsewhere(stream):
            meta = stream["metadata"]
            self.imports.soon(meta["namespace"], meta["name"])

    async def create(self, call: Call, obj: Object) -> Object:
        created = await super().create(call, obj)
        self.import_soon(call, created)
        return created

    async def present(self, call: Call, obj: Object) -> Object:
        return (await self.present_many(call, [obj]))[0]

    async def present_many(self, call: Call, objs: list[Object]) -> list[Object]:
        return (await self.present_page(call, Page(objs, 0, False))).items

    async def present_page(self, call: Call, page: Page) -> Page:
        served = await self._served(page.items)
        items = [{**obj, "status": s.status} for obj, s in zip(page.items, served, strict=True)]
        return Page(items, page.version, page.more, [s.text for s in served])

    async def _served(self, objs: list[Object]) -> list[Served]:
        """How each stream is served: remembered while its resourceVersion and the addresses
        stay, else computed (the tag histories of all that are not, in one query: a read per
        stream made a page of 500 cost 500 reads)."""
        addresses = await self.addresses()
        found = [self._kept.get(_served_key(obj)) for obj in objs]
        stale = [
            i
            for i, (obj, kept) in enumerate(zip(objs, found, strict=True))
            if kept is None or kept.version != _version(obj) or kept.addresses != addresses
        ]
        if stale:
            names = [_repository(objs[i]) for i in stale]
            histories = await self.store.db.run_read(lambda conn: tags_of_many(conn, names))
            for i, name in zip(stale, names, strict=True):
                found[i] = self._keep(Served.of(objs[i], histories.get(name, {}), addresses))
        return [s for s in found if s is not None]

    def _keep(self, served: Served) -> Served:
        kept = self._kept
        kept.pop(served.key, None)  # to the end: the oldest go first
        kept[served.key] = served
        if len(kept) > self.SERVED_KEPT:
            for key in list(itertools.islice(kept, len(kept) - self.SERVED_KEPT)):
                del kept[key]
        return served

    async def update(self, call: Call, name: str, obj: Object) -> Object:
        if call.subresource != "status":
            updated = await super().update(call, name, obj)
            self.import_soon(call, updated)
            return updated
        return await self._update_status(call, name, obj)

    async def _update_status(self, call: Call, name: str, obj: Object) -> Object:
        """`status.tags` is the tag history, which only pushes, mappings and tags add to: an
        update of the status may only leave items out (what `prune images` does)."""
        kept = _kept_items(obj)
        key = stream_key(call.namespace, name)
        async with self.transaction(call) as tx:
            stream = await tx.get(key)
            if stream is None:
                raise self._missing(name)
            wanted = (obj.get("metadata") or {}).get("resourceVersion")
            if wanted and str(wanted) != str(stream["metadata"].get("resourceVersion")):
                raise conflict(GROUP, "imagestreams", name)
            repository = f"{call.namespace}/{name}"
            try:
                removed = await tx.conn.run_sync(keep_only, repository, kept)
            except ValueError as exc:
                raise invalid(
                    "ImageStream",
                    GROUP,
                    name,
                    [("status.tags", f"Invalid value: {exc}: not in the tag's history")],
                ) from None
            if removed:
                await tx.run_sync(touch, key, stream)
        return await self.get(call, name)

    async def create_in(self, tx: Transaction, obj: Object) -> Object:
        meta = obj["metadata"]
        namespace, name = str(meta.get("namespace", "")), str(meta["name"])
        await admit_stream(tx, namespace, name, True, {}, obj.get("spec"), [])
        return await super().create_in(tx, obj)

    async def admit_update(self, tx: Transaction, old: Object, new: Object) -> None:
        meta = old["metadata"]
        await admit_stream(
            tx, meta["namespace"], meta["name"], False, old.get("spec"), new.get("spec"), []
        )

    async def delete_in(self, tx: Transaction, key: Key, version: int | None = None) -> Object:
        deleted = await super().delete_in(tx, key, version)
        # The stream's tags and images go with it: a new stream of the same name starts empty.
        await tx.conn.run_sync(forget, key.namespace, key.name)
        return deleted


# ImageStreamMapping


class ImageStreamMappingResource(Resource):
    """Create-only: record an image under a tag of an existing stream (what a push does)."""

    def __init__(self, kind: Kind, store: ObjectStore, images: Resource) -> None:
        super().__init__(kind, store)
        self.images = images

    async def create(self, call: Call, obj: Object) -> Object:
        name = (obj.get("metadata") or {}).get("name", "")
        tag = obj.get("tag") or "latest"
        image = obj.get("image")
        if not isinstance(image, dict) or not is_digest(
            (image.get("metadata") or {}).get("name", "")
        ):
            raise bad_request("image.metadata.name must be the image's digest")
        if not is_valid_tag(tag):
            raise bad_request(f"tag {tag!r} is not a valid tag")
        digest = image["metadata"]["name"]
        new_image = self.images.new_object(call, image)
        key = stream_key(call.namespace, name)
        async with self.transaction(call) as tx:
            stream = await tx.get(key)
            if stream is None:
                raise not_found(GROUP, "imagestreams", name)
            # As OpenShift's admission of a mapping: the image's size, then the stream's limits.
            try:
                await tx.conn.run_sync(admit_image, call.namespace, name, new_image)
            except Refused as exc:
                raise refused(exc) from None
            spec = stream.get("spec")
            await admit_stream(tx, call.namespace, name, False, spec, spec, [digest])
            await tx.run_sync(save_image, new_image)
            await tx.run_sync(record_tag, call.namespace, name, tag, digest, stream)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}


# ImageStreamTag


def split_tag_name(name: str) -> tuple[str, str]:
    stream, sep, tag = name.partition(":")
    if not sep or not stream or not is_valid_tag(tag):
        raise bad_request(f'"{name}" must be of the form <stream>:<tag>')
    return stream, tag


class ImageStreamTagStrategy(Strategy):
    def name_problem(self, name: str) -> str | None:
        return None if ":" in name else "must be of the form <stream>:<tag>"

    def columns(self) -> list[Column]:
        return [
            Column(
                "Image Reference",
                "string",
                lambda o: (o.get("image") or {}).get("dockerImageReference", ""),
            ),
        ]


class ImageStreamTagResource(Resource):
    """Tags seen one by one: read from the stream's history; written as spec tags that are
    resolved at once to an image this registry holds."""

    def __init__(
        self, kind: Kind, store: ObjectStore, streams: ImageStreamResource, rbac: RbacAuthorizer
    ) -> None:
        super().__init__(kind, store)
        self.streams = streams
        self.rbac = rbac

    def watched(self) -> list[str]:
        return [IMAGE_STREAMS]

    async def _image(self, digest: str) -> Object:
        found = await self.store.get(Key(IMAGES, "", digest))
        if found is None:
            return {"metadata": {"name": digest}}
        return {
            k: v for k, v in found.items() if k not in ("dockerImageManifest", "dockerImageConfig")
        }

    async def _tag_object(self, stream: Object, tag: str) -> Object | None:
        status = stream.get("status") or {}
        listed = next((t for t in status.get("tags") or [] if t["tag"] == tag), None)
        history = listed if listed and listed["items"] else None
        spec_tag = next(
            (t for t in (stream.get("spec") or {}).get("tags") or [] if t.get("name") == tag), None
        )
        if history is None and spec_tag is None:
            return None
        meta = stream["metadata"]
        result: Object = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "ImageStreamTag",
            "metadata": {
                "name": f"{meta['name']}:{tag}",
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
                "creationTimestamp": history["items"][0]["created"]
                if history
                else meta.get("creationTimestamp"),
            },
            "tag": spec_tag,
            "generation": history["items"][0]["generation"] if history else 0,
            "lookupPolicy": (stream.get("spec") or {}).get("lookupPolicy", {"local": False}),
            "conditions": (listed or {}).get("conditions") or [],
        }
        if history:
            head = history["items"][0]
            image = await self._image(head["image"])
            reference = _pull_spec(stream, spec_tag, head)
            result["image"] = {**image, "dockerImageReference": reference}
        return result

    async def _stream(self, call: Call, name: str) -> Object:
        return await self.streams.get(call, name)

    async def get(self, call: Call, name: str) -> Object:
        stream_name, tag = split_tag_name(name)
        try:
            stream = await self._stream(call, stream_name)
        except ApiError:
            raise self._missing(name) from None
        found = await self._tag_object(stream, tag)
        if found is None:
            raise self._missing(name)
        return found

    async def present(self, call: Call, obj: Object) -> Object:
        return obj

    async def list(self, call: Call) -> tuple[list[Object], int]:
        streams, version = await self.streams.list(call)
        found = []
        for stream in streams:
            tags = {t["tag"] for t in (stream.get("status") or {}).get("tags") or []}
            tags |= {t.get("name") for t in (stream.get("spec") or {}).get("tags") or []}
            for tag in sorted(t for t in tags if t):
                tag_object = await self._tag_object(stream, tag)
                if tag_object is not None:
                    found.append(tag_object)
        return found, version

    async def list_page(self, call: Call, query: ListQuery) -> Page:
        # Made per caller in memory: paged there too.
        return page_of(*await self.list(call), query)

    async def _local_pull_spec(self, name: str) -> tuple[str, str, str] | None:
        """(kind, namespace, name) of a pull spec that names a stream of this registry, by its
        internal or public host; None for any other."""
        host, _, path = name.partition("/")
        addresses = await self.streams.addresses()
        if host not in (addresses.internal, addresses.public) or path.count("/") != 1:
            return None
        namespace, stream = path.split("/")
        if "@" in stream:
            return "ImageStreamImage", namespace, stream
        return "ImageStreamTag", namespace, stream if ":" in stream else f"{stream}:latest"

    async def _resolve(self, call: Call, source: dict[str, Any]) -> str | None:
        """The digest a tag's `from` names in this registry; None for an outside image.

        A digest counts only where the named stream's history holds it: naming an image by its
        digest alone must not copy it out of a project the caller may not read."""
        kind = source.get("kind")
        name = str(source.get("name", ""))
        namespace = str(source.get("namespace") or call.namespace)
        if kind == "DockerImage":
            local = await self._local_pull_spec(name)
            if local is None:
                return None  # an outside image: recorded as the tag's source, nothing pulled
            kind, namespace, name = local
        if kind not in ("ImageStreamTag", "ImageStreamImage"):
            raise bad_request(
                "tag.from.kind must be ImageStreamTag, ImageStreamImage or DockerImage"
            )
        readable = Attributes(call.user, "get", GROUP, "imagestreams", "", namespace, "")
        if namespace != call.namespace and not await self.rbac.allowed(readable):
            raise ApiError(
                403,
                f'imagestreams.{GROUP} is forbidden: User "{call.user.name}" '
                f'cannot get resource "imagestreams" in API group "{GROUP}" in the '
                f'namespace "{namespace}"',
                "Forbidden",
            )
        source_call = Call(call.user, namespace)
        if kind == "ImageStreamImage":
            stream_name, _, digest = name.partition("@")
            if not stream_name or not is_digest(digest):
                raise bad_request(f'"{name}" must be of the form <stream>@<digest>')
            try:
                stream = await self.streams.get(source_call, stream_name)
            except ApiError:
                stream = {}
            held = {
                item.get("image")
                for history in (stream.get("status") or {}).get("tags") or []
                for item in history.get("items") or []
            }
            if digest not in held:
                raise not_found(GROUP, "imagestreamimages", name)
            return digest
        source_tag = await self.get(source_call, name)
        image = source_tag.get("image")
        if not image:
            raise bad_request(f'"{name}" has no image yet')
        return str(image["metadata"]["name"])

    async def create(self, call: Call, obj: Object) -> Object:
        return await self._write(call, str((obj.get("metadata") or {}).get("name", "")), obj, True)

    async def update(self, call: Call, name: str, obj: Object) -> Object:
        return await self._write(call, name, obj, False)

    async def _write(self, call: Call, name: str, obj: Object, creating: bool) -> Object:
        stream_name, tag = split_tag_name(name)
        reference = obj.get("tag")
        if not isinstance(reference, dict) or not isinstance(reference.get("from"), dict):
            raise bad_request("tag.from is required")
        digest = await self._resolve(call, reference["from"])
        spec_tag = {
            "name": tag,
            "annotations": reference.get("annotations"),
            "from": reference["from"],
            "reference": bool(reference.get("reference", False)),
            "referencePolicy": reference.get("referencePolicy") or {"type": "Source"},
            "importPolicy": reference.get("importPolicy") or {},
        }
        key = Key(IMAGE_STREAMS, call.namespace, stream_name)
        async with self.transaction(call) as tx:
            stream = await tx.get(key)
            old_spec = (stream or {}).get("spec") or {}
            if (
                stream is not None
                and creating
                and any(t.get("name") == tag for t in old_spec.get("tags") or [])
            ):
                raise ApiError(
                    409, f'imagestreamtags.{GROUP} "{name}" already exists', "AlreadyExists"
                )
            kept = [t for t in old_spec.get("tags") or [] if t.get("name") != tag]
            await admit_stream(
                tx,
                call.namespace,
                stream_name,
                stream is None,
                old_spec,
                {**old_spec, "tags": [*kept, spec_tag]},
                [digest] if digest is not None else [],
            )
            if stream is None:
                stream = self.streams.new_object(
                    call, {"metadata": {"name": stream_name}, "spec": {"tags": []}}
                )
                stream = await self.streams.create_in(tx, stream)
            stream = copy.deepcopy(stream)
            generation = int(stream["metadata"].get("generation", 1)) + 1
            stream["metadata"]["generation"] = generation
            spec_tag["generation"] = generation
            tags = [t for t in stream["spec"].get("tags") or [] if t.get("name") != tag]
            stream["spec"]["tags"] = [*tags, spec_tag]
            # This write already tells watchers; the history below is read when they look.
            await tx.update(key, stream)
            if digest is not None:
                repository_id = await tx.conn.run_sync(
                    ensure_repository, f"{call.namespace}/{stream_name}"
                )
                if not await tx.conn.run_sync(link_image, repository_id, digest):
                    raise bad_request(f"image {digest} is not in this registry")
                await tx.conn.run_sync(add_event, repository_id, tag, digest, generation)
        if digest is None and stream is not None:
            self.streams.import_soon(call, stream)
        if call.dry_run:
            # Nothing was stored to read back: the tag as it was asked for.
            meta = {"name": name, "namespace": call.namespace}
            return {
                "kind": self.kind.kind,
                "apiVersion": self.kind.api_version,
                "metadata": meta,
                "tag": spec_tag,
            }
        return await self.get(call, name)

    async def delete(self, call: Call, name: str, version: int | None = None) -> Object:
        stream_name, tag = split_tag_name(name)
        found = await self.get(call, name)
        key = Key(IMAGE_STREAMS, call.namespace, stream_name)
        async with self.transaction(call) as tx:
            stream = await tx.get(key)
            if stream is None:
                raise self._missing(name)
            stream["spec"]["tags"] = [
                t for t in stream["spec"].get("tags") or [] if t.get("name") != tag
            ]
            repository_id = await tx.conn.run_sync(
                ensure_repository, f"{call.namespace}/{stream_name}"
            )
            await tx.conn.run_sync(remove_tag, repository_id, tag)
            await tx.run_sync(touch, key, stream)
        return found


_TAG_REFERENCE: Shape = {
    "name": S,
    "annotations": MAP,
    "from": {"kind": S, "name": S, "namespace": S},
    "reference": B,
    "generation": INT,
    "importPolicy": {"insecure": B, "scheduled": B, "importMode": S},
    "referencePolicy": {"type": S},
}
_IMAGE_SHAPE = top(
    dockerImageReference=S,
    dockerImageMetadata=ANY,
    dockerImageMetadataVersion=S,
    dockerImageManifest=S,
    dockerImageLayers=[{"name": S, "size": INT, "mediaType": S}],
    signatures=[ANY],
    dockerImageSignatures=[S],
    dockerImageManifestMediaType=S,
    dockerImageConfig=S,
    dockerImageManifests=[ANY],
)

IMAGE = Kind(
    GROUP, "v1", "Image", "images", namespaced=False, strategy=ImageStrategy(), shape=_IMAGE_SHAPE
)
IMAGE_STREAM = Kind(
    GROUP,
    "v1",
    "ImageStream",
    "imagestreams",
    namespaced=True,
    short_names=("is",),
    categories=("all",),
    strategy=ImageStreamStrategy(),
    subresources=("status",),
    shape=top(
        spec={"lookupPolicy": {"local": B}, "dockerImageRepository": S, "tags": [_TAG_REFERENCE]},
        status=ANY,
    ),
)
IMAGE_STREAM_TAG = Kind(
    GROUP,
    "v1",
    "ImageStreamTag",
    "imagestreamtags",
    namespaced=True,
    short_names=("istag",),
    verbs=("create", "delete", "get", "list", "patch", "update"),
    strategy=ImageStreamTagStrategy(),
    shape=top(
        tag=_TAG_REFERENCE, generation=INT, lookupPolicy={"local": B}, conditions=[ANY], image=ANY
    ),
)
IMAGE_STREAM_MAPPING = Kind(
    GROUP,
    "v1",
    "ImageStreamMapping",
    "imagestreammappings",
    namespaced=True,
    verbs=("create",),
    shape=top(image=ANY, tag=S),
)
