"""Quotas and limits of images, as OpenShift has them, against a real integrated Wharf:
ResourceQuota `openshift.io/imagestreams` refusing a stream too many on the API (403 `exceeded
quota`) and in a push (DENIED with the same message, as podman prints it); LimitRange
`openshift.io/Image` `max.storage` refusing a larger blob at upload commit and a larger image
at its manifest; LimitRange `openshift.io/ImageStream` capping `openshift.io/images` and
`openshift.io/image-tags`; `wharf describe quota`; status.used kept current; validation and
RBAC of both kinds; `wharf adm prune images --prune-over-size-limit` reading the limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.support.cli import Cli, new_cli
from tests.support.cluster import (
    Api,
    Cluster,
    User,
    assert_status,
    bearer,
    integrated_cluster,
    registry_session,
)
from tests.support.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCTET,
    Registry,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
    random_bytes,
    with_query,
)

CORE = "/api/v1"
IMAGES = "/apis/image.openshift.io/v1"
STREAMS = "openshift.io/imagestreams"


@dataclass
class World:
    cluster: Cluster
    owner: User  # admin of the projects below, not of the cluster
    admin_cli: Cli
    owner_cli: Cli


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("quotas")
    with integrated_cluster(base) as cluster:
        owner = cluster.user("owner")
        admin_cli = new_cli(base / "admin-cli")
        admin_cli.login_admin(cluster.wharf)
        owner_cli = new_cli(base / "owner-cli")
        owner_cli.ok(
            "login",
            cluster.wharf.api_url,
            "-u",
            owner.name,
            "-p",
            owner.password,
            "--certificate-authority",
            str(cluster.wharf.ca_file),
        )
        yield World(cluster, owner, admin_cli, owner_cli)


def project_of(world: World) -> str:
    """A new project that the owner administers."""
    return world.cluster.new_project(world.owner.api)


# Objects


def quota(name: str, hard: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard},
    }


def limit_range(name: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {"limits": list(items)},
    }


def create(api: Api, namespace: str, plural: str, body: dict[str, Any]) -> requests.Response:
    return api.post(f"{CORE}/namespaces/{namespace}/{plural}", json=body)


def created(api: Api, namespace: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = create(api, namespace, plural, body)
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


def new_stream(api: Api, namespace: str, name: str, **params: str) -> requests.Response:
    return api.post(
        f"{IMAGES}/namespaces/{namespace}/imagestreams",
        params=params,
        json={
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": name},
        },
    )


def exceeded(name: str, used: int, hard: int) -> str:
    return (
        f"exceeded quota: {name}, requested: {STREAMS}=1, used: {STREAMS}={used}, "
        f"limited: {STREAMS}={hard}"
    )


def get_quota(api: Api, namespace: str, name: str) -> dict[str, Any]:
    answer = api.get(f"{CORE}/namespaces/{namespace}/resourcequotas/{name}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


# The registry


def registry_for(world: World, token: str | None = None) -> Registry:
    session = registry_session(world.cluster.wharf, bearer(token or world.owner.token))
    return Registry(world.cluster.wharf.url, session)


def push_manifest(
    reg: Registry, repository: str, tag: str, layers: list[bytes], note: str = ""
) -> tuple[requests.Response, str]:
    """Push a config and `layers`, then a manifest by tag: its answer and digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "note": note or uuid.uuid4().hex})
    config_bytes = config.encode()
    for data in (config_bytes, *layers):
        reg.push_blob(repository, data)
    payload = image_manifest(
        descriptor(OCI_CONFIG, config_bytes), [descriptor(OCI_LAYER, data) for data in layers]
    )
    return reg.put_manifest(repository, tag, payload), digest_of(payload)


def history(api: Api, namespace: str, stream: str) -> dict[str, list[str]]:
    answer = api.get(f"{IMAGES}/namespaces/{namespace}/imagestreams/{stream}")
    assert answer.status_code == 200, answer.text
    tags = (answer.json().get("status") or {}).get("tags") or []
    return {tag["tag"]: [item["image"] for item in tag["items"]] for tag in tags}


