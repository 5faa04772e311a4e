"""Pull specs of images in other registries, normalised as docker does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..oci.digest import Digest, InvalidDigest
from ..oci.names import MAX_NAME_LENGTH, is_valid_name, is_valid_tag

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
# docker.io's other spellings in pull specs; the API itself answers at registry-1.docker.io.
_DOCKER_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io"})

# A host name or IPv4 address (or a bracketed IPv6 address), with an optional port.
_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)


def _is_registry(component: str) -> bool:
    """Whether the first path component of a pull spec names a registry: docker's rule is a
    dot, a port or `localhost`."""
    return "." in component or ":" in component or component == "localhost" or "[" in component


@dataclass(frozen=True)
class RemoteReference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> RemoteReference:
        """`[registry/]repository[:tag][@digest]`; ValueError saying what is wrong otherwise."""
        if not isinstance(text, str) or not text:
            raise ValueError("an image reference must not be empty")
        if len(text) > 1024 or text != text.strip():
            raise ValueError(f"invalid image reference {text[:100]!r}")
        rest, at, digest = text.partition("@")
        if at:
            try:
                Digest.parse(digest)
            except InvalidDigest:
                raise ValueError(f"invalid digest in image reference {text[:100]!r}") from None
        registry = DEFAULT_REGISTRY
        first, slash, remainder = rest.partition("/")
        if slash and _is_registry(first):
            if not _HOST_RE.fullmatch(first):
                raise ValueError(f"invalid registry host {first[:100]!r}")
            registry = DEFAULT_REGISTRY if first in _DOCKER_HUB_ALIASES else first
            rest = remainder
        # A tag is after the last colon, if that colon is in the last path component.
        tag: str | None = None
        name, colon, candidate = rest.rpartition(":")
        if colon and "/" not in candidate:
            if not is_valid_tag(candidate):
                raise ValueError(f"invalid tag {candidate[:100]!r} in image reference")
            rest, tag = name, candidate
        if registry == DEFAULT_REGISTRY and "/" not in rest:
            rest = f"library/{rest}"
        if not is_valid_name(rest):
            raise ValueError(
                f"invalid repository name {rest[:100]!r}: lowercase letters, digits and "
                f"separators, at most {MAX_NAME_LENGTH} characters"
            )
        if tag is None and not at:
            tag = DEFAULT_TAG
        return cls(registry, rest, tag, digest if at else None)

    def by_digest(self, digest: str) -> RemoteReference:
        """The same repository, pinned to `digest` (no tag)."""
        return RemoteReference(self.registry, self.repository, None, digest)

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text
