"""Where pull-through fetches a repository's images from, in OpenShift's order: the pull specs
its tags were imported from, newest event first, never the registry itself, the registries
reached securely before those reached insecurely."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..upstream.reference import RemoteReference
from .pullthrough_records import SourceEvent

# A stream annotated so reaches every registry of its tags insecurely (OpenShift's name).
INSECURE_REPOSITORY = "openshift.io/image.insecureRepository"


@dataclass(frozen=True, slots=True)
class Source:
    """An upstream repository, and whether it is reached insecurely (plain HTTP, or TLS with
    no verification)."""

    registry: str
    repository: str
    insecure: bool

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


def _insecure_tags(stream: dict[str, Any] | None) -> tuple[bool, set[str]]:
    """Whether the stream's annotation makes every tag insecure, and the spec tags whose
    import policy says insecure."""
    if not stream:
        return False, set()
    annotations = (stream.get("metadata") or {}).get("annotations") or {}
    everything = str(annotations.get(INSECURE_REPOSITORY, "")).lower() == "true"
    tags = {
        str(tag.get("name"))
        for tag in (stream.get("spec") or {}).get("tags") or []
        if isinstance(tag, dict) and (tag.get("importPolicy") or {}).get("insecure") is True
    }
    return everything, tags


def candidates(
    events: Sequence[SourceEvent], stream: dict[str, Any] | None, own_hosts: Collection[str]
) -> list[Source]:
    """The upstream repositories of the imported `events` (newest first), each once; a
    repository is insecure when any tag that names it is."""
    everything, insecure_tags = _insecure_tags(stream)
    own = {host.lower() for host in own_hosts}
    order: list[tuple[str, str]] = []
    insecure: dict[tuple[str, str], bool] = {}
    for event in events:
        try:
            reference = RemoteReference.parse(event.reference)
        except ValueError:
            continue  # not a pull spec: nothing to fetch from
        if reference.registry.lower() in own:
            continue  # never from itself
        key = (reference.registry, reference.repository)
        if key not in insecure:
            order.append(key)
            insecure[key] = False
        insecure[key] = insecure[key] or everything or event.tag in insecure_tags
    sources = [
        Source(registry, repository, insecure[registry, repository])
        for registry, repository in order
    ]
    # Stable: among the secure ones and among the insecure ones, newest first still.
    return sorted(sources, key=lambda source: source.insecure)