# The kinds


def test_both_kinds_are_served_with_discovery_and_openapi(world: World) -> None:
    answer = world.owner.api.get(CORE)
    assert answer.status_code == 200, answer.text
    resources = {r["name"]: r for r in answer.json()["resources"]}
    assert resources["resourcequotas"]["kind"] == "ResourceQuota"
    assert resources["resourcequotas"]["namespaced"] is True
    assert resources["resourcequotas"]["shortNames"] == ["quota"]
    assert "resourcequotas/status" in resources
    assert resources["limitranges"]["kind"] == "LimitRange"
    assert resources["limitranges"]["shortNames"] == ["limits"]
    document = world.owner.api.get("/openapi/v2").json()
    spec = document["definitions"]["core.v1.ResourceQuota"]["properties"]["spec"]
    assert set(spec["properties"]) >= {"hard", "scopes"}
    assert "core.v1.LimitRange" in document["definitions"]


def test_only_cluster_admins_change_quotas_and_project_admins_read_them(world: World) -> None:
    project = project_of(world)
    owner = world.owner.api
    for plural, body in (
        ("resourcequotas", quota("mine", {STREAMS: "100"})),
        (
            "limitranges",
            limit_range("mine", {"type": "openshift.io/Image", "max": {"storage": "1Gi"}}),
        ),
    ):
        assert_status(create(owner, project, plural, body), 403, "Forbidden", "cannot create")
        made = created(world.cluster.admin, project, plural, body)
        path = f"{CORE}/namespaces/{project}/{plural}/mine"
        assert owner.get(path).status_code == 200
        listed = owner.get(f"{CORE}/namespaces/{project}/{plural}").json()["items"]
        assert [item["metadata"]["name"] for item in listed] == ["mine"]
        assert_status(owner.put(path, json=made), 403, "Forbidden", "cannot update")
        assert_status(owner.delete(path), 403, "Forbidden", "cannot delete")
    # Another project's quotas are not the owner's to read.
    other = world.cluster.new_project(world.cluster.admin)
    created(world.cluster.admin, other, "resourcequotas", quota("theirs", {STREAMS: "1"}))
    answer = owner.get(f"{CORE}/namespaces/{other}/resourcequotas/theirs")
    assert_status(answer, 403, "Forbidden", "cannot get")


@pytest.mark.parametrize(
    ("plural", "body", "field", "message"),
    [
        (
            "resourcequotas",
            quota("q", {STREAMS: "lots"}),
            f"spec.hard[{STREAMS}]",
            'Invalid value: "lots": quantities must match the regular expression',
        ),
        (
            "resourcequotas",
            quota("q", {STREAMS: "-1"}),
            f"spec.hard[{STREAMS}]",
            'Invalid value: "-1": must be greater than or equal to 0',
        ),
        (
            "resourcequotas",
            quota("q", {"bad name!": "1"}),
            "spec.hard[bad name!]",
            "name part must consist of alphanumeric characters",
        ),
        (
            "resourcequotas",
            {**quota("q", {STREAMS: "1"}), "spec": {"hard": {STREAMS: "1"}, "scopes": ["Often"]}},
            "spec.scopes[0]",
            'Unsupported value: "Often"',
        ),
        (
            "limitranges",
            limit_range("l", {"max": {"storage": "1Mi"}}),
            "spec.limits[0].type",
            "Required value",
        ),
        (
            "limitranges",
            limit_range("l", {"type": "openshift.io/Image", "max": {"storage": "big"}}),
            "spec.limits[0].max[storage]",
            'Invalid value: "big"',
        ),
        (
            "limitranges",
            limit_range("l", {"type": "openshift.io/Image"}, {"type": "openshift.io/Image"}),
            "spec.limits[1].type",
            'Duplicate value: "openshift.io/Image"',
        ),
        (
            "limitranges",
            limit_range(
                "l",
                {
                    "type": "openshift.io/ImageStream",
                    "min": {"openshift.io/images": "5"},
                    "max": {"openshift.io/images": "2"},
                },
            ),
            "spec.limits[0].min[openshift.io/images]",
            "min value 5 is greater than max value 2",
        ),
    ],
)
def test_bad_objects_are_invalid_naming_the_field(
    world: World, plural: str, body: dict[str, Any], field: str, message: str
) -> None:
    project = project_of(world)
    status = assert_status(create(world.cluster.admin, project, plural, body), 422, "Invalid")
    causes = status["details"]["causes"]
    assert any(c["field"] == field and message in c["message"] for c in causes), causes
    assert field in status["message"]
    listed = world.cluster.admin.get(f"{CORE}/namespaces/{project}/{plural}").json()["items"]
    assert listed == []


