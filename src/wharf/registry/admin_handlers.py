"""OpenShift's registry administration endpoint: `DELETE /admin/blobs/<digest>`, which the
image pruner calls last, once no image it keeps names the blob. Allowed to whoever may delete
`images.image.openshift.io` at the cluster scope (system:image-pruner), as in OpenShift."""

from __future__ import annotations

from aiohttp import web

from .collect import Collector
from .context import parse_digest, registry_of
from .errors import RegistryError


async def delete_blob(request: web.Request) -> web.Response:
    registry = registry_of(request)
    await registry.authorizer.authorize_prune(request)
    digest = str(parse_digest(request.match_info["digest"]))
    collector = Collector(registry.metadata.db, registry.store)
    # Unlike OpenShift's, this deletion never takes a blob that a manifest some repository
    # holds still names (a layer shared with an image that is kept): the pruner's plan may be
    # older than a push that reused the layer.
    if await collector.delete_blob(digest) is not None:
        return web.Response(status=204)
    if await collector.blob_state(digest) == "referenced":
        raise RegistryError(
            "DENIED",
            f"blob {digest} is still named by a manifest that a repository holds",
            detail={"digest": digest},
        )
    raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})


async def unmatched(request: web.Request) -> web.Response:
    """Any other /admin/ request: blobs are only deleted there."""
    if request.match_info["tail"].startswith("blobs/"):
        raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on /admin/blobs")
    raise RegistryError("NAME_UNKNOWN", "no such endpoint", detail={"path": request.path[:300]})
