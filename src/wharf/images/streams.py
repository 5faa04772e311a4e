"""Image streams and images as stored objects, and recording an image under a tag: shared by
the registry (pushes) and the API (mappings, tags)."""

from __future__ import annotations

import contextlib
from typing import Any

from ..db.objects import AlreadyExists, Key, SyncTransaction
from ..kube import new_uid, now
from .history import add_event, ensure_repository
from .links import link_image

GROUP = "image.openshift.io"
IMAGES = f"images.{GROUP}"
IMAGE_STREAMS = f"imagestreams.{GROUP}"
NAMESPACES = "namespaces"
MANAGED = "openshift.io/image.managed"

Object = dict[str, Any]


def stream_key(namespace: str, name: str) -> Key:
    return Key(IMAGE_STREAMS, namespace, name)


def new_stream(namespace: str, name: str) -> Object:
    """An empty image stream, as a push that finds none creates it."""
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ImageStream",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": new_uid(),
            "creationTimestamp": now(),
            "generation": 1,
        },
        "spec": {"lookupPolicy": {"local": False}},
    }


def touch(tx: SyncTransaction, key: Key, stream: Object) -> None:
    """Rewrite the stream so that its resourceVersion moves and watchers hear of the change."""
    tx.update(key, stream)


def save_image(tx: SyncTransaction, image: Object, managed: bool = True) -> None:
    """Store an Image; one that exists already (same digest) is kept as it is. `managed`:
    pushed here (an imported image is not, and the pruner leaves it alone by default)."""
    annotations = image.setdefault("metadata", {}).setdefault("annotations", {})
    if managed:
        annotations.setdefault(MANAGED, "true")
    image["metadata"].setdefault("uid", new_uid())
    image["metadata"].setdefault("creationTimestamp", now())
    with contextlib.suppress(AlreadyExists):
        tx.create(Key(IMAGES, "", image["metadata"]["name"]), image)


def record_tag(
    tx: SyncTransaction,
    namespace: str,
    name: str,
    tag: str,
    digest: str,
    stream: Object,
    linked: bool = False,
) -> None:
    """Add `digest` at the head of the stream's `tag`, make it pullable there (unless the
    caller just stored it in that repository: `linked`), tell watchers."""
    repository_id = ensure_repository(tx.conn, f"{namespace}/{name}")
    if not linked:
        link_image(tx.conn, repository_id, digest)
    generation = int(stream["metadata"].get("generation", 1))
    if add_event(tx.conn, repository_id, tag, digest, generation):
        touch(tx, stream_key(namespace, name), stream)
