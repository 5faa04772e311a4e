"""Strict models of image manifests and indexes, and what a registry needs from them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from . import mediatypes
from .digest import Digest, InvalidDigest
from .jsondoc import InvalidJson, decode

# The spec lets registries refuse manifests above 4 MiB; every client stays far below it.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Sizes are int64 in the image spec: a larger one could be neither stored nor true.
MAX_SIZE = 2**63 - 1


class InvalidManifest(ValueError):
    """A payload that is not a manifest this registry can store."""


def _check_media_type(cls: type, value: str | None) -> str | None:
    if value is not None and not mediatypes.is_media_type(value):
        raise ValueError(f"invalid media type {value!r}")
    return value


class _Model(BaseModel):
    # Unknown fields must be ignored, not refused (image-spec: extensibility).
    model_config = ConfigDict(extra="allow", strict=True)


class Platform(_Model):
    architecture: StrictStr
    os: StrictStr
    variant: StrictStr | None = None
    os_version: StrictStr | None = Field(default=None, alias="os.version")
    os_features: list[StrictStr] | None = Field(default=None, alias="os.features")


class Descriptor(_Model):
    mediaType: StrictStr
    digest: StrictStr
    size: Annotated[StrictInt, Field(ge=0, le=MAX_SIZE)]
    urls: list[StrictStr] | None = None
    annotations: dict[StrictStr, StrictStr] | None = None
    artifactType: StrictStr | None = None
    platform: Platform | None = None

    _media_type = field_validator("mediaType", "artifactType")(_check_media_type)

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        try:
            Digest.parse(value)
        except InvalidDigest as exc:
            raise ValueError(str(exc)) from None
        return value


class _Versioned(_Model):
    schemaVersion: StrictInt
    mediaType: StrictStr | None = None
    artifactType: StrictStr | None = None
    subject: Descriptor | None = None
    annotations: dict[StrictStr, StrictStr] | None = None

    # The manifest's own artifactType is a media type as a descriptor's is (image-spec).
    _artifact_type = field_validator("artifactType")(_check_media_type)

    @field_validator("schemaVersion")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 2:
            raise ValueError("schemaVersion must be 2")
        return value


class ImageManifest(_Versioned):
    config: Descriptor
    layers: list[Descriptor]


class ImageIndex(_Versioned):
    manifests: list[Descriptor]


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """What the registry keeps and checks of a manifest it accepted."""

    media_type: str
    digest: Digest
    payload: bytes
    blobs: tuple[Descriptor, ...]  # config and layers that must be in the repository
    children: tuple[Descriptor, ...]  # manifests an index refers to
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str]
    config: Descriptor | None


def _media_type_of(content_type: str, document: dict[str, Any]) -> str:
    declared = document.get("mediaType")
    media_type = mediatypes.bare(content_type) if content_type else ""
    if declared is not None:
        if not isinstance(declared, str):
            raise InvalidManifest("mediaType must be a string")
        if media_type and media_type != declared:
            raise InvalidManifest(
                f"Content-Type {media_type!r} does not match the manifest's mediaType {declared!r}"
            )
        media_type = declared
    if media_type not in mediatypes.MANIFESTS:
        raise InvalidManifest(f"unsupported manifest media type {media_type or '(none)'!r}")
    return media_type


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "manifest"
    return f"{where}: {error['msg']}"


def parse_manifest(
    payload: bytes, content_type: str, digest: Digest | None = None
) -> ParsedManifest:
    """Validate `payload` as the manifest type it declares; raise InvalidManifest if it is not."""
    if len(payload) > MAX_MANIFEST_BYTES:
        raise InvalidManifest(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        document = decode(payload)
    except InvalidJson as exc:
        raise InvalidManifest(f"manifest is {exc}") from None
    if not isinstance(document, dict):
        raise InvalidManifest("manifest must be a JSON object")
    media_type = _media_type_of(content_type, document)
    computed = Digest.of(payload, digest.algorithm if digest else "sha256")
    try:
        if media_type in mediatypes.INDEXES:
            index = ImageIndex.model_validate(document)
            return ParsedManifest(
                media_type=media_type,
                digest=computed,
                payload=payload,
                blobs=(),
                children=tuple(index.manifests),
                subject=index.subject,
                artifact_type=index.artifactType,
                annotations=index.annotations or {},
                config=None,
            )
        image = ImageManifest.model_validate(document)
    except ValidationError as exc:
        raise InvalidManifest(_first_error(exc)) from None
    for layer in image.layers:
        if layer.urls and layer.mediaType not in mediatypes.FOREIGN_LAYERS:
            raise InvalidManifest(f"layer {layer.digest} has urls but is not a foreign layer")
    # Only layers may be non-distributable: the config is always a blob the repository must
    # hold, whatever media type it claims.
    stored = (
        image.config,
        *(d for d in image.layers if d.mediaType not in mediatypes.FOREIGN_LAYERS),
    )
    return ParsedManifest(
        media_type=media_type,
        digest=computed,
        payload=payload,
        blobs=stored,
        children=(),
        subject=image.subject,
        artifact_type=image.artifactType,
        annotations=image.annotations or {},
        config=image.config,
    )
