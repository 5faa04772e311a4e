"""What every /v2/ handler needs, and the small request helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from ..oci.digest import Digest, InvalidDigest
from ..oci.names import MAX_NAME_LENGTH
from ..storage.base import BlobStore
from .access import Action, Authorizer
from .blob_limits import BlobLimits, NoLimits
from .damage import DamageLog
from .errors import RegistryError
from .metadata import RegistryMetadata
from .publish import Publisher
from .pullthrough import PullThrough
from .uploads import Uploads


@dataclass(frozen=True, slots=True)
class Registry:
    metadata: RegistryMetadata
    store: BlobStore
    uploads: Uploads
    authorizer: Authorizer
    publisher: Publisher
    damage: DamageLog = field(default_factory=DamageLog)
    # The largest blob each repository takes (its project's limits; none without a cluster).
    limits: BlobLimits = field(default_factory=NoLimits)
    # Fetches what imported images name from their upstream registries (None: never).
    pullthrough: PullThrough | None = None


REGISTRY = web.AppKey("registry", Registry)


def registry_of(request: web.Request) -> Registry:
    return request.app[REGISTRY]


def parse_digest(text: str | None) -> Digest:
    if not text:
        raise RegistryError("DIGEST_INVALID", "a digest is required")
    try:
        return Digest.parse(text)
    except InvalidDigest as exc:
        raise RegistryError("DIGEST_INVALID", str(exc)) from None


async def authorized_repository(request: web.Request, *actions: Action) -> str:
    name = request.match_info["name"]
    if len(name) > MAX_NAME_LENGTH:  # the routes check the grammar, not the length
        raise RegistryError("NAME_INVALID", detail={"name": name[:300]})
    await registry_of(request).authorizer.authorize(request, name, actions)
    return name


async def existing_repository_id(request: web.Request, name: str, code: str) -> int:
    """The id of repository `name`; a missing repository answers `code` (404)."""
    repository_id = await registry_of(request).metadata.repository_id(name)
    if repository_id is None:
        raise RegistryError(code, detail={"name": name})
    return repository_id


async def intact_blob_size(registry: Registry, repository_id: int, digest: str) -> int | None:
    """The recorded size of a blob linked to the repository, if the store holds exactly that
    many bytes of it; None otherwise. Every read of a blob resolves it here, so a file cut
    short, emptied or deleted on disk is never served as the blob, and a client that finds it
    missing pushes it again, which replaces the file. A backend whose stat is a round trip (S3)
    is trusted with the recorded size."""
    size = await registry.metadata.linked_blob_size(repository_id, digest)
    if size is None or not registry.store.checks_sizes:
        return size
    found = await registry.store.stat(digest)
    return size if registry.damage.intact(digest, size, found) else None


# Pages are capped: a bigger n gets this many results and a Link to the rest, as the spec
# allows, and never reaches the database as a number it cannot hold.
MAX_PAGE_SIZE = 10_000


def page_size(request: web.Request) -> int | None:
    text = request.query.get("n")
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit():
        raise RegistryError("UNSUPPORTED", "n must be a non-negative integer", status=400)
    digits = text.lstrip("0") or "0"
    # Compared as text first: int() refuses strings of thousands of digits.
    if len(digits) > len(str(MAX_PAGE_SIZE)):
        return MAX_PAGE_SIZE
    return min(int(digits), MAX_PAGE_SIZE)
