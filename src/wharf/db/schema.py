"""The registry's tables. Alembic migrations create them; this module only describes them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

DIGEST = String(160)  # sha512 digests are 7 + 128 characters

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)

# One row per stored digest: the bytes themselves live once in the blob store.
blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    # Online GC (wharf.registry.collect): when a push, a mount or a manifest last used the blob,
    # or a manifest naming it went; a blob no manifest references is collected only once
    # this is older than the grace delay.
    Column("touched_at", DateTime, nullable=True),
    # Set while a collector deletes the bytes (a lease: a lapsed one may be taken over).
    Column("deleting_until", DateTime, nullable=True),
)

# Which blobs a repository may serve: pushed, mounted, or referenced by its manifests.
repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
)

manifests = Table(
    "manifests",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("media_type", String(255), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("subject", DIGEST, nullable=True, index=True),
    Column("artifact_type", String(255), nullable=True),
    Column("annotations", Text, nullable=True),  # JSON object, for the referrers list
    Column("created_at", DateTime, nullable=False),
)

repository_manifests = Table(
    "repository_manifests",
    metadata,
    Column("repository_id", Integer, ForeignKey("repositories.id"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("manifests.digest"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

# Which blobs each stored manifest names (config, layers): what keeps a blob from the GC while
# any repository links the manifest.
manifest_blobs = Table(
    "manifest_blobs",
    metadata,
    Column("manifest_digest", DIGEST, primary_key=True),
    Column("blob_digest", DIGEST, primary_key=True, index=True),
)

# The one record of tags: each tag is its history of digests, newest (highest id) first.
# The image-stream API presents exactly these rows as ImageStream.status.tags.
tag_events = Table(
    "tag_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("repository_id", Integer, ForeignKey("repositories.id"), nullable=False),
    Column("tag", String(128), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("generation", BigInteger, nullable=False, default=1),
    # Where an imported image lives (its source pull spec, `host/repo@digest`), which is where
    # pull-through fetches it from; NULL for an image pushed here.
    Column("reference", Text, nullable=True),
    Index("ix_tag_events_repository_tag", "repository_id", "tag", "id"),
)

# Upload sessions live here so that one upload's requests may reach different processes: how
# many bytes it has, the storage backend's state of it (an S3 multipart upload and its parts),
# and which request holds it while writing (a lease that lapses if its process dies).
uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("repository_id", Integer, ForeignKey("repositories.id"), nullable=False),
    Column("size", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False, index=True),
    Column("state", Text, nullable=False, server_default=""),
    Column("holder", String(36), nullable=True),
    Column("held_until", DateTime, nullable=True),
)

# The control plane's objects, Kubernetes style: every write takes the next value of one global
# counter as its resourceVersion and appends an event, which feeds `watch`.
resource_version_counter = Table(
    "resource_version_counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

objects = Table(
    "objects",
    metadata,
    # plural.group, e.g. imagestreams.image.openshift.io
    Column("resource", String(128), primary_key=True),
    Column("namespace", String(253), primary_key=True),  # "" for cluster-scoped kinds
    Column("name", String(253), primary_key=True),
    Column("resource_version", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

object_events = Table(
    "object_events",
    metadata,
    Column("resource_version", BigInteger, primary_key=True, autoincrement=False),
    Column("resource", String(128), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("name", String(253), nullable=False),
    Column("type", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_object_events_resource", "resource", "resource_version"),
)