def test_lists_of_the_wrong_json_type_are_refused(world: World) -> None:
    project = project_of(world)
    body = {**quota("q", {}), "spec": {"hard": [STREAMS]}}
    assert_status(create(world.cluster.admin, project, "resourcequotas", body), 422, "Invalid")
    body = {**limit_range("l"), "spec": {"limits": ["openshift.io/Image"]}}
    assert_status(create(world.cluster.admin, project, "limitranges", body), 400, "BadRequest")


# ResourceQuota openshift.io/imagestreams


def test_the_api_refuses_an_image_stream_beyond_the_quota(world: World) -> None:
    project = project_of(world)
    owner = world.owner.api
    made = created(world.cluster.admin, project, "resourcequotas", quota("images", {STREAMS: 2}))
    assert made["spec"]["hard"] == {STREAMS: "2"}  # a quantity, as Kubernetes stores it
    assert made["status"] == {"hard": {STREAMS: "2"}, "used": {STREAMS: "0"}}
    for name in ("one", "two"):
        assert new_stream(owner, project, name).status_code == 201
    assert get_quota(owner, project, "images")["status"]["used"] == {STREAMS: "2"}

    refused = assert_status(new_stream(owner, project, "three"), 403, "Forbidden")
    assert refused["message"] == (
        f'imagestreams.image.openshift.io "three" is forbidden: {exceeded("images", 2, 2)}'
    )
    assert refused["details"] == {
        "name": "three",
        "group": "image.openshift.io",
        "kind": "imagestreams",
    }
    # A dry run is refused alike, and an ImageStreamTag that would make the stream too.
    assert_status(new_stream(owner, project, "three", dryRun="All"), 403, "Forbidden")
    tag = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamTag",
        "metadata": {"name": "three:v1"},
        "tag": {"from": {"kind": "DockerImage", "name": "example.com/app:1"}},
    }
    answer = owner.post(f"{IMAGES}/namespaces/{project}/imagestreamtags", json=tag)
    assert_status(answer, 403, "Forbidden", exceeded("images", 2, 2))
    names = owner.get(f"{IMAGES}/namespaces/{project}/imagestreams").json()["items"]
    assert sorted(s["metadata"]["name"] for s in names) == ["one", "two"]

    # Deleting a stream frees its place; raising the quota makes room too.
    assert owner.delete(f"{IMAGES}/namespaces/{project}/imagestreams/one").status_code == 200
    assert get_quota(owner, project, "images")["status"]["used"] == {STREAMS: "1"}
    assert owner.post(f"{IMAGES}/namespaces/{project}/imagestreamtags", json=tag).status_code == 201
    assert_status(new_stream(owner, project, "four"), 403, "Forbidden", exceeded("images", 2, 2))
    raised = {**made, "spec": {"hard": {STREAMS: "1k"}}}
    path = f"{CORE}/namespaces/{project}/resourcequotas/images"
    answer = world.cluster.admin.put(path, json=raised)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == {"hard": {STREAMS: "1k"}, "used": {STREAMS: "2"}}
    assert new_stream(owner, project, "four").status_code == 201


