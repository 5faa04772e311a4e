"""The project's quotas and limits checked inside the transaction that would break them, by
the API and the registry alike (wharf.images.limits has the rules).

The checks read the project's ResourceQuotas and LimitRanges with a row lock (FOR UPDATE on
PostgreSQL; SQLite has one writer anyway), so two writers in a project with quotas or limits
take turns: the second counts what the first committed, and never both squeeze in under one
limit. A project without any pays one indexed read. Call them before the transaction writes
any object: the resourceVersion counter's row lock is taken at the first object write, and
taking the quota's lock after it could deadlock with a writer that holds them the other way."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import Connection, func, select

from ..db.schema import objects
from .history import tags_of
from .limits import (
    LIMIT_RANGES,
    RESOURCE_QUOTAS,
    Limit,
    Object,
    image_size,
    image_size_limit,
    image_size_problem,
    quota_problem,
    stream_limit_problem,
    stream_limits,
    stream_usage,
)
from .streams import GROUP, IMAGE_STREAMS


class Refused(Exception):
    """A write refused by a quota or a limit: 403 Forbidden on the API, DENIED in the
    registry. `message` is the whole of Kubernetes' message (`<resource> "<name>" is
    forbidden: <reason>`)."""

    def __init__(self, resource: str, name: str, reason: str) -> None:
        self.resource = resource
        self.name = name
        self.reason = reason
        self.message = f'{resource}.{GROUP} "{name}" is forbidden: {reason}'
        super().__init__(self.message)


def namespace_objects(
    conn: Connection, resource: str, namespace: str, *, lock: bool = False
) -> list[Object]:
    """The stored objects of `resource` in `namespace`; with `lock`, their rows locked until
    the transaction ends."""
    query = select(objects.c.body).where(
        objects.c.resource == resource, objects.c.namespace == namespace
    )
    if lock:
        query = query.with_for_update()
    return [json.loads(text) for text in conn.scalars(query.order_by(objects.c.name))]


def count_of(conn: Connection, resource: str, namespace: str) -> int:
    query = select(func.count()).where(
        objects.c.resource == resource, objects.c.namespace == namespace
    )
    return int(conn.scalar(query) or 0)


def admit_new_stream(conn: Connection, namespace: str, name: str) -> None:
    """Refuse an image stream beyond the project's quota; call before creating it."""
    quotas = namespace_objects(conn, RESOURCE_QUOTAS, namespace, lock=True)
    if not quotas:
        return
    problem = quota_problem(quotas, count_of(conn, IMAGE_STREAMS, namespace))
    if problem is not None:
        raise Refused("imagestreams", name, problem)


def history_images(conn: Connection, namespace: str, name: str) -> set[str]:
    """The images of a stream's tag history."""
    history = tags_of(conn, f"{namespace}/{name}")
    return {event.digest for events in history.values() for event in events}


def admit_stream_change(
    conn: Connection,
    namespace: str,
    name: str,
    old_spec: object,
    new_spec: object,
    added_images: Iterable[str] = (),
    limit_ranges: list[Object] | None = None,
) -> None:
    """Refuse a change of the stream's spec tags, or images added to its tag history, that the
    project's `openshift.io/ImageStream` limits do not allow. `limit_ranges`: the project's,
    if the caller read (and locked) them already."""
    if limit_ranges is None:
        limit_ranges = namespace_objects(conn, LIMIT_RANGES, namespace, lock=True)
    limits = stream_limits(limit_ranges)
    if not limits:
        return
    held = history_images(conn, namespace, name)
    old = stream_usage(namespace, old_spec, held)
    new = stream_usage(namespace, new_spec, held | set(added_images))
    problem = stream_limit_problem(old, new, limits)
    if problem is not None:
        # OpenShift names the kind here, not the resource: `ImageStream.image.openshift.io`.
        raise Refused("ImageStream", name, problem)


def admit_image(
    conn: Connection,
    namespace: str,
    stream: str,
    image: Object,
    limit_ranges: list[Object] | None = None,
) -> None:
    """Refuse an image larger than the project's `openshift.io/Image` limit, as the admission
    of an ImageStreamMapping does."""
    if limit_ranges is None:
        limit_ranges = namespace_objects(conn, LIMIT_RANGES, namespace)
    problem = image_size_problem(image_size(image), image_size_limit(limit_ranges))
    if problem is not None:
        raise Refused("imagestreammappings", stream, problem)


def admit_push(
    conn: Connection,
    namespace: str,
    stream: str,
    image: Object,
    tag: str | None,
    found: Object | None,
) -> None:
    """What the registry checks of a push before it writes: the image's size and, with a tag,
    the quota on image streams (when the push makes the stream: `found` is None) and the
    stream's limits on its images. Quotas are locked before limits, as everywhere."""
    if tag is not None and found is None:
        admit_new_stream(conn, namespace, stream)
    ranges = namespace_objects(conn, LIMIT_RANGES, namespace, lock=tag is not None)
    admit_image(conn, namespace, stream, image, ranges)
    if tag is not None:
        spec = (found or {}).get("spec")
        digest = str(image["metadata"]["name"])  # an Image is named by its manifest's digest
        admit_stream_change(conn, namespace, stream, spec, spec, [digest], ranges)


def image_limit_of(conn: Connection, namespace: str) -> Limit | None:
    """The project's largest allowed blob or image; None: no limit."""
    return image_size_limit(namespace_objects(conn, LIMIT_RANGES, namespace))
