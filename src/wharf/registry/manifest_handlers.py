"""GET, HEAD, PUT and DELETE of manifests, by tag or by digest."""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..oci import mediatypes
from ..oci.manifest import MAX_MANIFEST_BYTES, InvalidManifest, parse_manifest
from ..oci.names import is_valid_tag
from .access import Action
from .context import authorized_repository, existing_repository_id, parse_digest, registry_of
from .errors import RegistryError


def _reference(request: web.Request, bad_tag: str = "MANIFEST_UNKNOWN") -> tuple[str, bool]:
    """The reference of the path, and whether it is a digest (else a tag).

    A name outside the tag grammar answers `bad_tag`: nothing can be stored under it, so a
    read finds nothing (404) while a push is refused (MANIFEST_INVALID).
    """
    reference = request.match_info["reference"]
    if ":" in reference:
        return str(parse_digest(reference)), True
    if not is_valid_tag(reference):
        raise RegistryError(bad_tag, f"invalid tag {reference[:200]!r}")
    return reference, False


def _accepts(request: web.Request, media_type: str) -> bool:
    accepted = {
        mediatypes.bare(part)
        for header in request.headers.getall("Accept", [])
        for part in header.split(",")
    }
    accepted.discard("")
    # A client that names no manifest type at all (or */*) takes whatever is stored.
    if not accepted & mediatypes.MANIFESTS or "*/*" in accepted:
        return True
    return media_type in accepted


async def get_manifest(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PULL)
    reference, by_digest = _reference(request)
    registry = registry_of(request)
    repository_id = await existing_repository_id(request, name, "NAME_UNKNOWN")
    manifest = await registry.metadata.manifest(repository_id, reference, by_digest)
    if manifest is None and registry.pullthrough is not None:
        manifest = await registry.pullthrough.manifest(name, repository_id, reference, by_digest)
    if manifest is None:
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
    if not _accepts(request, manifest.media_type):
        raise RegistryError(
            "MANIFEST_UNKNOWN",
            f"manifest is {manifest.media_type}, which the Accept header does not allow",
        )
    headers = {
        "Docker-Content-Digest": manifest.digest,
        "ETag": f'"{manifest.digest}"',
        "Content-Type": manifest.media_type,
    }
    return web.Response(status=200, body=manifest.payload, headers=headers)


async def get_signatures(request: web.Request) -> web.Response:
    """OpenShift's signature extension, read side: the signatures of an image of the
    repository. Clients told X-Registry-Supports-Signatures read it on every pull; Wharf
    stores no signatures, so a manifest the repository holds has none."""
    name = await authorized_repository(request, Action.PULL)
    digest = str(parse_digest(request.match_info["digest"]))
    repository_id = await existing_repository_id(request, name, "NAME_UNKNOWN")
    if await registry_of(request).metadata.manifest(repository_id, digest, True) is None:
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": digest})
    return web.json_response({"signatures": []})


async def put_manifest(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PULL, Action.PUSH)
    reference, by_digest = _reference(request, "MANIFEST_INVALID")
    if request.content_length is not None and request.content_length > MAX_MANIFEST_BYTES:
        raise RegistryError(
            "SIZE_INVALID", f"manifests are limited to {MAX_MANIFEST_BYTES} bytes", status=413
        )
    payload = await _read_limited(request)
    try:
        manifest = parse_manifest(
            payload,
            request.headers.get("Content-Type", ""),
            parse_digest(reference) if by_digest else None,
        )
    except InvalidManifest as exc:
        raise RegistryError("MANIFEST_INVALID", str(exc)) from None
    digest = str(manifest.digest)
    if by_digest and digest != reference:
        raise RegistryError("DIGEST_INVALID", f"manifest digest is {digest}, not {reference}")
    registry = registry_of(request)
    await registry.publisher.publish(request, name, manifest, None if by_digest else reference)
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
    if manifest.subject is not None:
        headers["OCI-Subject"] = manifest.subject.digest
    return web.Response(status=201, headers=headers)


async def _read_limited(request: web.Request) -> bytes:
    chunks: list[bytes] = []
    total = 0
    try:
        async for chunk in request.content.iter_any():
            total += len(chunk)
            if total > MAX_MANIFEST_BYTES:
                raise RegistryError(
                    "SIZE_INVALID",
                    f"manifests are limited to {MAX_MANIFEST_BYTES} bytes",
                    status=413,
                )
            chunks.append(chunk)
    except (OSError, HttpProcessingError) as exc:
        # The client went away or broke its own framing: there is no manifest to store.
        raise RegistryError("MANIFEST_INVALID", f"the request body broke off: {exc}") from None
    return b"".join(chunks)


async def delete_manifest(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.DELETE)
    reference, by_digest = _reference(request)
    registry = registry_of(request)
    await existing_repository_id(request, name, "NAME_UNKNOWN")
    if by_digest:
        found = await registry.publisher.delete_manifest(request, name, reference)
    else:
        found = await registry.publisher.untag(request, name, reference)
    if not found:
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
    return web.Response(status=202)