def test_the_tightest_of_several_quotas_is_named(world: World) -> None:
    project = project_of(world)
    admin = world.cluster.admin
    created(admin, project, "resourcequotas", quota("loose", {STREAMS: "5"}))
    created(
        admin,
        project,
        "resourcequotas",
        quota("tight", {"count/imagestreams.image.openshift.io": "1"}),
    )
    assert new_stream(world.owner.api, project, "first").status_code == 201
    refused = assert_status(new_stream(world.owner.api, project, "second"), 403, "Forbidden")
    count = "count/imagestreams.image.openshift.io"
    assert refused["message"].endswith(
        f"exceeded quota: tight, requested: {count}=1, used: {count}=1, limited: {count}=1"
    )
    loose = get_quota(world.owner.api, project, "loose")
    assert loose["status"]["used"] == {STREAMS: "1"}


def test_concurrent_creates_never_squeeze_past_the_quota(world: World) -> None:
    project = project_of(world)
    created(world.cluster.admin, project, "resourcequotas", quota("three", {STREAMS: "3"}))

    def attempt(index: int) -> int:
        api = world.cluster.api(world.owner.token)
        return new_stream(api, project, f"s{index}").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(attempt, range(12)))
    assert sorted(codes) == [201] * 3 + [403] * 9, codes
    assert get_quota(world.owner.api, project, "three")["status"]["used"] == {STREAMS: "3"}


def test_a_push_that_would_make_a_stream_beyond_the_quota_is_denied(world: World) -> None:
    project = project_of(world)
    created(world.cluster.admin, project, "resourcequotas", quota("one-stream", {STREAMS: "1"}))
    reg = registry_for(world)
    answer, first = push_manifest(reg, f"{project}/app", "v1", [random_bytes(500)])
    assert answer.status_code == 201, answer.text

    answer, refused = push_manifest(reg, f"{project}/other", "v1", [random_bytes(500)])
    error = assert_error(answer, 403, "DENIED")
    assert error["message"] == (
        f'imagestreams.image.openshift.io "other" is forbidden: {exceeded("one-stream", 1, 1)}'
    )
    assert reg.get_manifest(f"{project}/other", refused).status_code == 404
    assert world.cluster.admin.get(f"{IMAGES}/images/{refused}").status_code == 404
    # The stream that exists takes more pushes.
    answer, second = push_manifest(reg, f"{project}/app", "v2", [random_bytes(500)])
    assert answer.status_code == 201, answer.text
    assert history(world.owner.api, project, "app") == {"v1": [first], "v2": [second]}


# LimitRange openshift.io/Image


def storage_limit(maximum: str) -> dict[str, Any]:
    return limit_range("images", {"type": "openshift.io/Image", "max": {"storage": maximum}})


def size_message(size: str, limit: str) -> str:
    return (
        "requested usage of storage exceeds the maximum limit per openshift.io/Image "
        f"({size} > {limit})"
    )


def test_a_blob_over_the_size_limit_is_refused_at_upload_commit(world: World) -> None:
    project = project_of(world)
    created(world.cluster.admin, project, "limitranges", storage_limit("4Ki"))
    reg = registry_for(world)
    repository = f"{project}/app"
    big, small = random_bytes(5000), random_bytes(4096)
    digest = digest_of(big)

    # POST then PUT with the whole body.
    start = reg.start_upload(repository)
    location = start.headers["Location"]
    url = with_query(f"{reg.url}{location}", digest=digest)
    answer = reg.http.put(url, data=big, headers={"Content-Type": OCTET})
    assert assert_error(answer, 403, "DENIED")["message"] == size_message("5000", "4Ki")
    assert reg.http.get(f"{reg.url}{location}").status_code == 404  # the session is gone

    # A chunk, then the PUT that commits.
    start = reg.start_upload(repository)
    location = start.headers["Location"]
    chunk = reg.http.patch(
        f"{reg.url}{location}",
        data=big,
        headers={"Content-Type": OCTET, "Content-Range": f"0-{len(big) - 1}"},
    )
    assert chunk.status_code == 202, chunk.text
    answer = reg.http.put(with_query(f"{reg.url}{chunk.headers['Location']}", digest=digest))
    assert assert_error(answer, 403, "DENIED")["message"] == size_message("5000", "4Ki")

    # Monolithic: POST with the digest and the body.
    answer = reg.http.post(
        with_query(reg.v2(f"{repository}/blobs/uploads/"), digest=digest),
        data=big,
        headers={"Content-Type": OCTET},
    )
    assert assert_error(answer, 403, "DENIED")["message"] == size_message("5000", "4Ki")
    assert reg.head_blob(repository, digest).status_code == 404

    # At the limit is fine.
    reg.push_blob(repository, small)
    assert reg.head_blob(repository, digest_of(small)).status_code == 200


