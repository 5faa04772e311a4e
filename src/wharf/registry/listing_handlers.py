"""Listings: tags of a repository, the catalog, and the referrers of a manifest."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ..oci import mediatypes
from .access import Action
from .context import (
    authorized_repository,
    existing_repository_id,
    page_size,
    parse_digest,
    registry_of,
)
from .errors import RegistryError


def _paged(
    path: str, items: list[str], limit: int | None, key: str, extra: dict[str, Any]
) -> web.Response:
    """A page of `items` (fetched with one extra to know whether more follow) and its Link.

    n=0 asks for an empty page, which has no next page: a Link would lead back to itself.
    """
    headers = {}
    if limit is not None and len(items) > limit:
        items = items[:limit]
        if items:
            query = urlencode({"n": limit, "last": items[-1]})
            headers["Link"] = f'<{path}?{query}>; rel="next"'
    return web.json_response({**extra, key: items}, headers=headers)


async def list_tags(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PULL)
    limit = page_size(request)
    repository_id = await existing_repository_id(request, name, "NAME_UNKNOWN")
    last = request.query.get("last")
    fetch = None if limit is None else limit + 1
    tags = await registry_of(request).metadata.tags(repository_id, fetch, last)
    return _paged(f"/v2/{name}/tags/list", tags, limit, "tags", {"name": name})


# As distribution: a catalog page holds 100 names unless n says otherwise, and n may not pass
# 1000, so that no request walks the whole registry.
CATALOG_DEFAULT_PAGE = 100
CATALOG_MAX_PAGE = 1000


def catalog_page_size(request: web.Request) -> int:
    limit = page_size(request)
    if limit is None:
        return CATALOG_DEFAULT_PAGE
    if limit > CATALOG_MAX_PAGE:
        raise RegistryError(
            "PAGINATION_NUMBER_INVALID",
            detail={"n": request.query.get("n", "")[:20], "max": CATALOG_MAX_PAGE},
        )
    return limit


async def catalog(request: web.Request) -> web.Response:
    registry = registry_of(request)
    await registry.authorizer.authorize(request, None, ())
    limit: int | None = catalog_page_size(request)
    last = request.query.get("last")
    names: list[str] = []
    # Filter page by page, so a caller who may pull few repositories still gets full pages.
    while limit is None or len(names) <= limit:
        fetch = None if limit is None else limit + 1 - len(names)
        batch = await registry.metadata.catalog(fetch, last)
        names += [n for n in batch if await registry.authorizer.may_pull(request, n)]
        if fetch is None or len(batch) < fetch:
            break
        last = batch[-1]
    return _paged("/v2/_catalog", names, limit, "repositories", {})


async def referrers(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PULL)
    subject = str(parse_digest(request.match_info["digest"]))
    registry = registry_of(request)
    repository_id = await registry.metadata.repository_id(name)
    found = (
        [] if repository_id is None else await registry.metadata.referrers(repository_id, subject)
    )
    wanted = request.query.get("artifactType")
    headers: dict[str, str] = {}
    if wanted is not None:
        found = [r for r in found if r.artifact_type == wanted]
        headers["OCI-Filters-Applied"] = "artifactType"
    descriptors = []
    for referrer in found:
        descriptor: dict[str, Any] = {
            "mediaType": referrer.media_type,
            "digest": referrer.digest,
            "size": referrer.size,
        }
        if referrer.artifact_type:
            descriptor["artifactType"] = referrer.artifact_type
        if referrer.annotations:
            descriptor["annotations"] = referrer.annotations
        descriptors.append(descriptor)
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
    # The exact media type, without the "; charset=utf-8" that json_response would add.
    headers["Content-Type"] = mediatypes.OCI_INDEX
    return web.Response(body=json.dumps(index).encode(), headers=headers)
