"""image.openshift.io/v1 ImageStreamImport: import images from other registries into a stream
(create only; with `spec.import: false` a dry run that only reads upstream).

Each image gets a Status of its own in `status.images[]` (Success, or Failure with the
upstream's reason: Unauthorized, NotFound, Unreachable, TooManyRequests, Invalid, or Forbidden
by a quota or limit); a failure stores nothing of that image and leaves an ImportSuccess False
condition on the stream's tag. The project's pull secrets are the upstream credentials."""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Any

import aiohttp

from ..auth.rbac import RbacAuthorizer
from ..auth.resources import NAMESPACES
from ..auth.user import Attributes
from ..db.objects import Key, ObjectStore
from ..images.importing import (
    IMPORT_MODES,
    PRESERVE_ORIGINAL,
    Fetched,
    Fetcher,
    Refusal,
    Wanted,
    gather_bounded,
    record_failure,
    run_stored,
    secrets_of,
    spec_tag_for,
    store,
)
from ..images.streams import GROUP, stream_key
from ..oci.names import is_valid_tag
from ..upstream.client import UpstreamError
from ..upstream.reference import RemoteReference
from .errors import ApiError, invalid, not_found
from .image_kinds import ImageStreamResource, ImageStreamStrategy
from .kinds import Kind, Strategy
from .meta import Object, new_uid, now
from .resources import Call, Resource
from .shapes import ANY, B, S, Shape, top

# As OpenShift: at most this many images in one request, and tags of one repository.
MAX_IMAGES = 50
MAX_REPOSITORY_TAGS = 50
REFERENCE_POLICIES = ("Source", "Local")
_CODES = {
    "Unauthorized": 401,
    "NotFound": 404,
    "TooManyRequests": 429,
    "Unreachable": 503,
    "Invalid": 422,
}


@dataclass
class _Item:
    """One image of the request, checked."""

    wanted: Wanted
    source: str  # as the request named it
    tag: str | None  # spec.images[].to.name
    policy: dict[str, Any]
    reference_policy: dict[str, Any]


def success() -> Object:
    return {"metadata": {}, "status": "Success"}


def failure(reason: str, message: str, code: int | None = None) -> Object:
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code or _CODES.get(reason, 500),
    }


def _policy(
    value: Any, where: str, problems: list[tuple[str, str]]
) -> tuple[dict[str, Any], str, bool]:
    """importPolicy: (as given, its importMode, insecure)."""
    if value is None:
        return {}, "Legacy", False
    if not isinstance(value, dict):
        problems.append((where, "Invalid value: must be an object"))
        return {}, "Legacy", False
    mode = value.get("importMode") or "Legacy"
    if mode not in IMPORT_MODES:
        problems.append(
            (
                f"{where}.importMode",
                f'Unsupported value: "{mode}": supported values: "Legacy", "PreserveOriginal"',
            )
        )
    for flag in ("insecure", "scheduled"):
        if flag in value and not isinstance(value[flag], bool):
            problems.append((f"{where}.{flag}", "Invalid value: must be a boolean"))
    return dict(value), str(mode), bool(value.get("insecure"))


def _reference_policy(value: Any, where: str, problems: list[tuple[str, str]]) -> dict[str, Any]:
    if value is None:
        return {"type": "Source"}
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in (None, ""):
        return {"type": "Source"}
    if kind not in REFERENCE_POLICIES:
        problems.append(
            (f"{where}.type", f'Unsupported value: "{kind}": supported values: "Source", "Local"')
        )
    return {"type": kind}


def _source(value: Any, where: str, problems: list[tuple[str, str]]) -> RemoteReference | None:
    if not isinstance(value, dict):
        problems.append((where, "Required value"))
        return None
    if value.get("kind") != "DockerImage":
        problems.append(
            (
                f"{where}.kind",
                f'Unsupported value: "{value.get("kind")}": supported values: "DockerImage"',
            )
        )
        return None
    try:
        return RemoteReference.parse(str(value.get("name") or ""))
    except ValueError as exc:
        problems.append((f"{where}.name", f"Invalid value: {exc}"))
        return None


