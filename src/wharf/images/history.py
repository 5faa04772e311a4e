"""Tag history: the one record of where tags point.

Every tag of a repository `<namespace>/<stream>` is the list of its tag events, newest first;
the registry resolves pulls from the newest, and the API presents the whole list as
`ImageStream.status.tags`. Both read and write these rows, never a copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, bindparam, delete, insert, select, update

from ..db.prepared import Prepared
from ..db.schema import (
    blobs,
    manifest_blobs,
    repositories,
    repository_blobs,
    repository_manifests,
    tag_events,
)
from ..db.statements import insert_ignore

_REPOSITORY_ID = Prepared(select(repositories.c.id).where(repositories.c.name == bindparam("name")))
_HEAD = Prepared(
    select(tag_events.c.id, tag_events.c.digest, tag_events.c.reference)
    .where(
        tag_events.c.repository_id == bindparam("repository_id"),
        tag_events.c.tag == bindparam("tag"),
    )
    .order_by(tag_events.c.id.desc())
    .limit(1)
)
_ADD_EVENT = Prepared(
    insert(tag_events),
    ["repository_id", "tag", "digest", "created_at", "generation", "reference"],
)


@dataclass(frozen=True, slots=True)
class TagEvent:
    digest: str
    created: datetime  # UTC
    generation: int
    # The source pull spec of an imported image (`host/repo@digest`); None when pushed here.
    reference: str | None = None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def repository_id(conn: Connection, name: str) -> int | None:
    found: int | None = _REPOSITORY_ID.scalar(conn, name=name)
    return found


def ensure_repository(conn: Connection, name: str) -> int:
    """The repository's id, made in `conn`'s transaction if there is none yet."""
    found = repository_id(conn, name)
    if found is not None:
        return found
    conn.execute(
        insert_ignore(
            conn.dialect, repositories, name=name, created_at=datetime.now(UTC).replace(tzinfo=None)
        )
    )
    found = repository_id(conn, name)
    assert found is not None
    return found


History = dict[str, list[TagEvent]]


def tags_of(conn: Connection, repository: str) -> History:
    """Every tag of `repository` with its events, newest first; tags sorted by name."""
    return tags_of_many(conn, [repository]).get(repository, {})


def tags_of_many(conn: Connection, names: list[str]) -> dict[str, History]:
    """The history of each of the repositories `names` (those with any), in one query."""
    rows = conn.execute(
        select(
            repositories.c.name,
            tag_events.c.tag,
            tag_events.c.digest,
            tag_events.c.created_at,
            tag_events.c.generation,
            tag_events.c.reference,
        )
        .join(repositories, repositories.c.id == tag_events.c.repository_id)
        .where(repositories.c.name.in_(names))
        .order_by(repositories.c.name, tag_events.c.tag, tag_events.c.id.desc())
    )
    found: dict[str, History] = {}
    for row in rows:
        history = found.setdefault(row.name, {})
        history.setdefault(row.tag, []).append(
            TagEvent(row.digest, _utc(row.created_at), int(row.generation), row.reference)
        )
    return found


def add_event(
    conn: Connection,
    repository_id: int,
    tag: str,
    digest: str,
    generation: int,
    reference: str | None = None,
) -> bool:
    """Put `digest` at the head of `tag` (imported from `reference`, or pushed here when None);
    False when it already is the head (nothing to do). The same image from another source
    only changes the head's reference, as OpenShift's merge of tag events does."""
    current = _HEAD.first(conn, repository_id=repository_id, tag=tag)  # (id, digest, reference)
    if current is not None and current[1] == digest:
        if reference is None or current[2] == reference:
            return False
        conn.execute(
            update(tag_events).where(tag_events.c.id == current[0]).values(reference=reference)
        )
        return True
    _ADD_EVENT.run(
        conn,
        repository_id=repository_id,
        tag=tag,
        digest=digest,
        created_at=datetime.now(UTC).replace(tzinfo=None),
        generation=generation,
        reference=reference,
    )
    return True


def head(conn: Connection, repository_id: int, tag: str) -> str | None:
    """The digest `tag` points at now."""
    current = _HEAD.first(conn, repository_id=repository_id, tag=tag)
    return None if current is None else str(current[1])


def remove_tag(conn: Connection, repository_id: int, tag: str) -> bool:
    result = conn.execute(
        delete(tag_events).where(
            tag_events.c.repository_id == repository_id, tag_events.c.tag == tag
        )
    )
    return bool(result.rowcount)


def forget(conn: Connection, namespace: str, name: str | None = None) -> None:
    """Drop what the registry holds for the deleted stream `namespace/name` (or, without a name,
    for every stream of the deleted namespace): its tag history and the manifests and blobs
    linked to its repository, so that a stream or project made again under the same name
    starts empty. The repository rows stay (their ids are remembered for good), and so does
    the content, which other repositories may share."""
    matching: ColumnElement[bool]
    if name is None:
        escaped = namespace.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matching = repositories.c.name.like(f"{escaped}/%", escape="\\")
    else:
        matching = repositories.c.name == f"{namespace}/{name}"
    ids = select(repositories.c.id).where(matching)
    # The blobs its manifests named get the online GC's grace delay from now.
    named = select(manifest_blobs.c.blob_digest).where(
        manifest_blobs.c.manifest_digest.in_(
            select(repository_manifests.c.digest).where(
                repository_manifests.c.repository_id.in_(ids)
            )
        )
    )
    conn.execute(
        update(blobs)
        .where(blobs.c.digest.in_(named), blobs.c.deleting_until.is_(None))
        .values(touched_at=datetime.now(UTC).replace(tzinfo=None))
    )
    for table in (tag_events, repository_manifests, repository_blobs):
        conn.execute(delete(table).where(table.c.repository_id.in_(ids)))


def keep_only(conn: Connection, repository: str, kept: dict[str, list[tuple[str, str]]]) -> int:
    """Remove the tag events of `repository` that `kept` does not list (tag -> its items as
    (digest, created in RFC 3339), any order; a tag left out loses its whole history): what an
    update of `ImageStream.status` does, as the image pruner sends it. Returns how many went;
    raises ValueError naming an item that is not in the history (items are only ever added by
    pushes, mappings and tags)."""
    from ..kube import format_time

    found = repository_id(conn, repository)
    if found is None:
        rows = []
    else:
        rows = list(
            conn.execute(
                select(
                    tag_events.c.id, tag_events.c.tag, tag_events.c.digest, tag_events.c.created_at
                )
                .where(tag_events.c.repository_id == found)
                .order_by(tag_events.c.id.desc())
            )
        )
    wanted = {tag: list(items) for tag, items in kept.items()}
    doomed = []
    for row in rows:
        item = (row.digest, format_time(_utc(row.created_at)))
        items = wanted.get(row.tag)
        if items is not None and item in items:
            items.remove(item)
        else:
            doomed.append(row.id)
    for tag, items in wanted.items():
        if items:
            raise ValueError(f"{tag}: {items[0][0]} created {items[0][1]}")
    for start in range(0, len(doomed), 500):
        conn.execute(delete(tag_events).where(tag_events.c.id.in_(doomed[start : start + 500])))
    return len(doomed)