def test_an_image_over_the_size_limit_is_refused_at_its_manifest(world: World) -> None:
    project = project_of(world)
    created(world.cluster.admin, project, "limitranges", storage_limit("8Ki"))
    reg = registry_for(world)
    # Each layer fits; together (with the config) they do not.
    layers = [random_bytes(3000), random_bytes(3000), random_bytes(3000)]
    answer, digest = push_manifest(reg, f"{project}/app", "v1", layers)
    error = assert_error(answer, 403, "DENIED")
    assert error["message"].startswith(
        'imagestreammappings.image.openshift.io "app" is forbidden: requested usage of storage '
        "exceeds the maximum limit per openshift.io/Image ("
    )
    assert error["message"].endswith(" > 8Ki)")
    assert reg.get_manifest(f"{project}/app", digest).status_code == 404
    streams = world.owner.api.get(f"{IMAGES}/namespaces/{project}/imagestreams").json()
    assert streams["items"] == []
    answer, _ = push_manifest(reg, f"{project}/app", "v1", layers[:2])
    assert answer.status_code == 201, answer.text


def test_an_image_stream_mapping_over_the_size_limit_is_forbidden(world: World) -> None:
    project = project_of(world)
    created(world.cluster.admin, project, "limitranges", storage_limit("1Ki"))
    assert new_stream(world.owner.api, project, "app").status_code == 201
    digest = "sha256:" + "ab" * 32
    mapping = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamMapping",
        "metadata": {"name": "app"},
        "tag": "v1",
        "image": {
            "metadata": {"name": digest},
            "dockerImageReference": f"example.com/app@{digest}",
            "dockerImageMetadata": {"Size": 2048},
        },
    }
    answer = world.cluster.admin.post(
        f"{IMAGES}/namespaces/{project}/imagestreammappings", json=mapping
    )
    refused = assert_status(answer, 403, "Forbidden")
    assert refused["message"] == (
        'imagestreammappings.image.openshift.io "app" is forbidden: ' + size_message("2Ki", "1Ki")
    )


# LimitRange openshift.io/ImageStream


def stream_limits(**maximum: str) -> dict[str, Any]:
    return limit_range(
        "streams",
        {
            "type": "openshift.io/ImageStream",
            "max": {f"openshift.io/{name.replace('_', '-')}": v for name, v in maximum.items()},
        },
    )


def stream_message(stream: str, resource: str, used: int, limit: int) -> str:
    return (
        f'ImageStream.image.openshift.io "{stream}" is forbidden: requested usage of '
        f"openshift.io/{resource} exceeds the maximum limit per openshift.io/ImageStream "
        f"({used} > {limit})"
    )


def test_pushes_beyond_the_images_limit_are_denied(world: World) -> None:
    project = project_of(world)
    created(world.cluster.admin, project, "limitranges", stream_limits(images="2"))
    reg = registry_for(world)
    repository = f"{project}/app"
    layer = random_bytes(800)
    first = push_manifest(reg, repository, "v1", [layer], "one")
    second = push_manifest(reg, repository, "v2", [layer], "two")
    assert first[0].status_code == 201 and second[0].status_code == 201
    answer, third = push_manifest(reg, repository, "v3", [layer], "three")
    assert assert_error(answer, 403, "DENIED")["message"] == stream_message("app", "images", 3, 2)
    # An image the stream holds already may take another tag: no new image.
    again = reg.put_manifest(repository, "again", reg.get_manifest(repository, first[1]).content)
    assert again.status_code == 201, again.text
    # Another stream has limits of its own.
    other = push_manifest(reg, f"{project}/other", "v3", [layer], "three")
    assert other[0].status_code == 201
    assert history(world.owner.api, project, "app") == {
        "again": [first[1]],
        "v1": [first[1]],
        "v2": [second[1]],
    }
    assert third == other[1]


