"""The `Image` object a pushed manifest becomes, with the fields OpenShift's registry fills in."""

from __future__ import annotations

from typing import Any

from ..kube import now
from ..oci.jsondoc import InvalidJson, decode
from ..oci.manifest import ParsedManifest

MANIFEST_BLOB_STORED = "image.openshift.io/manifestBlobStored"
LAYERS_ORDER = "image.openshift.io/dockerLayersOrder"
MANAGED = "openshift.io/image.managed"


def _docker_metadata(manifest: ParsedManifest, config: bytes | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"kind": "DockerImage", "apiVersion": "image.openshift.io/1.0"}
    if manifest.config is None:  # an index: it has no config of its own
        metadata.update(Id=str(manifest.digest), Created=now())
        return metadata
    document: dict[str, Any] = {}
    if config:
        try:
            loaded = decode(config)
            document = loaded if isinstance(loaded, dict) else {}
        except InvalidJson:
            document = {}  # an artifact's config need not be an image config
    metadata["Id"] = manifest.config.digest
    for source, target in (
        ("created", "Created"),
        ("architecture", "Architecture"),
        ("os", "Os"),
        ("variant", "Variant"),
        ("author", "Author"),
    ):
        if isinstance(document.get(source), str):
            metadata[target] = document[source]
    if isinstance(document.get("config"), dict):
        metadata["Config"] = document["config"]
    if isinstance(document.get("container_config"), dict):
        metadata["ContainerConfig"] = document["container_config"]
    metadata["Size"] = manifest.config.size + sum(
        d.size for d in manifest.blobs if d is not manifest.config
    )
    return metadata


def image_from_manifest(
    manifest: ParsedManifest, reference: str, config: bytes | None
) -> dict[str, Any]:
    """The Image for `manifest`, reachable at `reference` (`<host>/<ns>/<stream>@<digest>`)."""
    image: dict[str, Any] = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "Image",
        "metadata": {
            "name": str(manifest.digest),
            "annotations": {
                MANAGED: "true",
                MANIFEST_BLOB_STORED: "true",
                LAYERS_ORDER: "ascending",
            },
        },
        "dockerImageReference": reference,
        "dockerImageMetadata": _docker_metadata(manifest, config),
        "dockerImageMetadataVersion": "1.0",
        "dockerImageManifestMediaType": manifest.media_type,
        "dockerImageLayers": [
            {"name": d.digest, "size": d.size, "mediaType": d.mediaType}
            for d in manifest.blobs
            if d is not manifest.config
        ],
    }
    if manifest.children:
        image["dockerImageManifests"] = [
            {
                "digest": child.digest,
                "mediaType": child.mediaType,
                "manifestSize": child.size,
                "architecture": child.platform.architecture if child.platform else "",
                "os": child.platform.os if child.platform else "",
                **(
                    {"variant": child.platform.variant}
                    if child.platform and child.platform.variant
                    else {}
                ),
            }
            for child in manifest.children
        ]
    return image