def _items(spec: Object, problems: list[tuple[str, str]]) -> list[_Item]:
    images = spec.get("images") or []
    if not isinstance(images, list):
        problems.append(("spec.images", "Invalid value: must be a list"))
        return []
    if len(images) > MAX_IMAGES:
        problems.append(("spec.images", f"Too many: {len(images)}: must have at most {MAX_IMAGES}"))
        return []
    found = []
    for index, image in enumerate(images):
        where = f"spec.images[{index}]"
        if not isinstance(image, dict):
            problems.append((where, "Invalid value: must be an object"))
            continue
        source = _source(image.get("from"), f"{where}.from", problems)
        to = image.get("to")
        tag = None
        if to is not None:
            tag = to.get("name") if isinstance(to, dict) else None
            if not isinstance(tag, str) or not is_valid_tag(tag):
                problems.append((f"{where}.to.name", "Invalid value: not a valid tag"))
        policy, mode, insecure = _policy(
            image.get("importPolicy"), f"{where}.importPolicy", problems
        )
        reference = _reference_policy(
            image.get("referencePolicy"), f"{where}.referencePolicy", problems
        )
        if source is not None:
            name = str(image["from"]["name"])
            found.append(_Item(Wanted(source, insecure, mode), name, tag, policy, reference))
    return found


class ImageStreamImportResource(Resource):
    def __init__(
        self, kind: Kind, store: ObjectStore, streams: ImageStreamResource, rbac: RbacAuthorizer
    ) -> None:
        super().__init__(kind, store)
        self.streams = streams
        self.rbac = rbac

    async def create(self, call: Call, obj: Object) -> Object:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        name = str((meta or {}).get("name") or "")
        spec = obj.get("spec")
        problems: list[tuple[str, str]] = []
        name_problem = ImageStreamStrategy().name_problem(name)
        if name_problem:
            problems.append(("metadata.name", name_problem))
        if not isinstance(spec, dict):
            raise invalid(self.kind.kind, GROUP, name, [*problems, ("spec", "Required value")])
        items = _items(spec, problems)
        repository = spec.get("repository")
        repository_source: RemoteReference | None = None
        repository_policy: tuple[dict[str, Any], str, bool] = ({}, "Legacy", False)
        repository_reference: dict[str, Any] = {"type": "Source"}
        if repository is not None:
            if not isinstance(repository, dict):
                problems.append(("spec.repository", "Invalid value: must be an object"))
            else:
                repository_source = _source(
                    repository.get("from"), "spec.repository.from", problems
                )
                repository_policy = _policy(
                    repository.get("importPolicy"), "spec.repository.importPolicy", problems
                )
                repository_reference = _reference_policy(
                    repository.get("referencePolicy"), "spec.repository.referencePolicy", problems
                )
        if not isinstance(spec.get("import", False), bool):
            problems.append(("spec.import", "Invalid value: must be a boolean"))
        if not problems and not items and repository_source is None:
            problems.append(("spec", "Required value: images or repository"))
        if problems:
            raise invalid(self.kind.kind, GROUP, name, problems)
        storing = bool(spec.get("import")) and not call.dry_run
        if await self.store.get(Key(NAMESPACES, "", call.namespace)) is None:
            raise not_found("", "namespaces", call.namespace)
        if storing:
            await self._authorize_stream(call, name)
        secrets = await secrets_of(self.store, call.namespace)
        status: Object = {}
        async with aiohttp.ClientSession() as session:
            fetcher = Fetcher(session, secrets)
            if items:
                status["images"] = await self._import_all(call, name, fetcher, items, storing)
            if repository_source is not None:
                status["repository"] = await self._import_repository(
                    call,
                    name,
                    fetcher,
                    repository_source,
                    repository_policy,
                    repository_reference,
                    storing,
                )
        if storing:
            # When every import failed, no stream was made.
            with contextlib.suppress(ApiError):
                status["import"] = await self.streams.get(call, name)
        return {
            "kind": self.kind.kind,
            "apiVersion": self.kind.api_version,
            "metadata": {
                **{k: v for k, v in (meta or {}).items() if k in ("name", "labels", "annotations")},
                "namespace": call.namespace,
                "uid": new_uid(),
                "creationTimestamp": now(),
            },
            "spec": copy.deepcopy(spec),
            "status": status,
        }

    async def _authorize_stream(self, call: Call, name: str) -> None:
        """Importing writes the stream: `update` it, or `create` one when there is none."""
        exists = await self.store.get(stream_key(call.namespace, name)) is not None
        verb = "update" if exists else "create"
        wanted = Attributes(call.user, verb, GROUP, "imagestreams", "", call.namespace, name)
        if not await self.rbac.allowed(wanted):
            raise ApiError(
                403,
                f'imagestreams.{GROUP} "{name}" is forbidden: User "{call.user.name}" cannot '
                f'{verb} resource "imagestreams" in API group "{GROUP}" in the namespace '
                f'"{call.namespace}"',
                "Forbidden",
            )

    async def _import_all(
        self, call: Call, name: str, fetcher: Fetcher, items: list[_Item], storing: bool
    ) -> list[Object]:
        """Fetched a few at a time; stored one after another, in order (each import rewrites
        the stream)."""
        fetched = await gather_bounded([_fetch(fetcher, item) for item in items])
        return [
            await self._import(call, name, item, found, storing)
            for item, found in zip(items, fetched, strict=True)
        ]

    async def _import(
        self,
        call: Call,
        name: str,
        item: _Item,
        fetched: Fetched | UpstreamError,
        storing: bool,
    ) -> Object:
        result: Object = {"tag": item.tag} if item.tag else {}
        if isinstance(fetched, UpstreamError):
            exc = fetched
            result["status"] = failure(exc.reason, exc.message)
            if storing and item.tag:
                await self._record_failure(call, name, item.tag, exc.reason, exc.message)
            return result
        if storing and item.tag:
            spec_tag = spec_tag_for(item.tag, item.source, item.policy, item.reference_policy)
            try:
                await self._store(call, name, item.tag, fetched, spec_tag)
            except Refusal as exc:
                result["status"] = failure(exc.reason, exc.message, exc.code)
                return result
        result["status"] = success()
        result["image"] = _public_image(fetched.image)
        if item.wanted.mode == PRESERVE_ORIGINAL and fetched.children:
            result["manifests"] = [_public_image(child) for child in fetched.children]
        return result

    async def _store(
        self, call: Call, name: str, tag: str, fetched: Fetched, spec_tag: Object | None
    ) -> None:
        namespace = call.namespace
        await run_stored(self.store, lambda tx: store(tx, namespace, name, tag, fetched, spec_tag))

    async def _record_failure(
        self, call: Call, name: str, tag: str, reason: str, message: str
    ) -> None:
        namespace = call.namespace
        await run_stored(
            self.store, lambda tx: record_failure(tx, namespace, name, tag, reason, message)
        )

    async def _import_repository(
        self,
        call: Call,
        name: str,
        fetcher: Fetcher,
        source: RemoteReference,
        policy: tuple[dict[str, Any], str, bool],
        reference_policy: dict[str, Any],
        storing: bool,
    ) -> Object:
        """Every tag of the repository (the first MAX_REPOSITORY_TAGS), each under its name."""
        as_given, mode, insecure = policy
        try:
            tags = await fetcher.tags(source, insecure, MAX_REPOSITORY_TAGS + 1)
        except UpstreamError as exc:
            return {"status": failure(exc.reason, exc.message)}
        kept, additional = tags[:MAX_REPOSITORY_TAGS], tags[MAX_REPOSITORY_TAGS:]
        items = []
        for tag in kept:
            if not is_valid_tag(tag):
                continue
            tagged = RemoteReference(source.registry, source.repository, tag, None)
            wanted = Wanted(tagged, insecure, mode)
            items.append(_Item(wanted, str(tagged), tag, as_given, reference_policy))
        images = await self._import_all(call, name, fetcher, items, storing)
        result: Object = {"status": success(), "images": images}
        if additional:
            result["additionalTags"] = additional
        return result