def test_tags_beyond_the_image_tags_limit_are_forbidden(world: World) -> None:
    project = project_of(world)
    created(world.cluster.admin, project, "limitranges", stream_limits(image_tags="1"))
    owner = world.owner_cli
    owner.ok("tag", "--source=docker", "example.com/app:1", f"{project}/app:one")
    # The same source again counts once.
    owner.ok("tag", "--source=docker", "example.com/app:1", f"{project}/app:same")
    error = owner.fails("tag", "--source=docker", "example.com/app:2", f"{project}/app:two")
    assert stream_message("app", "image-tags", 2, 1) in error
    answer = world.owner.api.get(f"{IMAGES}/namespaces/{project}/imagestreams/app")
    tags = [t["name"] for t in answer.json()["spec"]["tags"]]
    assert sorted(tags) == ["one", "same"]
    # An update of the stream that adds a reference is refused alike.
    stream = answer.json()
    stream["spec"]["tags"].append(
        {"name": "three", "from": {"kind": "DockerImage", "name": "example.com/app:3"}}
    )
    path = f"{IMAGES}/namespaces/{project}/imagestreams/app"
    refused = assert_status(world.owner.api.put(path, json=stream), 403, "Forbidden")
    assert refused["message"] == stream_message("app", "image-tags", 2, 1)
    assert refused["details"]["kind"] == "ImageStream"


# What users read


