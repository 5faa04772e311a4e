"""Who may do what in the integrated registry, decided as OpenShift decides it: the caller's
RBAC rights on `imagestreams/layers` of the project (pull: get; push: get and update; making a
stream by pushing: create imagestreams too; deleting manifests: cluster-wide delete images),
and what a push leaves in the API: the Image and the ImageStream's tag history.

Every caller of the issue's matrix is tried on every operation, against a Wharf of this
module's own, with real HTTP."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.support.cluster import (
    Cluster,
    bearer,
    group_subject,
    integrated_cluster,
    registry_session,
    unique,
    user_subject,
)
from tests.support.oci import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    OCTET,
    Image,
    Registry,
    absolute,
    assert_error,
    descriptor,
    digest_of,
    image_index,
    image_manifest,
    with_query,
)

ACCESS_DENIED = 'Basic realm=openshift,error="access denied"'
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST))
IMAGES = "/apis/image.openshift.io/v1/images"

CALLERS = (
    "cluster-admin",
    "project-admin",
    "edit",
    "view",
    "image-puller",
    "image-pusher",
    "image-builder",
    "other-project-admin",
    "builder-sa",
    "default-sa",
    "anonymous",
    "revoked",
)
# get imagestreams/layers in the project. `view` is one of them: OpenShift labels
# registry-viewer (which has that rule) `aggregate-to-view`, so `view` aggregates it
# (openshift-apiserver pkg/bootstrappolicy/policy.go; ../shared/reference/
# openshift-default-roles.yaml), although the view role's own rules leave it out.
PULLERS = {
    "cluster-admin",
    "project-admin",
    "edit",
    "view",
    "image-puller",
    "image-pusher",
    "image-builder",
    "builder-sa",  # system:image-builders
    "default-sa",  # system:image-pullers (group system:serviceaccounts:<project>)
}
# get and update imagestreams/layers
PUSHERS = {"cluster-admin", "project-admin", "edit", "image-pusher", "image-builder", "builder-sa"}
# ... and create imagestreams
CREATORS = {"cluster-admin", "project-admin", "edit", "image-builder", "builder-sa"}
# delete images, cluster-wide
DELETERS = {"cluster-admin"}
AUTHENTICATED = set(CALLERS) - {"anonymous", "revoked"}


@dataclass
class Built:
    """An image not yet pushed: its blobs and manifest."""

    blobs: dict[str, bytes]
    payload: bytes
    config: dict[str, Any]
    layers: list[dict[str, Any]]

    @property
    def digest(self) -> str:
        return digest_of(self.payload)


def build_image(seed: int, layers: int = 1, architecture: str = "amd64") -> Built:
    rng = random.Random(seed)
    config_bytes = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "created": "2026-01-02T03:04:05Z",
            "config": {"Env": [f"SEED={seed}"]},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    config = descriptor(OCI_CONFIG, config_bytes)
    blobs = {config["digest"]: config_bytes}
    layer_descriptors = []
    for _ in range(layers):
        data = rng.randbytes(rng.randint(200, 2000))
        layer = descriptor(OCI_LAYER, data)
        layer_descriptors.append(layer)
        blobs[layer["digest"]] = data
    return Built(blobs, image_manifest(config, layer_descriptors), config, layer_descriptors)


@dataclass
class World:
    cluster: Cluster
    project: str  # where the matrix is tried
    other_project: str  # another admin's
    mount_project: str  # every authenticated caller may push here (a place to mount into)
    public_project: str  # system:image-puller bound to system:unauthenticated
    authorization: dict[str, str]  # caller -> Authorization header
    base: Image  # <project>/base:latest
    untagged: str  # a manifest pushed to <project>/base by digest only
    source: Image  # <other_project>/src:latest
    public: Image  # <public_project>/pub:latest
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def wharf_url(self) -> str:
        return self.cluster.wharf.url

    def session(self, caller: str | None) -> requests.Session:
        header = None if caller is None else self.authorization[caller]
        return registry_session(self.cluster.wharf, header)

    def registry(self, caller: str) -> Registry:
        return Registry(self.wharf_url, self.session(caller))

    def request(
        self, caller: str | None, method: str, path: str, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        with self.session(caller) as session:
            return session.request(method, f"{self.wharf_url}{path}", **kwargs)

    def stream(self, project: str, name: str) -> requests.Response:
        return self.cluster.admin.get(
            f"/apis/image.openshift.io/v1/namespaces/{project}/imagestreams/{name}"
        )

    def tags_of(self, project: str, name: str) -> dict[str, list[dict[str, Any]]]:
        response = self.stream(project, name)
        assert response.status_code == 200, response.text
        return {t["tag"]: t["items"] for t in response.json()["status"].get("tags") or []}

    def image(self, digest: str) -> requests.Response:
        return self.cluster.admin.get(f"{IMAGES}/{digest}")

    def catalog(self, caller: str, **params: str) -> requests.Response:
        return self.request(caller, "GET", "/v2/_catalog", params=params)

    def ours(self, repositories: list[str]) -> list[str]:
        projects = {self.project, self.other_project, self.mount_project, self.public_project}
        return [r for r in repositories if r.split("/")[0] in projects]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with integrated_cluster(tmp_path_factory.mktemp("registry-permissions")) as cluster:
        yield make_world(cluster)


def make_world(cluster: Cluster) -> World:
    owner = cluster.user("owner")
    project = cluster.new_project(owner.api, unique("matrix"))
    users = {"project-admin": owner}
    for role, caller in (
        ("edit", "edit"),
        ("view", "view"),
        ("system:image-puller", "image-puller"),
        ("system:image-pusher", "image-pusher"),
        ("system:image-builder", "image-builder"),
    ):
        user = cluster.user(caller)
        response = cluster.bind(project, role, user_subject(user.name), api=owner.api)
        assert response.status_code == 201, response.text
        users[caller] = user
    other = cluster.user("other")
    other_project = cluster.new_project(other.api, unique("other"))
    users["other-project-admin"] = other
    mount_project = cluster.new_project(cluster.admin, unique("mounts"))
    response = cluster.bind(
        mount_project, "system:image-pusher", group_subject("system:authenticated")
    )
    assert response.status_code == 201, response.text
    public_project = cluster.new_project(owner.api, unique("public"))
    response = cluster.bind(
        public_project,
        "system:image-puller",
        group_subject("system:unauthenticated"),
        api=owner.api,
    )
    assert response.status_code == 201, response.text

    revoked = cluster.login(owner.name, owner.password)
    tokens = {caller: user.token for caller, user in users.items()}
    tokens.update(
        {
            "cluster-admin": cluster.admin_token,
            "builder-sa": cluster.service_account_token(project, "builder"),
            "default-sa": cluster.service_account_token(project, "default"),
            "revoked": revoked,
        }
    )
    authorization = {caller: bearer(token) for caller, token in tokens.items()}
    authorization["anonymous"] = bearer("anonymous")  # what /openshift/token gives without one
    assert set(authorization) == set(CALLERS)

    def registry(token: str) -> Registry:
        return Registry(cluster.wharf.url, registry_session(cluster.wharf, bearer(token)))

    base = registry(owner.token).push_image(f"{project}/base", "latest", seed=100)
    untagged = registry(owner.token).push_image(f"{project}/base", None, seed=101).digest
    source = registry(other.token).push_image(f"{other_project}/src", "latest", seed=102)
    public = registry(owner.token).push_image(f"{public_project}/pub", "latest", seed=103)
    cluster.revoke(revoked)
    world = World(
        cluster,
        project,
        other_project,
        mount_project,
        public_project,
        authorization,
        base,
        untagged,
        source,
        public,
        tokens,
    )
    # The revocation has taken effect (token checks are cached for a moment).
    from tests.support.server import wait_until

    wait_until(lambda: world.request("revoked", "GET", "/v2/").status_code == 401, timeout=10)
    return world


def assert_access_denied(response: requests.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text[:500])
    assert response.headers.get("WWW-Authenticate") == ACCESS_DENIED, response.headers
    if response.request.method != "HEAD":
        assert_error(response, 401, "UNAUTHORIZED")


def push_blobs(registry: Registry, repository: str, blobs: dict[str, bytes]) -> None:
    for data in blobs.values():
        registry.push_blob(repository, data)


def layer_of(image: Image) -> str:
    manifest = json.loads(image.payload)
    digest: str = manifest["layers"][0]["digest"]
    return digest


# The matrix


@pytest.mark.parametrize("caller", CALLERS)
def test_pull(world: World, caller: str) -> None:
    repository = f"{world.project}/base"
    manifest = world.request(
        caller, "GET", f"/v2/{repository}/manifests/latest", headers={"Accept": ACCEPT}
    )
    head = world.request(
        caller, "HEAD", f"/v2/{repository}/manifests/latest", headers={"Accept": ACCEPT}
    )
    layer = layer_of(world.base)
    blob = world.request(caller, "GET", f"/v2/{repository}/blobs/{layer}")
    head_blob = world.request(caller, "HEAD", f"/v2/{repository}/blobs/{layer}")
    by_digest = world.request(
        caller, "GET", f"/v2/{repository}/manifests/{world.base.digest}", headers={"Accept": ACCEPT}
    )
    tags = world.request(caller, "GET", f"/v2/{repository}/tags/list")
    if caller in PULLERS:
        assert manifest.status_code == 200, manifest.text
        assert manifest.content == world.base.payload
        assert head.status_code == 200
        assert head.headers["Docker-Content-Digest"] == world.base.digest
        assert blob.status_code == 200
        assert blob.content == world.base.blobs[layer]
        assert head_blob.status_code == 200
        assert by_digest.status_code == 200
        assert by_digest.content == world.base.payload
        assert tags.status_code == 200
        assert "latest" in tags.json()["tags"]
    else:
        for response in (manifest, head, blob, by_digest, tags):
            assert_access_denied(response)
        if caller in AUTHENTICATED:
            # A HEAD answer has no room for why: to a caller who logged in, the blob is unknown
            # (a push goes on to its upload, whose refusal says why; test_registry_denied_push).
            assert head_blob.status_code == 404
        else:
            assert_access_denied(head_blob)


@pytest.mark.parametrize("caller", CALLERS)
def test_push_to_an_existing_stream(world: World, caller: str) -> None:
    repository = f"{world.project}/base"
    tag = f"by-{caller}"
    built = build_image(seed=CALLERS.index(caller))
    if caller in PUSHERS:
        registry = world.registry(caller)
        push_blobs(registry, repository, built.blobs)
        response = registry.put_manifest(repository, tag, built.payload)
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == built.digest
        items = world.tags_of(world.project, "base")[tag]
        assert [item["image"] for item in items] == [built.digest]
        pulled = world.request(
            "project-admin",
            "GET",
            f"/v2/{repository}/manifests/{tag}",
            headers={"Accept": ACCEPT},
        )
        assert pulled.content == built.payload
        return
    # Refused at the first request of a push, the upload...
    assert_access_denied(world.request(caller, "POST", f"/v2/{repository}/blobs/uploads/"))
    layer = layer_of(world.base)
    assert_access_denied(
        world.request(
            caller,
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            params={"digest": layer},
            data=world.base.blobs[layer],
        )
    )
    # ... and at the manifest, even one whose blobs are all there already.
    response = world.request(
        caller,
        "PUT",
        f"/v2/{repository}/manifests/{tag}",
        data=world.base.payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_access_denied(response)
    assert tag not in world.tags_of(world.project, "base")


@pytest.mark.parametrize("caller", CALLERS)
def test_push_creating_a_stream(world: World, caller: str) -> None:
    name = f"new-{caller}"
    repository = f"{world.project}/{name}"
    built = build_image(seed=1000 + CALLERS.index(caller))
    if caller in PUSHERS:
        registry = world.registry(caller)
        push_blobs(registry, repository, built.blobs)
        response = registry.put_manifest(repository, "latest", built.payload)
        if caller in CREATORS:
            assert response.status_code == 201, response.text
            stream = world.stream(world.project, name)
            assert stream.status_code == 200, stream.text
            assert world.tags_of(world.project, name)["latest"][0]["image"] == built.digest
            assert world.image(built.digest).status_code == 200
        else:
            # May update layers, may not create image streams: refused at the manifest.
            assert_error(response, 403, "DENIED")
            assert world.stream(world.project, name).status_code == 404
            assert world.image(built.digest).status_code == 404
        return
    assert_access_denied(world.request(caller, "POST", f"/v2/{repository}/blobs/uploads/"))
    response = world.request(
        caller,
        "PUT",
        f"/v2/{repository}/manifests/latest",
        data=built.payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_access_denied(response)
    assert world.stream(world.project, name).status_code == 404


@pytest.mark.parametrize("caller", CALLERS)
def test_delete(world: World, caller: str) -> None:
    repository = f"{world.project}/base"
    tagged = world.request(caller, "DELETE", f"/v2/{repository}/manifests/{world.base.digest}")
    if caller not in DELETERS:
        assert_access_denied(tagged)
        assert_access_denied(
            world.request(caller, "DELETE", f"/v2/{repository}/manifests/{world.untagged}")
        )
        assert_access_denied(world.request(caller, "DELETE", f"/v2/{repository}/manifests/latest"))
        layer = layer_of(world.base)
        assert_access_denied(world.request(caller, "DELETE", f"/v2/{repository}/blobs/{layer}"))
        # Nothing went: the manifest and its tag are where they were.
        assert world.tags_of(world.project, "base")["latest"][0]["image"] == world.base.digest
        pulled = world.request(
            "cluster-admin",
            "GET",
            f"/v2/{repository}/manifests/latest",
            headers={"Accept": ACCEPT},
        )
        assert pulled.content == world.base.payload
        return
    # A manifest the stream still refers to is not deleted.
    assert_error(tagged, 405, "UNSUPPORTED")
    assert world.tags_of(world.project, "base")["latest"][0]["image"] == world.base.digest
    # One it does not refer to (pushed by digest) is.
    owner = world.registry("project-admin")
    digest = owner.push_image(repository, None, seed=200).digest
    deleted = world.request(caller, "DELETE", f"/v2/{repository}/manifests/{digest}")
    assert deleted.status_code == 202, deleted.text
    again = world.request(caller, "DELETE", f"/v2/{repository}/manifests/{digest}")
    assert_error(again, 404, "MANIFEST_UNKNOWN")
    gone = world.request(
        caller, "GET", f"/v2/{repository}/manifests/{digest}", headers={"Accept": ACCEPT}
    )
    assert_error(gone, 404, "MANIFEST_UNKNOWN")
    # The Image object stays: only the API or pruning removes Images.
    assert world.image(digest).status_code == 200


def pullable_projects(world: World, caller: str) -> set[str]:
    projects: set[str] = set()
    if caller in AUTHENTICATED:
        projects.add(world.mount_project)
    if caller in PULLERS:
        projects.add(world.project)
    if caller in ("project-admin", "anonymous"):
        projects.add(world.public_project)
    if caller == "other-project-admin":
        projects.add(world.other_project)
    if caller == "cluster-admin":
        projects |= {world.project, world.other_project, world.public_project}
    return projects


@pytest.mark.parametrize("caller", CALLERS)
def test_catalog_lists_what_the_caller_may_pull(world: World, caller: str) -> None:
    everything = world.catalog("cluster-admin")
    assert everything.status_code == 200, everything.text
    all_ours = world.ours(everything.json()["repositories"])
    for known in (
        f"{world.project}/base",
        f"{world.other_project}/src",
        f"{world.public_project}/pub",
    ):
        assert known in all_ours
    response = world.catalog(caller)
    if caller == "revoked":
        assert_access_denied(response)
        return
    assert response.status_code == 200, response.text
    projects = pullable_projects(world, caller)
    expected = [r for r in all_ours if r.split("/")[0] in projects]
    assert world.ours(response.json()["repositories"]) == expected
    if caller == "anonymous":
        assert response.json()["repositories"] == [f"{world.public_project}/pub"]


@pytest.mark.parametrize("caller", CALLERS)
def test_mount_from_another_project(world: World, caller: str) -> None:
    """Mounting needs pull rights on the source; without them the answer is a plain upload."""
    source = f"{world.project}/base"
    target = f"{world.mount_project}/m-{caller}"
    layer = layer_of(world.base)
    response = world.request(
        caller,
        "POST",
        f"/v2/{target}/blobs/uploads/",
        params={"mount": layer, "from": source},
    )
    if caller not in AUTHENTICATED:  # may not push to the target at all
        assert_access_denied(response)
        return
    linked = world.request(caller, "HEAD", f"/v2/{target}/blobs/{layer}")
    if caller in PULLERS:
        assert response.status_code == 201, response.text
        assert response.headers["Docker-Content-Digest"] == layer
        assert response.headers["Location"] == f"/v2/{target}/blobs/{layer}"
        assert linked.status_code == 200
        fetched = world.request(caller, "GET", f"/v2/{target}/blobs/{layer}")
        assert fetched.content == world.base.blobs[layer]
    else:
        assert response.status_code == 202, response.text
        assert "Docker-Upload-UUID" in response.headers
        assert response.headers["Location"].startswith(f"/v2/{target}/blobs/uploads/")
        assert linked.status_code == 404
        # The upload offered instead works: the caller sends the bytes.
        with world.session(caller) as session:
            finished = session.put(
                with_query(absolute(world.wharf_url, response), digest=layer),
                data=world.base.blobs[layer],
                headers={"Content-Type": OCTET},
                timeout=30,
            )
        assert finished.status_code == 201, finished.text


# Around the matrix


def test_mount_from_a_project_of_ones_own(world: World) -> None:
    layer = layer_of(world.source)
    source = f"{world.other_project}/src"
    mounted = world.request(
        "other-project-admin",
        "POST",
        f"/v2/{world.mount_project}/from-other/blobs/uploads/",
        params={"mount": layer, "from": source},
    )
    assert mounted.status_code == 201, mounted.text
    # The project admin of the matrix's project has no rights on the other project.
    refused = world.request(
        "project-admin",
        "POST",
        f"/v2/{world.project}/from-other/blobs/uploads/",
        params={"mount": layer, "from": source},
    )
    assert refused.status_code == 202, refused.text
    missing = world.request(
        "project-admin", "HEAD", f"/v2/{world.project}/from-other/blobs/{layer}"
    )
    assert missing.status_code == 404


def test_mount_from_a_source_outside_the_grammar_is_a_plain_upload(world: World) -> None:
    layer = layer_of(world.base)
    for source in ("onlyone", f"{world.project}/base/extra", "../x", "UPPER/x"):
        response = world.request(
            "project-admin",
            "POST",
            f"/v2/{world.project}/odd-mount/blobs/uploads/",
            params={"mount": layer, "from": source},
        )
        assert response.status_code == 202, (source, response.text)


def test_without_credentials_every_operation_gets_the_bearer_challenge(world: World) -> None:
    repository = f"{world.public_project}/pub"  # even where anonymous pulls are allowed
    for method, path in (
        ("GET", "/v2/"),
        ("GET", "/v2/_catalog"),
        ("GET", f"/v2/{repository}/manifests/latest"),
        ("GET", f"/v2/{repository}/tags/list"),
        ("POST", f"/v2/{repository}/blobs/uploads/"),
        ("DELETE", f"/v2/{repository}/manifests/{world.public.digest}"),
    ):
        response = world.request(None, method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == (
            f'Bearer realm="https://{world.cluster.wharf.host}/openshift/token"'
        )


def test_anonymous_pulls_where_unauthenticated_may(world: World) -> None:
    repository = f"{world.public_project}/pub"
    token = world.request(None, "GET", "/openshift/token").json()["token"]
    assert token == "anonymous"
    manifest = world.request(
        "anonymous", "GET", f"/v2/{repository}/manifests/latest", headers={"Accept": ACCEPT}
    )
    assert manifest.status_code == 200, manifest.text
    assert manifest.content == world.public.payload
    layer = layer_of(world.public)
    assert (
        world.request("anonymous", "GET", f"/v2/{repository}/blobs/{layer}").content
        == (world.public.blobs[layer])
    )
    assert world.request("anonymous", "GET", f"/v2/{repository}/tags/list").json() == {
        "name": repository,
        "tags": ["latest"],
    }
    # Pulling is all: no push, no delete.
    assert_access_denied(world.request("anonymous", "POST", f"/v2/{repository}/blobs/uploads/"))
    assert_access_denied(
        world.request("anonymous", "DELETE", f"/v2/{repository}/manifests/{world.public.digest}")
    )
    # The binding names the unauthenticated: a logged-in user without rights there is refused.
    assert_access_denied(
        world.request(
            "view", "GET", f"/v2/{repository}/manifests/latest", headers={"Accept": ACCEPT}
        )
    )


def test_anonymous_pull_follows_the_binding(world: World) -> None:
    """Binding system:image-puller to system:unauthenticated opens a project to anonymous
    pulls; deleting the binding closes it again."""
    cluster = world.cluster
    project = cluster.new_project(cluster.admin, unique("opened"))
    image = world.registry("cluster-admin").push_image(f"{project}/app", "latest", seed=300)
    path = f"/v2/{project}/app/manifests/latest"
    assert_access_denied(world.request("anonymous", "GET", path, headers={"Accept": ACCEPT}))
    binding = cluster.bind(project, "system:image-puller", group_subject("system:unauthenticated"))
    assert binding.status_code == 201, binding.text
    opened = world.request("anonymous", "GET", path, headers={"Accept": ACCEPT})
    assert opened.status_code == 200, opened.text
    assert opened.content == image.payload
    name = binding.json()["metadata"]["name"]
    deleted = cluster.admin.delete(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{project}/rolebindings/{name}"
    )
    assert deleted.status_code == 200, deleted.text
    assert_access_denied(world.request("anonymous", "GET", path, headers={"Accept": ACCEPT}))


def test_push_into_a_project_that_does_not_exist(world: World) -> None:
    project = unique("nowhere")
    repository = f"{project}/app"
    built = build_image(seed=400)
    # A normal user has no rights there: refused like any push without rights.
    assert_access_denied(world.request("project-admin", "POST", f"/v2/{repository}/blobs/uploads/"))
    assert_access_denied(
        world.request(
            "project-admin",
            "PUT",
            f"/v2/{repository}/manifests/latest",
            data=built.payload,
            headers={"Content-Type": OCI_MANIFEST},
        )
    )
    # The cluster admin may push anywhere; the image stream cannot be made: DENIED.
    admin = world.registry("cluster-admin")
    push_blobs(admin, repository, built.blobs)
    for reference in ("latest", built.digest):
        response = admin.put_manifest(repository, reference, built.payload)
        assert_error(response, 403, "DENIED")
    assert world.cluster.admin.get(f"/api/v1/namespaces/{project}").status_code == 404
    assert world.image(built.digest).status_code == 404
    missing = world.request(
        "cluster-admin", "GET", f"/v2/{repository}/manifests/latest", headers={"Accept": ACCEPT}
    )
    assert missing.status_code == 404


@pytest.mark.parametrize("caller", ["project-admin", "cluster-admin", "anonymous"])
@pytest.mark.parametrize(
    "name",
    ["onlyone", "a/b/c", "{project}/base/extra", "x/y/z/w"],
    ids=["one", "three", "deeper", "four"],
)
def test_repository_names_must_be_project_slash_name(world: World, caller: str, name: str) -> None:
    name = name.format(project=world.project)
    built = build_image(seed=500)
    for method, path, kwargs in (
        ("GET", f"/v2/{name}/manifests/latest", {"headers": {"Accept": ACCEPT}}),
        ("HEAD", f"/v2/{name}/manifests/latest", {}),
        ("GET", f"/v2/{name}/tags/list", {}),
        ("GET", f"/v2/{name}/blobs/{layer_of(world.base)}", {}),
        ("POST", f"/v2/{name}/blobs/uploads/", {}),
        (
            "PUT",
            f"/v2/{name}/manifests/latest",
            {"data": built.payload, "headers": {"Content-Type": OCI_MANIFEST}},
        ),
        ("DELETE", f"/v2/{name}/manifests/{world.base.digest}", {}),
    ):
        response = world.request(caller, method, path, **kwargs)
        assert_error(response, 400, "NAME_INVALID")
    assert name not in world.catalog("cluster-admin").json()["repositories"]


# What a push leaves in the API


def test_push_by_tag_makes_the_image_and_the_stream(world: World) -> None:
    name = unique("meta")
    repository = f"{world.project}/{name}"
    built = build_image(seed=600, layers=2)
    registry = world.registry("project-admin")
    push_blobs(registry, repository, built.blobs)
    before = datetime.now(UTC) - timedelta(seconds=2)
    response = registry.put_manifest(repository, "v1", built.payload)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v2/{repository}/manifests/{built.digest}"

    found = world.image(built.digest)
    assert found.status_code == 200, found.text
    image = found.json()
    internal = world.cluster.wharf.host
    assert image["kind"] == "Image"
    assert image["metadata"]["name"] == built.digest
    assert image["metadata"]["annotations"]["openshift.io/image.managed"] == "true"
    assert image["dockerImageReference"] == f"{internal}/{repository}@{built.digest}"
    assert image["dockerImageManifestMediaType"] == OCI_MANIFEST
    assert image["dockerImageMetadataVersion"] == "1.0"
    assert image["dockerImageLayers"] == [
        {"name": d["digest"], "size": d["size"], "mediaType": OCI_LAYER} for d in built.layers
    ]
    metadata = image["dockerImageMetadata"]
    assert metadata["Id"] == built.config["digest"]
    assert metadata["Architecture"] == "amd64"
    assert metadata["Created"] == "2026-01-02T03:04:05Z"
    assert metadata["Config"] == {"Env": ["SEED=600"]}
    assert metadata["Size"] == built.config["size"] + sum(d["size"] for d in built.layers)
    # As OpenShift with manifestBlobStored: the raw manifest and config are not kept.
    assert "dockerImageManifest" not in image
    assert "dockerImageConfig" not in image

    stream = world.stream(world.project, name)
    assert stream.status_code == 200
    body = stream.json()
    assert body["metadata"]["generation"] == 1
    assert body["status"]["dockerImageRepository"] == f"{internal}/{repository}"
    tags = body["status"]["tags"]
    assert [t["tag"] for t in tags] == ["v1"]
    (item,) = tags[0]["items"]
    assert set(item) == {"created", "dockerImageReference", "image", "generation"}
    assert item["image"] == built.digest
    assert item["dockerImageReference"] == f"{internal}/{repository}@{built.digest}"
    assert item["generation"] == 1
    created = datetime.fromisoformat(item["created"].replace("Z", "+00:00"))
    assert before <= created <= datetime.now(UTC) + timedelta(seconds=2)
    # Pushed tags are status only.
    assert not body["spec"].get("tags")


def test_history_of_a_tag_and_pulls_by_tag_and_digest(world: World) -> None:
    name = unique("history")
    repository = f"{world.project}/{name}"
    registry = world.registry("image-builder")
    first = registry.push_image(repository, "v1", seed=700)
    second = registry.push_image(repository, "v1", seed=701)
    items = world.tags_of(world.project, name)["v1"]
    assert [i["image"] for i in items] == [second.digest, first.digest]
    # Pushing the head again changes nothing.
    again = registry.put_manifest(repository, "v1", second.payload)
    assert again.status_code == 201
    assert [i["image"] for i in world.tags_of(world.project, name)["v1"]] == [
        second.digest,
        first.digest,
    ]
    by_tag = world.request(
        "image-puller", "GET", f"/v2/{repository}/manifests/v1", headers={"Accept": ACCEPT}
    )
    assert by_tag.content == second.payload
    for image in (first, second):
        by_digest = world.request(
            "image-puller",
            "GET",
            f"/v2/{repository}/manifests/{image.digest}",
            headers={"Accept": ACCEPT},
        )
        assert by_digest.status_code == 200
        assert by_digest.content == image.payload
    # Another tag for the older image; tags/list lists the stream's tags.
    registry.put_manifest(repository, "v0", first.payload)
    listed = world.request("image-puller", "GET", f"/v2/{repository}/tags/list")
    assert listed.json() == {"name": repository, "tags": ["v0", "v1"]}
    tags = world.tags_of(world.project, name)
    assert [i["image"] for i in tags["v0"]] == [first.digest]


def test_push_by_digest_makes_only_the_image(world: World) -> None:
    name = unique("bydigest")
    repository = f"{world.project}/{name}"
    registry = world.registry("edit")
    tagged = registry.push_image(repository, "latest", seed=800)
    stream_before = world.stream(world.project, name).json()
    untagged = registry.push_image(repository, None, seed=801)
    assert untagged.response.status_code == 201
    image = world.image(untagged.digest)
    assert image.status_code == 200
    assert image.json()["dockerImageReference"].endswith(f"/{repository}@{untagged.digest}")
    stream_after = world.stream(world.project, name).json()
    assert stream_after["status"]["tags"] == stream_before["status"]["tags"]
    assert world.tags_of(world.project, name) == {
        "latest": stream_before["status"]["tags"][0]["items"]
    }
    assert tagged.digest != untagged.digest
    listed = world.request("edit", "GET", f"/v2/{repository}/tags/list")
    assert listed.json()["tags"] == ["latest"]
    # By digest into a stream that does not exist: the Image, and still no stream.
    lone = f"{world.project}/{unique('lone')}"
    pushed = world.registry("image-pusher").push_image(lone, None, seed=802)
    assert world.image(pushed.digest).status_code == 200
    assert world.stream(world.project, lone.split("/")[1]).status_code == 404


def test_index_push_fills_the_manifest_list(world: World) -> None:
    name = unique("multi")
    repository = f"{world.project}/{name}"
    registry = world.registry("builder-sa")
    amd = build_image(seed=900)
    arm = build_image(seed=901, architecture="arm64")
    children = []
    for built, platform in (
        (amd, {"architecture": "amd64", "os": "linux"}),
        (arm, {"architecture": "arm64", "os": "linux", "variant": "v8"}),
    ):
        push_blobs(registry, repository, built.blobs)
        response = registry.put_manifest(repository, built.digest, built.payload)
        assert response.status_code == 201, response.text
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": built.digest,
                "size": len(built.payload),
                "platform": platform,
            }
        )
    index = image_index(children)
    index_digest = digest_of(index)
    response = registry.put_manifest(repository, "latest", index, OCI_INDEX)
    assert response.status_code == 201, response.text

    image = world.image(index_digest).json()
    assert image["dockerImageManifestMediaType"] == OCI_INDEX
    assert image["dockerImageManifests"] == [
        {
            "digest": amd.digest,
            "mediaType": OCI_MANIFEST,
            "manifestSize": len(amd.payload),
            "architecture": "amd64",
            "os": "linux",
        },
        {
            "digest": arm.digest,
            "mediaType": OCI_MANIFEST,
            "manifestSize": len(arm.payload),
            "architecture": "arm64",
            "os": "linux",
            "variant": "v8",
        },
    ]
    assert image["dockerImageLayers"] == []
    assert image["dockerImageMetadata"]["Id"] == index_digest
    assert [i["image"] for i in world.tags_of(world.project, name)["latest"]] == [index_digest]
    # The children are Images of their own, and pullable by digest through the index.
    assert world.image(arm.digest).json()["dockerImageMetadata"]["Architecture"] == "arm64"
    pulled = world.request(
        "default-sa", "GET", f"/v2/{repository}/manifests/latest", headers={"Accept": ACCEPT}
    )
    assert pulled.content == index
    child = world.request(
        "default-sa", "GET", f"/v2/{repository}/manifests/{arm.digest}", headers={"Accept": ACCEPT}
    )
    assert child.status_code == 200
    assert child.content == arm.payload


def test_docker_schema2_push(world: World) -> None:
    name = unique("docker")
    repository = f"{world.project}/{name}"
    pushed = world.registry("project-admin").push_image(
        repository, "latest", seed=950, media_type=DOCKER_MANIFEST
    )
    image = world.image(pushed.digest).json()
    assert image["dockerImageManifestMediaType"] == DOCKER_MANIFEST
    assert image["dockerImageLayers"][0]["mediaType"] == (
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    )


# Bad input on the manifest PUT: a clear error, and nothing stored


@pytest.mark.parametrize(
    "tag",
    ["-lead", ".lead", "a" * 129, "has+plus", "has space", "t\u00e4g", "semi;colon", "dollar$"],
    ids=["dash", "dot", "long", "plus", "space", "unicode", "semicolon", "dollar"],
)
def test_tags_outside_the_grammar_are_refused(world: World, tag: str) -> None:
    name = unique("badtag")
    repository = f"{world.project}/base"
    fresh = f"{world.project}/{name}"
    history = world.tags_of(world.project, "base")
    built = build_image(seed=1100)
    registry = world.registry("project-admin")
    push_blobs(registry, repository, built.blobs)
    for target in (repository, fresh):
        response = registry.put_manifest(target, tag, built.payload)
        assert_error(response, 400, "MANIFEST_INVALID")
    assert world.tags_of(world.project, "base") == history
    assert world.stream(world.project, name).status_code == 404
    assert world.image(built.digest).status_code == 404
    assert fresh not in world.catalog("cluster-admin").json()["repositories"]


def test_bad_manifests_store_nothing(world: World) -> None:
    name = unique("badmanifest")
    repository = f"{world.project}/{name}"
    registry = world.registry("project-admin")
    built = build_image(seed=1200)
    # Blobs that were never pushed here.
    missing = registry.put_manifest(repository, "latest", built.payload)
    assert_error(missing, 400, "MANIFEST_BLOB_UNKNOWN")
    # Not JSON; a digest that is not the content's.
    garbage = registry.put_manifest(repository, "latest", b"{not json")
    assert_error(garbage, 400, "MANIFEST_INVALID")
    push_blobs(registry, repository, built.blobs)
    wrong = registry.put_manifest(repository, "sha256:" + "0" * 64, built.payload)
    assert_error(wrong, 400, "DIGEST_INVALID")
    bad_digest = registry.put_manifest(repository, "sha256:xyz", built.payload)
    assert_error(bad_digest, 400, "DIGEST_INVALID")
    assert world.stream(world.project, name).status_code == 404
    assert world.image(built.digest).status_code == 404
    # The blobs pushed are all the repository holds: no manifest, no tag.
    tags = world.request("project-admin", "GET", f"/v2/{repository}/tags/list")
    assert tags.status_code != 200 or tags.json()["tags"] == []


# Nothing leaks between repositories


def test_blobs_and_manifests_are_scoped_to_their_repository(world: World) -> None:
    """Pull rights on one project do not reach another's content through one's own paths."""
    repository = f"{world.project}/base"
    foreign_layer = layer_of(world.source)  # only in <other_project>/src
    blob = world.request("project-admin", "GET", f"/v2/{repository}/blobs/{foreign_layer}")
    assert_error(blob, 404, "BLOB_UNKNOWN")
    manifest = world.request(
        "project-admin",
        "GET",
        f"/v2/{repository}/manifests/{world.source.digest}",
        headers={"Accept": ACCEPT},
    )
    assert_error(manifest, 404, "MANIFEST_UNKNOWN")
    # A manifest made of another project's blobs is not accepted without them.
    pushed = world.request(
        "project-admin",
        "PUT",
        f"/v2/{world.project}/borrowed/manifests/latest",
        data=world.source.payload,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(pushed, 400, "MANIFEST_BLOB_UNKNOWN")
    assert world.stream(world.project, "borrowed").status_code == 404


def test_upload_sessions_belong_to_their_repository(world: World) -> None:
    repository = f"{world.project}/base"
    opened = world.registry("project-admin").start_upload(repository)
    session_path = opened.headers["Location"]
    upload = session_path.rsplit("/", 1)[1]
    data = b"some bytes of an upload"
    # Nobody without push rights on the repository touches the session...
    for caller in ("image-puller", "view", "other-project-admin", "anonymous", "revoked"):
        assert_access_denied(world.request(caller, "PATCH", session_path, data=data))
        assert_access_denied(world.request(caller, "DELETE", session_path))
    # ... nor through a repository of their own.
    elsewhere = f"/v2/{world.other_project}/src/blobs/uploads/{upload}"
    for method in ("GET", "PATCH", "DELETE"):
        response = world.request("other-project-admin", method, elsewhere, data=data)
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    # The session is intact for its owner.
    status = world.request("project-admin", "GET", session_path)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"


def test_concurrent_pushes_make_one_stream(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    name = unique("race")
    repository = f"{world.project}/{name}"

    def push(number: int) -> str:
        registry = world.registry("image-builder")
        return registry.push_image(repository, f"t{number}", seed=2000 + number).digest

    with ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(push, range(8)))
    tags = world.tags_of(world.project, name)
    assert {tag: items[0]["image"] for tag, items in tags.items()} == {
        f"t{number}": digest for number, digest in enumerate(digests)
    }
    listed = world.cluster.admin.get(
        f"/apis/image.openshift.io/v1/namespaces/{world.project}/imagestreams"
    )
    assert [s["metadata"]["name"] for s in listed.json()["items"]].count(name) == 1


def test_catalog_pages_count_only_what_the_caller_may_pull(world: World) -> None:
    first = world.catalog("image-puller", n="1")
    assert first.status_code == 200
    (repository,) = first.json()["repositories"]
    assert repository.startswith(f"{world.mount_project}/") or repository.startswith(
        f"{world.project}/"
    )
    assert 'rel="next"' in first.headers["Link"]
    everything = world.catalog("image-puller").json()["repositories"]
    pages: list[str] = []
    last = None
    while True:
        params = {"n": "2", **({"last": last} if last else {})}
        page = world.catalog("image-puller", **params)
        names = page.json()["repositories"]
        pages += names
        if "Link" not in page.headers:
            break
        last = names[-1]
    assert pages == everything


def test_a_deleted_project_leaves_nothing_to_its_successor(world: World) -> None:
    """A project deleted and made again (by somebody else) starts empty: the old owner's
    tags, manifests and blobs are not pulled through the new one's rights."""
    cluster = world.cluster
    first, second = cluster.user("first"), cluster.user("second")
    project = cluster.new_project(first.api, unique("reused"))
    registry = Registry(world.wharf_url, registry_session(cluster.wharf, bearer(first.token)))
    old = registry.push_image(f"{project}/app", "latest", seed=3000)
    deleted = first.api.delete(f"/apis/project.openshift.io/v1/projects/{project}")
    assert deleted.status_code == 200, deleted.text
    assert cluster.admin.get(f"/api/v1/namespaces/{project}").status_code == 404
    cluster.new_project(second.api, project)
    with registry_session(cluster.wharf, bearer(second.token)) as session:

        def get(path: str) -> requests.Response:
            return session.get(
                f"{world.wharf_url}/v2/{project}/app/{path}", headers={"Accept": ACCEPT}, timeout=30
            )

        assert_error(get("manifests/latest"), 404, "MANIFEST_UNKNOWN")
        assert_error(get(f"manifests/{old.digest}"), 404, "MANIFEST_UNKNOWN")
        for digest in old.blobs:
            assert_error(get(f"blobs/{digest}"), 404, "BLOB_UNKNOWN")
        tags = get("tags/list")
        assert tags.status_code == 200
        assert tags.json()["tags"] == []
        # A push of the new owner makes a stream with only the new owner's tag.
        new = Registry(world.wharf_url, session).push_image(f"{project}/app", "mine", seed=3001)
    assert {
        t: [i["image"] for i in items] for t, items in world.tags_of(project, "app").items()
    } == {"mine": [new.digest]}


def test_a_deleted_stream_takes_its_images_out_of_the_repository(world: World) -> None:
    repository = f"{world.project}/{unique('dropped')}"
    registry = world.registry("project-admin")
    old = registry.push_image(repository, "latest", seed=3100)
    name = repository.split("/")[1]
    deleted = world.cluster.admin.delete(
        f"/apis/image.openshift.io/v1/namespaces/{world.project}/imagestreams/{name}"
    )
    assert deleted.status_code == 200, deleted.text
    for reference in ("latest", old.digest):
        response = world.request(
            "project-admin",
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            headers={"Accept": ACCEPT},
        )
        assert_error(response, 404, "MANIFEST_UNKNOWN")
    # Pushed again, the stream starts without history.
    new = registry.push_image(repository, "latest", seed=3101)
    assert [i["image"] for i in world.tags_of(world.project, name)["latest"]] == [new.digest]
    # The Image objects outlive the stream, as in OpenShift (pruning removes them).
    assert world.image(old.digest).status_code == 200
