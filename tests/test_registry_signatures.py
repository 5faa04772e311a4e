"""OpenShift's image-signature extension, read side: the registry says it has one
(X-Registry-Supports-Signatures), so podman and skopeo read an image's signatures from
/extensions/v2/<name>/signatures/<digest> on every pull. Wharf keeps none: the answer is an
empty list for a manifest of the repository, and the registry's errors otherwise."""

from __future__ import annotations

import requests

from tests.support.oci import Registry, assert_error


def signatures(reg: Registry, name: str, digest: str) -> requests.Response:
    return reg.http.get(f"{reg.url}/extensions/v2/{name}/signatures/{digest}", timeout=30)


def test_an_image_has_no_signatures(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "latest")
    answer = signatures(reg, repo, image.digest)
    assert answer.status_code == 200
    assert answer.json() == {"signatures": []}
    assert answer.headers["X-Registry-Supports-Signatures"] == "1"


def test_signatures_of_what_the_repository_does_not_hold(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "latest")
    other = reg.push_image(f"{repo}-other", "latest")
    assert_error(signatures(reg, repo, other.digest), 404, "MANIFEST_UNKNOWN")
    assert_error(signatures(reg, f"{repo}-none", image.digest), 404, "NAME_UNKNOWN")
    assert_error(signatures(reg, repo, "sha256:abc"), 400, "DIGEST_INVALID")
