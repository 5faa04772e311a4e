"""Quotas and limits of images, as OpenShift has them; pure rules, no I/O.

- A ResourceQuota's `openshift.io/imagestreams` (or `count/imagestreams.image.openshift.io`)
  caps how many image streams a project holds.
- A LimitRange item of type `openshift.io/Image` caps, by `max.storage`, the size of one blob
  (checked by the registry at upload commit) and of one image (its config and layers).
- A LimitRange item of type `openshift.io/ImageStream` caps, by `max`, the unique image
  references of a stream's spec tags (`openshift.io/image-tags`) and the unique images of its
  tag history (`openshift.io/images`).

The messages are Kubernetes' and OpenShift's, so that what a client prints reads the same."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .quantity import canonical_quantity, format_binary, format_decimal, parse_quantity

Object = dict[str, Any]

RESOURCE_QUOTAS = "resourcequotas"
LIMIT_RANGES = "limitranges"

QUOTA_IMAGE_STREAMS = "openshift.io/imagestreams"
COUNT_IMAGE_STREAMS = "count/imagestreams.image.openshift.io"
# The names under which a quota counts image streams.
IMAGE_STREAM_COUNTS = (QUOTA_IMAGE_STREAMS, COUNT_IMAGE_STREAMS)

LIMIT_TYPE_IMAGE = "openshift.io/Image"
LIMIT_TYPE_IMAGE_STREAM = "openshift.io/ImageStream"
STORAGE = "storage"
IMAGE_TAGS = "openshift.io/image-tags"
STREAM_IMAGES = "openshift.io/images"


@dataclass(frozen=True, slots=True)
class Limit:
    """A maximum: its value, and its quantity as Kubernetes shows it."""

    value: int
    shown: str


def _quantity(text: Any) -> Limit | None:
    try:
        return Limit(parse_quantity(str(text)), canonical_quantity(str(text)))
    except ValueError:
        return None  # refused when written; nothing to enforce if one slipped through


def _items(limit_ranges: Iterable[Object], limit_type: str) -> Iterable[Mapping[str, Any]]:
    for limit_range in limit_ranges:
        for item in (limit_range.get("spec") or {}).get("limits") or []:
            if isinstance(item, dict) and item.get("type") == limit_type:
                yield item.get("max") or {}


def _smallest(limit_ranges: Iterable[Object], limit_type: str, resource: str) -> Limit | None:
    found: Limit | None = None
    for maximum in _items(limit_ranges, limit_type):
        if resource in maximum:
            limit = _quantity(maximum[resource])
            if limit is not None and (found is None or limit.value < found.value):
                found = limit
    return found


def limit_exceeded(limit_type: str, resource: str, requested: str, limit: Limit) -> str:
    return (
        f"requested usage of {resource} exceeds the maximum limit per {limit_type} "
        f"({requested} > {limit.shown})"
    )


def image_size_limit(limit_ranges: Iterable[Object]) -> Limit | None:
    """The smallest `max.storage` of the `openshift.io/Image` limits, if any."""
    return _smallest(limit_ranges, LIMIT_TYPE_IMAGE, STORAGE)


def image_size_problem(size: int, limit: Limit | None) -> str | None:
    """Why a blob or image of `size` bytes is refused; None when it is within the limit."""
    if limit is None or size <= limit.value:
        return None
    return limit_exceeded(LIMIT_TYPE_IMAGE, STORAGE, format_binary(size), limit)


def image_size(image: Object) -> int:
    """An Image's size as OpenShift counts it: its metadata's Size (config and layers), else
    the sum of its layers."""
    size = (image.get("dockerImageMetadata") or {}).get("Size")
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    layers = image.get("dockerImageLayers") or []
    return sum(int(layer.get("size") or 0) for layer in layers if isinstance(layer, dict))


def stream_limits(limit_ranges: Iterable[Object]) -> dict[str, Limit]:
    """The smallest `max` of each resource the `openshift.io/ImageStream` limits cap."""
    limits: dict[str, Limit] = {}
    for resource in (IMAGE_TAGS, STREAM_IMAGES):
        found = _smallest(limit_ranges, LIMIT_TYPE_IMAGE_STREAM, resource)
        if found is not None:
            limits[resource] = found
    return limits


@dataclass(frozen=True, slots=True)
class StreamUsage:
    """What of a stream its limits count: the unique image references of its spec tags, and
    the unique images of its tag history."""

    spec_references: frozenset[str]
    images: frozenset[str]

    def counts(self) -> dict[str, int]:
        return {IMAGE_TAGS: len(self.spec_references), STREAM_IMAGES: len(self.images)}


def spec_reference(namespace: str, source: Any) -> str | None:
    """The one name OpenShift gives what a spec tag's `from` points at, so that two tags of the
    same image count once: `<namespace>/<stream>:<tag>`, `<namespace>/<stream>@<digest>`, or
    the pull spec of an outside image."""
    if not isinstance(source, dict) or not isinstance(source.get("name"), str):
        return None
    kind, name = source.get("kind"), source["name"]
    other = source.get("namespace") or namespace
    if kind == "ImageStreamTag":
        stream, sep, tag = name.partition(":")
        return f"{other}/{stream}:{tag}" if sep and stream and tag else None
    if kind == "ImageStreamImage":
        stream, sep, digest = name.partition("@")
        return f"{other}/{stream}@{digest}" if sep and stream and digest else None
    if kind == "DockerImage":
        return name or None
    return None


def stream_usage(namespace: str, spec: Any, images: Iterable[str]) -> StreamUsage:
    tags = spec.get("tags") if isinstance(spec, dict) else None
    references = {
        reference
        for tag in tags or []
        if isinstance(tag, dict) and (reference := spec_reference(namespace, tag.get("from")))
    }
    return StreamUsage(frozenset(references), frozenset(image for image in images if image))


def stream_limit_problem(
    old: StreamUsage, new: StreamUsage, limits: Mapping[str, Limit]
) -> str | None:
    """Why the stream may not change from `old` to `new`; None when it may. As OpenShift, a
    change that adds no reference and no image passes even where a stream is over a limit
    already (limits set after the fact); one that adds either must fit every limit."""
    if not limits:
        return None
    if new.spec_references <= old.spec_references and new.images <= old.images:
        return None
    usage = new.counts()
    problems = [
        limit_exceeded(LIMIT_TYPE_IMAGE_STREAM, resource, format_decimal(usage[resource]), limit)
        for resource, limit in sorted(limits.items())
        if usage[resource] > limit.value
    ]
    return _aggregate(problems)


def _aggregate(problems: list[str]) -> str | None:
    """Several errors as Kubernetes' aggregate shows them: one alone, or `[a, b]`."""
    if not problems:
        return None
    return problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"


def quota_problem(quotas: Iterable[Object], used: int) -> str | None:
    """Why one more image stream exceeds a quota of the project that holds `used` of them;
    None when every quota allows it. The first quota (by name) that is exceeded is named."""
    for quota in sorted(quotas, key=lambda q: str((q.get("metadata") or {}).get("name", ""))):
        hard = (quota.get("spec") or {}).get("hard") or {}
        exceeded = []
        for resource in IMAGE_STREAM_COUNTS:
            limit = _quantity(hard[resource]) if resource in hard else None
            if limit is not None and used + 1 > limit.value:
                exceeded.append((resource, limit))
        if exceeded:
            # Each list as Kubernetes prints a ResourceList: name=quantity, sorted, by commas.
            exceeded.sort(key=lambda pair: pair[0])
            name = (quota.get("metadata") or {}).get("name", "")
            requested = ",".join(f"{r}=1" for r, _ in exceeded)
            in_use = ",".join(f"{r}={format_decimal(used)}" for r, _ in exceeded)
            limited = ",".join(f"{r}={limit.shown}" for r, limit in exceeded)
            return (
                f"exceeded quota: {name}, requested: {requested}, used: {in_use}, "
                f"limited: {limited}"
            )
    return None