def test_wharf_describe_quota_shows_used_and_hard(world: World) -> None:
    project = project_of(world)
    admin = world.cluster.admin
    created(admin, project, "resourcequotas", quota("images", {STREAMS: "3", "secrets": "10"}))
    created(admin, project, "resourcequotas", quota("more", {STREAMS: "1k"}))
    for name in ("a", "b"):
        assert new_stream(world.owner.api, project, name).status_code == 201
    shown = world.owner_cli.ok("describe", "quota", "images", "-n", project)
    assert shown == (
        "Name:                      images\n"
        f"Namespace:                 {project}\n"
        "Resource                   Used  Hard\n"
        "--------                   ----  ----\n"
        "openshift.io/imagestreams  2     3\n"
        "secrets                    0     10\n"
    )
    both = world.owner_cli.ok("describe", "quota", "-n", project)
    assert both.count("Name:") == 2
    assert "openshift.io/imagestreams  2     1k\n" in both
    error = world.owner_cli.fails("describe", "quota", "missing", "-n", project)
    assert "not found" in error
    # kubectl's columns for `get quota`.
    table = world.owner_cli.ok("get", "quota", "-n", project)
    assert table.splitlines()[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert "openshift.io/imagestreams: 2/3, secrets: 0/10" in table


def test_wharf_describe_limits_shows_each_limit(world: World) -> None:
    project = project_of(world)
    created(
        world.cluster.admin,
        project,
        "limitranges",
        limit_range(
            "limits",
            {"type": "openshift.io/Image", "max": {"storage": "1024Mi"}},
            {"type": "openshift.io/ImageStream", "max": {"openshift.io/images": "20"}},
        ),
    )
    shown = world.owner_cli.ok("describe", "limits", "limits", "-n", project)
    lines = shown.splitlines()
    assert lines[0].split() == ["Name:", "limits"]
    assert lines[4].split() == ["openshift.io/Image", "storage", "-", "1Gi", "-", "-", "-"]
    assert lines[5].split() == [
        "openshift.io/ImageStream",
        "openshift.io/images",
        "-",
        "20",
        "-",
        "-",
        "-",
    ]


def test_kubectl_creates_a_quota_with_its_protobuf_body(world: World) -> None:
    project = project_of(world)
    kubectl = world.cluster.kubectl()
    kubectl.run("create", "quota", "images", f"--hard={STREAMS}=1", "-n", project)
    found = get_quota(world.owner.api, project, "images")
    assert found["spec"]["hard"] == {STREAMS: "1"}
    assert new_stream(world.owner.api, project, "a").status_code == 201
    assert_status(
        new_stream(world.owner.api, project, "b"), 403, "Forbidden", exceeded("images", 1, 1)
    )
    shown = kubectl.json("get", "quota", "images", "-n", project)
    assert shown["status"]["used"] == {STREAMS: "1"}


def test_status_used_is_current_in_a_watch(world: World) -> None:
    project = project_of(world)
    made = created(world.cluster.admin, project, "resourcequotas", quota("q", {STREAMS: "5"}))
    assert new_stream(world.owner.api, project, "a").status_code == 201
    # A later change of the quota shows the usage of that moment.
    labelled = {**made, "metadata": {**made["metadata"], "labels": {"seen": "yes"}}}
    path = f"{CORE}/namespaces/{project}/resourcequotas/q"
    assert world.cluster.admin.put(path, json=labelled).status_code == 200
    query = {
        "watch": "true",
        "resourceVersion": made["metadata"]["resourceVersion"],
        "timeoutSeconds": "5",
    }
    with world.owner.api.get(
        f"{CORE}/namespaces/{project}/resourcequotas", params=query, stream=True
    ) as answer:
        assert answer.status_code == 200, answer.text
        event = json.loads(next(line for line in answer.iter_lines() if line))
    assert event["type"] == "MODIFIED"
    assert event["object"]["status"]["used"] == {STREAMS: "1"}


# Pruning by size


def test_prune_over_size_limit_reads_the_limit_ranges(world: World) -> None:
    project = project_of(world)
    reg = registry_for(world)
    repository = f"{project}/app"
    big, big_digest = push_manifest(reg, repository, "latest", [random_bytes(6000)])
    small, small_digest = push_manifest(reg, repository, "latest", [random_bytes(500)])
    assert big.status_code == 201 and small.status_code == 201
    created(world.cluster.admin, project, "limitranges", storage_limit("4Ki"))

    dry = world.admin_cli.run("adm", "prune", "images", "--prune-over-size-limit")
    assert dry.code == 0, str(dry)
    assert big_digest in dry.out and small_digest not in dry.out
    assert "would delete 1 image stream tag history item, 1 image," in dry.out

    done = world.admin_cli.run(
        "adm",
        "prune",
        "images",
        "--prune-over-size-limit",
        "--confirm",
        "--registry-url",
        world.cluster.wharf.host,
    )
    assert done.code == 0, str(done)
    assert history(world.owner.api, project, "app") == {"latest": [small_digest]}
    assert world.cluster.admin.get(f"{IMAGES}/images/{big_digest}").status_code == 404
    assert reg.get_manifest(repository, big_digest).status_code == 404


# What podman prints


@pytest.mark.clients
def test_podman_prints_the_quota_that_denied_the_push(
    world: World, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.support.clients import NO_TLS, Clients

    project = project_of(world)
    created(world.cluster.admin, project, "resourcequotas", quota("one-stream", {STREAMS: "1"}))
    assert new_stream(world.owner.api, project, "taken").status_code == 201
    clients = Clients(tmp_path_factory.mktemp("podman"))
    try:
        storage = clients.storage("pusher")
        image = clients.build(storage, "app", [{"/app/hello.txt": b"hello\n"}])
        host = world.cluster.wharf.host
        login = clients.podman(
            storage, "login", NO_TLS, "-u", world.owner.name, "-p", world.owner.token, host
        )
        assert login.stdout.strip() == "Login Succeeded!", login
        pushed = clients.podman(
            storage, "push", NO_TLS, image.reference, f"{host}/{project}/app:1.0", check=False
        )
        assert pushed.returncode != 0, pushed
        lines = [line for line in pushed.stderr.splitlines() if line.startswith("Error: ")]
        assert len(lines) == 1, pushed.stderr
        assert lines[0].endswith(
            f'denied: imagestreams.image.openshift.io "app" is forbidden: '
            f"{exceeded('one-stream', 1, 1)}"
        ), lines[0]
    finally:
        clients.close()
