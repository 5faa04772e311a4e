"""Importing images from other registries, against real parts: an integrated Wharf, Debian's
docker-registry as the upstream (open, and behind htpasswd with the credentials in a
dockerconfigjson secret), the ImageStreamImport API and `wharf import-image`.

Bad input first; then imports of an image, a multi-arch index in both import modes and a
whole repository; each fault (unreachable, 401, 404, a digest that does not match, a quota)
recorded per image with nothing partial stored; spec tags that import, and a scheduled tag
that picks up a changed upstream tag."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli, new_cli
from tests.support.cluster import Api, Cluster, bearer, registry_session
from tests.support.server import free_port, running_wharf, wait_until
from tests.support.upstream import Upstream, running_upstream

IMAGES = "/apis/image.openshift.io/v1"
CREDENTIALS = ("importer", "import-secret-7")
INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class World:
    cluster: Cluster
    cli: Cli
    open: Upstream  # no authentication
    locked: Upstream  # htpasswd: CREDENTIALS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("import")
    with (
        running_upstream(base / "open") as open_upstream,
        running_upstream(base / "locked", credentials=CREDENTIALS) as locked,
        running_wharf(base / "data", "--import-interval", "1", integrated=True) as wharf,
    ):
        cli = new_cli(base / "cli")
        cli.login_admin(wharf)
        yield World(Cluster(wharf, base), cli, open_upstream, locked)


def project(world: World) -> str:
    return world.cluster.new_project(world.cluster.admin)


def import_body(name: str, source: str, tag: str | None = "latest", **extra: Any) -> Any:
    image: dict[str, Any] = {
        "from": {"kind": "DockerImage", "name": source},
        "importPolicy": {"insecure": True, **extra.pop("policy", {})},
    }
    if tag is not None:
        image["to"] = {"name": tag}
    image.update(extra)
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamImport",
        "metadata": {"name": name},
        "spec": {"import": True, "images": [image]},
    }


def post_import(api: Api, namespace: str, body: Any, status: int = 201) -> Any:
    response = api.post(f"{IMAGES}/namespaces/{namespace}/imagestreamimports", json=body)
    assert response.status_code == status, response.text
    return response.json()


def stream(api: Api, namespace: str, name: str) -> Any:
    response = api.get(f"{IMAGES}/namespaces/{namespace}/imagestreams/{name}")
    return response.json() if response.status_code == 200 else None


def history(api: Api, namespace: str, name: str, tag: str) -> list[dict[str, Any]]:
    found = stream(api, namespace, name) or {}
    for entry in (found.get("status") or {}).get("tags") or []:
        if entry["tag"] == tag:
            return list(entry["items"])
    return []


def conditions(api: Api, namespace: str, name: str, tag: str) -> list[dict[str, Any]]:
    found = stream(api, namespace, name) or {}
    for entry in (found.get("status") or {}).get("tags") or []:
        if entry["tag"] == tag:
            return list(entry.get("conditions") or [])
    return []


def image_exists(api: Api, digest: str) -> bool:
    return api.get(f"{IMAGES}/images/{digest}").status_code == 200


def pull_secret(api: Api, namespace: str, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    response = api.post(
        f"/api/v1/namespaces/{namespace}/secrets",
        json={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "upstream-pull"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(config).decode()},
        },
    )
    assert response.status_code == 201, response.text


# Bad input


@pytest.mark.parametrize(
    "spec, field",
    [
        (None, "spec"),
        ({"import": True}, "spec"),
        ({"images": [{"from": {"kind": "ImageStreamTag", "name": "a:b"}}]}, "spec.images[0].from"),
        ({"images": [{"from": {"kind": "DockerImage", "name": "UP/per"}}]}, "spec.images[0].from"),
        (
            {"images": [{"from": {"kind": "DockerImage", "name": "a"}, "to": {"name": "b@d"}}]},
            "spec.images[0].to.name",
        ),
        (
            {
                "images": [
                    {
                        "from": {"kind": "DockerImage", "name": "a"},
                        "importPolicy": {"importMode": "x"},
                    }
                ]
            },
            "spec.images[0].importPolicy.importMode",
        ),
        (
            {
                "images": [
                    {"from": {"kind": "DockerImage", "name": "a"}, "referencePolicy": {"type": "x"}}
                ]
            },
            "spec.images[0].referencePolicy.type",
        ),
        ({"images": [{"from": {"kind": "DockerImage", "name": "a"}}] * 51}, "spec.images"),
        ({"repository": {"from": {"kind": "DockerImage", "name": "a b"}}}, "spec.repository.from"),
    ],
)
def test_bad_imports_are_422_naming_the_field(world: World, spec: Any, field: str) -> None:
    api = world.cluster.admin
    body = {"metadata": {"name": "app"}, **({"spec": spec} if spec is not None else {})}
    answer = post_import(api, "default", body, 422)
    assert answer["kind"] == "Status" and answer["reason"] == "Invalid", answer
    assert any(c["field"].startswith(field) for c in answer["details"]["causes"]), answer


def test_bad_input_elsewhere(world: World) -> None:
    api = world.cluster.admin
    source = f"{world.open.host}/lib/none:v1"
    post_import(api, "no-such-project", import_body("app", source), 404)
    post_import(api, "default", import_body("Bad_Name", source), 422)
    cli = world.cli
    assert "--confirm" in cli.fails(
        "import-image", "brand-new", f"--from={source}", "-n", "default"
    )
    assert "reference-policy" in cli.fails(
        "import-image", "x", f"--from={source}", "--reference-policy=mine"
    )
    assert "import-mode" in cli.fails("import-image", "x", f"--from={source}", "--import-mode=all")
    assert "--all" in cli.fails("import-image", "x:v1", f"--from={source}", "--all")
    assert "invalid --from" in cli.fails("import-image", "x", "--from=Not A Ref")
    assert "NAME[:TAG]" in cli.fails("import-image", "a/b", f"--from={source}")
    assert "another registry" in cli.fails("tag", "--scheduled", "app:a", "app:b")


def test_importing_needs_the_right_to_create_imports(world: World) -> None:
    namespace = project(world)
    viewer = world.cluster.user("viewer")
    response = world.cluster.admin.post(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        json={
            "metadata": {"name": "viewer"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [{"kind": "User", "name": viewer.name}],
        },
    )
    assert response.status_code == 201, response.text
    image = world.open.push_image("lib/rbac", "v1")
    answer = post_import(
        viewer.api, namespace, import_body("app", f"{world.open.host}/lib/rbac:v1"), 403
    )
    assert answer["reason"] == "Forbidden"
    assert not image_exists(world.cluster.admin, image.digest)


# Imports


def test_import_image_with_the_cli_and_a_pull_secret(world: World) -> None:
    namespace = project(world)
    api, cli = world.cluster.admin, world.cli
    pushed = world.locked.push_image("team/app", "1.0")
    source = f"{world.locked.host}/team/app:1.0"
    args = (
        "import-image",
        "app:1.0",
        f"--from={source}",
        "--confirm",
        "--insecure",
        "-n",
        namespace,
    )

    # No credentials yet: refused upstream, and nothing is kept (not even a new stream).
    assert "Unauthorized" in cli.fails(*args) or "refused access" in cli.fails(*args)
    assert stream(api, namespace, "app") is None
    assert not image_exists(api, pushed.digest)

    pull_secret(api, namespace, world.locked.host, *CREDENTIALS)
    out = cli.ok(*args)
    assert "imagestream.image.openshift.io/app imported" in out, out
    assert pushed.digest in out and f"{world.locked.host}/team/app@{pushed.digest}" in out, out

    items = history(api, namespace, "app", "1.0")
    assert [i["image"] for i in items] == [pushed.digest]
    assert items[0]["dockerImageReference"] == f"{world.locked.host}/team/app@{pushed.digest}"
    image = api.get(f"{IMAGES}/images/{pushed.digest}").json()
    assert image["dockerImageMetadata"]["Architecture"] == "amd64"
    assert image["dockerImageMetadata"]["Config"]["Cmd"] == ["/bin/true"]
    # Not pushed here: the pruner leaves an imported image alone unless told to prune all.
    assert "openshift.io/image.managed" not in (image["metadata"].get("annotations") or {})
    spec_tag = stream(api, namespace, "app")["spec"]["tags"][0]
    assert spec_tag["from"] == {"kind": "DockerImage", "name": source}

    # The manifest is served by Wharf's registry at once (its layers stay upstream).
    registry = registry_session(world.cluster.wharf, bearer(world.cluster.admin_token))
    response = registry.get(
        f"https://{world.cluster.wharf.host}/v2/{namespace}/app/manifests/1.0",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 200 and response.content == pushed.payload

    # Again without --from: from the tag's source; the same image adds no event.
    cli.ok("import-image", "app:1.0", "-n", namespace)
    assert len(history(api, namespace, "app", "1.0")) == 1


def test_dry_run_reads_upstream_and_stores_nothing(world: World) -> None:
    namespace = project(world)
    api = world.cluster.admin
    pushed = world.open.push_image("lib/dry", "v1")
    body = import_body("dry", f"{world.open.host}/lib/dry:v1")
    body["spec"]["import"] = False
    answer = post_import(api, namespace, body)
    result = answer["status"]["images"][0]
    assert result["status"]["status"] == "Success"
    assert result["image"]["metadata"]["name"] == pushed.digest
    assert stream(api, namespace, "dry") is None and not image_exists(api, pushed.digest)


def test_a_multi_arch_index_whole_or_by_platform(world: World) -> None:
    namespace = project(world)
    api = world.cluster.admin
    index = world.open.push_index("lib/multi", "v1")
    arm, amd = index.children
    source = f"{world.open.host}/lib/multi:v1"

    whole = post_import(
        api,
        namespace,
        import_body("multi", source, "whole", policy={"importMode": "PreserveOriginal"}),
    )["status"]["images"][0]
    assert whole["status"]["status"] == "Success", whole
    assert whole["image"]["dockerImageManifestMediaType"] == INDEX
    assert [m["metadata"]["name"] for m in whole["manifests"]] == [arm.digest, amd.digest]
    assert [i["image"] for i in history(api, namespace, "multi", "whole")] == [index.digest]
    assert all(image_exists(api, d) for d in (index.digest, arm.digest, amd.digest))

    legacy = post_import(api, namespace, import_body("multi", source, "amd64"))["status"]["images"][
        0
    ]
    assert legacy["image"]["metadata"]["name"] == amd.digest
    assert legacy["image"]["dockerImageMetadata"]["Architecture"] == "amd64"
    item = history(api, namespace, "multi", "amd64")[0]
    assert (item["image"], item["dockerImageReference"]) == (
        amd.digest,
        f"{world.open.host}/lib/multi@{amd.digest}",
    )


def test_import_every_tag_of_a_repository(world: World) -> None:
    namespace = project(world)
    api = world.cluster.admin
    pushed = {tag: world.open.push_image("lib/many", tag) for tag in ("a", "b", "c")}
    out = world.cli.ok(
        "import-image",
        "many",
        f"--from={world.open.host}/lib/many",
        "--all",
        "--confirm",
        "--insecure",
        "-n",
        namespace,
    )
    assert "imported" in out
    for tag, image in pushed.items():
        assert [i["image"] for i in history(api, namespace, "many", tag)] == [image.digest]


# Faults


def test_faults_are_recorded_per_image_and_store_nothing(world: World, tmp_path: Path) -> None:
    namespace = project(world)
    api = world.cluster.admin
    good = world.open.push_image("lib/faults", "good")
    post_import(api, namespace, import_body("faults", f"{world.open.host}/lib/faults:good", "good"))

    with running_upstream(tmp_path / "broken") as broken:
        first = broken.push_image("lib/app", "a")
        second = broken.push_image("lib/app", "b")
        # Its storage now answers the second manifest's digest with other bytes.
        blobs = tmp_path / "broken/upstream-data/docker/registry/v2/blobs/sha256"
        (blobs / second.digest[7:9] / second.digest[7:] / "data").write_bytes(first.payload)
        cases = {
            "unreachable": (f"127.0.0.1:{free_port()}/lib/app:v1", "Unreachable"),
            "unauthorized": (f"{world.locked.host}/team/app:1.0", "Unauthorized"),
            "missing": (f"{world.open.host}/lib/faults:nope", "NotFound"),
            "mismatch": (f"{broken.host}/lib/app@{second.digest}", "Invalid"),
        }
        for tag, (source, reason) in cases.items():
            result = post_import(api, namespace, import_body("faults", source, tag))
            status = result["status"]["images"][0]["status"]
            assert (status["status"], status["reason"]) == ("Failure", reason), status
            assert "\n" not in status["message"] and CREDENTIALS[1] not in status["message"]
            assert history(api, namespace, "faults", tag) == []
            found = conditions(api, namespace, "faults", tag)
            assert [(c["type"], c["status"], c["reason"]) for c in found] == [
                ("ImportSuccess", "False", reason)
            ]
        assert not image_exists(api, second.digest)
    assert [i["image"] for i in history(api, namespace, "faults", "good")] == [good.digest]

    # Upstream down, then back: the failure is recorded, then a good import clears it.
    world.open.stop()
    try:
        down = post_import(
            api, namespace, import_body("faults", f"{world.open.host}/lib/faults:good", "again")
        )
        assert down["status"]["images"][0]["status"]["reason"] == "Unreachable"
    finally:
        world.open.start()
    post_import(
        api, namespace, import_body("faults", f"{world.open.host}/lib/faults:good", "again")
    )
    assert conditions(api, namespace, "faults", "again") == []
    assert [i["image"] for i in history(api, namespace, "faults", "again")] == [good.digest]


def test_a_quota_refuses_an_import_into_a_new_stream(world: World) -> None:
    namespace = project(world)
    api = world.cluster.admin
    response = api.post(
        f"/api/v1/namespaces/{namespace}/resourcequotas",
        json={
            "metadata": {"name": "streams"},
            "spec": {"hard": {"openshift.io/imagestreams": "0"}},
        },
    )
    assert response.status_code == 201, response.text
    pushed = world.open.push_image("lib/quota", "v1")
    result = post_import(api, namespace, import_body("q", f"{world.open.host}/lib/quota:v1"))
    status = result["status"]["images"][0]["status"]
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "Forbidden", 403)
    assert "exceeded quota" in status["message"]
    assert stream(api, namespace, "q") is None and not image_exists(api, pushed.digest)


# Spec tags


def test_spec_tags_import_and_scheduled_ones_follow_upstream(world: World) -> None:
    namespace = project(world)
    api = world.cluster.admin
    first = world.open.push_image("lib/sched", "v1")
    once = world.open.push_image("lib/once", "v1")
    source = f"{world.open.host}/lib/sched:v1"
    response = api.post(
        f"{IMAGES}/namespaces/{namespace}/imagestreams",
        json={
            "metadata": {"name": "sched"},
            "spec": {
                "tags": [
                    {
                        "name": "v1",
                        "from": {"kind": "DockerImage", "name": source},
                        "importPolicy": {"insecure": True, "scheduled": True},
                    },
                    {
                        "name": "missing",
                        "from": {"kind": "DockerImage", "name": f"{world.open.host}/lib/sched:no"},
                        "importPolicy": {"insecure": True},
                    },
                ]
            },
        },
    )
    assert response.status_code == 201, response.text
    # `wharf tag` of an outside image imports it too (once: it is not scheduled).
    world.cli.ok(
        "tag",
        "--source=docker",
        "--insecure",
        f"{world.open.host}/lib/once:v1",
        "sched:once",
        "-n",
        namespace,
    )

    def images(tag: str) -> list[str]:
        return [i["image"] for i in history(api, namespace, "sched", tag)]

    wait_until(lambda: images("v1") == [first.digest] and images("once") == [once.digest], 30)
    wait_until(lambda: bool(conditions(api, namespace, "sched", "missing")), 30)
    assert conditions(api, namespace, "sched", "missing")[0]["reason"] == "NotFound"

    # The upstream tag moves: the scheduled check (every second here) adds an event.
    second = world.open.push_image("lib/sched", "v1")
    world.open.push_image("lib/once", "v1")
    wait_until(lambda: images("v1") == [second.digest, first.digest], 30)
    assert images("once") == [once.digest]
    tag = api.get(f"{IMAGES}/namespaces/{namespace}/imagestreamtags/sched:v1").json()
    assert tag["image"]["metadata"]["name"] == second.digest


def test_the_openapi_document_has_the_kind(world: World) -> None:
    document = world.cluster.admin.get("/openapi/v3/apis/image.openshift.io/v1").json()
    path = "/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreamimports"
    assert set(document["paths"][path]) >= {"post"}, document["paths"].get(path)
