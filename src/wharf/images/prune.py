"""What `prune images` removes, decided from the Images and ImageStreams alone (no I/O): the
same plan whether the `wharf adm prune images` command carries it out over HTTP or the
operator's ImagePruner does in the server.

As `oc adm prune images` decides it:
- in each tag's history, the current image (item 0) always stays, and so do the next
  `keep_tag_revisions - 1` items and every item whose image is younger than
  `keep_younger_than`; the other items are removed. With `prune_over_size_limit`, instead, the
  items (but item 0) whose image is larger than its project's LimitRange `openshift.io/Image`
  `max.storage` are removed, and only those images are candidates;
- an Image that no remaining history item names (nor a kept index, as one of its manifests),
  older than `keep_younger_than`, is deleted (images not managed by the registry only with
  `all_images`);
- in every repository whose history named a deleted image: its manifest link, and the links of
  its blobs that no image kept in that repository uses;
- last, the blobs of deleted images that no image kept anywhere uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..kube import parse_time
from ..oci.digest import is_digest

Object = dict[str, Any]
MANAGED = "openshift.io/image.managed"


@dataclass(frozen=True)
class Options:
    keep_tag_revisions: int = 3
    keep_younger_than: timedelta = timedelta(minutes=60)
    prune_over_size_limit: bool = False
    all_images: bool = True
    ignore_invalid_refs: bool = False


@dataclass(frozen=True)
class HistoryItem:
    """One removed item of a tag's history."""

    repository: str  # <namespace>/<stream>
    tag: str
    image: str
    created: str


@dataclass
class Plan:
    history: list[HistoryItem] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    layer_links: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)
    manifest_links: list[tuple[str, str]] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.history or self.images or self.layer_links or self.manifest_links or self.blobs
        )

    def kept_status(self, stream: Object) -> Object:
        """The stream's `status` without the removed items: the update the pruner sends."""
        repository = _repository(stream)
        gone = [(h.tag, h.image, h.created) for h in self.history if h.repository == repository]
        tags = []
        for tag in (stream.get("status") or {}).get("tags") or []:
            items = []
            for item in tag.get("items") or []:
                key = (tag.get("tag"), item.get("image"), item.get("created"))
                if key in gone:
                    gone.remove(key)
                else:
                    items.append(item)
            tags.append({**tag, "items": items})
        return {**(stream.get("status") or {}), "tags": tags}


class InvalidReferences(Exception):
    """Image streams name images by something that is not a digest."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _repository(stream: Object) -> str:
    meta = stream.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _created(obj: Object) -> datetime | None:
    text = (obj.get("metadata") or {}).get("creationTimestamp")
    try:
        return parse_time(text) if isinstance(text, str) else None
    except ValueError:
        return None


def image_blobs(image: Object) -> set[str]:
    """The blobs an image is made of: its layers and its config."""
    found = {
        str(layer.get("name"))
        for layer in image.get("dockerImageLayers") or []
        if is_digest(str(layer.get("name")))
    }
    config = (image.get("dockerImageMetadata") or {}).get("Id")
    if isinstance(config, str) and is_digest(config) and config != image["metadata"]["name"]:
        found.add(config)
    return found


def _children(image: Object) -> set[str]:
    return {
        str(m.get("digest"))
        for m in image.get("dockerImageManifests") or []
        if is_digest(str(m.get("digest")))
    }


def _size(image: Object) -> int:
    size = (image.get("dockerImageMetadata") or {}).get("Size")
    return size if isinstance(size, int) else 0


def plan(
    images: list[Object],
    streams: list[Object],
    options: Options,
    now: datetime,
    size_limits: dict[str, int] | None = None,
) -> Plan:
    """What to remove. `size_limits`: each project's smallest `openshift.io/Image` max
    storage, in bytes (only `prune_over_size_limit` reads it)."""
    by_name = {img["metadata"]["name"]: img for img in images}
    limits = size_limits or {}
    young_since = now - options.keep_younger_than

    def young(digest: str, fallback: str | None) -> bool:
        image = by_name.get(digest)
        created = _created(image) if image else None
        if created is None and fallback:
            try:
                created = parse_time(fallback)
            except ValueError:
                created = None
        return created is not None and created > young_since

    def too_large(namespace: str, digest: str) -> bool:
        image = by_name.get(digest)
        limit = limits.get(namespace)
        return image is not None and limit is not None and _size(image) > limit

    result = Plan()
    problems: list[str] = []
    kept_in: dict[str, set[str]] = {}  # repository -> images its history keeps
    named_in: dict[str, set[str]] = {}  # repository -> images its history named
    for stream in sorted(streams, key=_repository):
        repository = _repository(stream)
        namespace = repository.split("/", 1)[0]
        kept = kept_in.setdefault(repository, set())
        named = named_in.setdefault(repository, set())
        for tag in (stream.get("status") or {}).get("tags") or []:
            for index, item in enumerate(tag.get("items") or []):
                digest = str(item.get("image", ""))
                if not is_digest(digest):
                    problems.append(
                        f"imagestream {repository}: tag {tag.get('tag')}: invalid image "
                        f"reference {digest!r}"
                    )
                    continue
                named.add(digest)
                if options.prune_over_size_limit:
                    remove = index > 0 and too_large(namespace, digest)
                else:
                    remove = (
                        index > 0
                        and index >= options.keep_tag_revisions
                        and not young(digest, item.get("created"))
                    )
                if remove:
                    result.history.append(
                        HistoryItem(repository, str(tag.get("tag")), digest, str(item["created"]))
                    )
                else:
                    kept.add(digest)
    if problems and not options.ignore_invalid_refs:
        raise InvalidReferences(problems)

    in_use = set().union(*kept_in.values()) if kept_in else set()
    # An index kept keeps the manifests it names.
    for digest in list(in_use):
        if digest in by_name:
            in_use |= _children(by_name[digest])
    doomed = []
    for name, image in sorted(by_name.items()):
        if name in in_use:
            continue
        managed = (image["metadata"].get("annotations") or {}).get(MANAGED) == "true"
        if not managed and not options.all_images:
            continue
        if options.prune_over_size_limit:
            namespaces = {r.split("/", 1)[0] for r, n in named_in.items() if name in n}
            if not any(too_large(ns, name) for ns in namespaces):
                continue
        elif young(name, None):
            continue
        doomed.append(name)
    result.images = doomed

    gone = set(doomed)
    for repository in sorted(named_in):
        removed = named_in[repository] & gone
        if not removed:
            continue
        still = set().union(*(image_blobs(by_name[d]) for d in kept_in[repository] if d in by_name))
        layers: set[str] = set()
        for digest in removed:
            if digest in by_name:
                layers |= image_blobs(by_name[digest])
        result.layer_links += [(repository, d) for d in sorted(layers - still)]
        result.manifest_links += [(repository, d) for d in sorted(removed)]

    kept_blobs = set().union(
        *(image_blobs(img) for name, img in by_name.items() if name not in gone)
    )
    pruned_blobs = set().union(*(image_blobs(by_name[d]) for d in doomed))
    result.blobs = sorted(pruned_blobs - kept_blobs)
    return result


def summary(plan: Plan, dry_run: bool = False) -> str:
    """One line, as `oc adm prune images` ends."""
    parts = [
        (len(plan.history), "image stream tag history item", "image stream tag history items"),
        (len(plan.images), "image", "images"),
        (len(plan.layer_links), "layer link", "layer links"),
        (len(plan.manifest_links), "manifest link", "manifest links"),
        (len(plan.blobs), "blob", "blobs"),
    ]
    verb = "would delete " if dry_run else "deleted "
    return verb + ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in parts)
