"""The import's pure parts: which child of an index a Legacy import takes, which spec tags
import from elsewhere, which are still to be tried, and where conditions are kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wharf.images.history import TagEvent
from wharf.images.importing import external_source, pending, pick_child, set_conditions
from wharf.oci.manifest import Descriptor, Platform

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def child(n: int, os: str, arch: str, media_type: str = MANIFEST) -> Descriptor:
    return Descriptor(
        mediaType=media_type,
        digest=f"sha256:{n:064x}",
        size=10,
        platform=Platform(os=os, architecture=arch),
    )


def test_legacy_takes_linux_amd64_else_the_first_image() -> None:
    arm, amd = child(1, "linux", "arm64"), child(2, "linux", "amd64")
    assert pick_child([arm, amd]) == amd
    assert pick_child([arm, child(3, "windows", "amd64")]) == arm
    nested = child(4, "linux", "amd64", "application/vnd.oci.image.index.v1+json")
    assert pick_child([nested]) is None


def test_external_sources() -> None:
    def tag(kind: str, name: str, **extra: Any) -> dict[str, Any]:
        return {"name": "t", "from": {"kind": kind, "name": name}, **extra}

    own = {"wharf.local:5000"}
    assert external_source(tag("DockerImage", "quay.io/a/b:1"), own) == "quay.io/a/b:1"
    assert external_source(tag("DockerImage", "wharf.local:5000/p/s:1"), own) is None
    assert external_source(tag("DockerImage", "quay.io/a/b", reference=True), own) is None
    assert external_source(tag("ImageStreamTag", "s:1"), own) is None


def test_pending_spec_tags_are_those_not_tried_since_they_changed() -> None:
    moment = datetime.now(UTC)
    stream = {
        "metadata": {"generation": 3},
        "spec": {
            "tags": [
                {"name": "done", "generation": 2},
                {"name": "stale", "generation": 3},
                {"name": "failed", "generation": 3},
                {"name": "new", "generation": 3},
            ]
        },
        "status": {"tags": [{"tag": "failed", "conditions": [{"generation": 3}]}]},
    }
    history = {
        "done": [TagEvent("sha256:" + "a" * 64, moment, 2)],
        "stale": [TagEvent("sha256:" + "b" * 64, moment, 2)],
    }
    assert [t["name"] for t in pending(stream, history)] == ["stale", "new"]


def test_conditions_live_in_the_stored_status_and_go_when_cleared() -> None:
    stream: dict[str, Any] = {"metadata": {}}
    set_conditions(stream, "b", [{"type": "ImportSuccess"}])
    set_conditions(stream, "a", [{"type": "ImportSuccess"}])
    assert [t["tag"] for t in stream["status"]["tags"]] == ["a", "b"]
    set_conditions(stream, "a", [])
    set_conditions(stream, "b", [])
    assert "status" not in stream