async def _fetch(fetcher: Fetcher, item: _Item) -> Fetched | UpstreamError:
    try:
        return await fetcher.fetch(item.wanted)
    except UpstreamError as exc:
        return exc


def _public_image(image: Object) -> Object:
    """An Image as an import reports it (without the raw manifest and config)."""
    return {
        k: copy.deepcopy(v)
        for k, v in image.items()
        if k not in ("dockerImageManifest", "dockerImageConfig")
    }


_IMPORT_POLICY: Shape = {"insecure": B, "scheduled": B, "importMode": S}
_FROM: Shape = {"kind": S, "name": S, "namespace": S}
IMAGE_STREAM_IMPORT = Kind(
    GROUP,
    "v1",
    "ImageStreamImport",
    "imagestreamimports",
    namespaced=True,
    verbs=("create",),
    strategy=Strategy(),
    shape=top(
        spec={
            "import": B,
            "images": [
                {
                    "from": _FROM,
                    "to": {"name": S},
                    "importPolicy": _IMPORT_POLICY,
                    "referencePolicy": {"type": S},
                    "includeManifest": B,
                }
            ],
            "repository": {
                "from": _FROM,
                "importPolicy": _IMPORT_POLICY,
                "referencePolicy": {"type": S},
                "includeManifest": B,
            },
        },
        status={"import": ANY, "images": [ANY], "repository": ANY},
    ),
)
