"""Logging in to the integrated registry as one logs in to OpenShift's: the anonymous probe and
its Bearer challenge, /openshift/token echoing a cluster token, any token as a Basic password
(whatever the user name) or as a Bearer token, and the answers to every kind of bad credential.
Real HTTP against a Wharf of this module's own, and the real podman for `podman login`."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.cluster import (
    Cluster,
    User,
    basic,
    bearer,
    group_subject,
    integrated_cluster,
    registry_session,
    service_account_subject,
    unique,
    user_subject,
)
from tests.support.oci import Image, Registry, assert_error, errors_of
from tests.support.server import wait_until

ACCESS_DENIED = 'Basic realm=openshift,error="access denied"'
UNDECODABLE = 'Basic realm=openshift,error="failed to decode credentials"'
MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class World:
    cluster: Cluster
    alice: User  # admin of `project`, where she pushed `repository`:latest
    project: str
    repository: str
    image: Image
    builder_token: str  # of the project's `builder` service account

    @property
    def url(self) -> str:
        return self.cluster.wharf.url

    @property
    def host(self) -> str:
        return self.cluster.wharf.host

    def session(self, authorization: str | None = None) -> requests.Session:
        return registry_session(self.cluster.wharf, authorization)

    def get(self, path: str, authorization: str | None = None, **kwargs: Any) -> requests.Response:
        with self.session(authorization) as session:
            return session.get(f"{self.url}{path}", timeout=30, **kwargs)

    def manifest_path(self, repository: str | None = None) -> str:
        return f"/v2/{repository or self.repository}/manifests/latest"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with integrated_cluster(tmp_path_factory.mktemp("registry-auth")) as cluster:
        alice = cluster.user("alice")
        project = cluster.new_project(alice.api)
        repository = f"{project}/app"
        with registry_session(cluster.wharf, bearer(alice.token)) as session:
            image = Registry(cluster.wharf.url, session).push_image(repository, "latest", seed=1)
        builder_token = cluster.service_account_token(project, "builder")
        yield World(cluster, alice, project, repository, image, builder_token)


def assert_access_denied(response: requests.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text)
    assert response.headers.get("WWW-Authenticate") == ACCESS_DENIED, response.headers
    if response.request.method != "HEAD":
        assert_error(response, 401, "UNAUTHORIZED")


def assert_pulls(world: World, authorization: str) -> None:
    response = world.get(world.manifest_path(), authorization, headers={"Accept": MANIFEST_TYPES})
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.content == world.image.payload
    assert response.headers["Docker-Content-Digest"] == world.image.digest


def b64(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode()


# The anonymous probe and the token endpoint


def test_anonymous_probe_is_sent_to_the_token_endpoint(world: World) -> None:
    response = world.get("/v2/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="https://{world.host}/openshift/token"'
    )
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.json() == {
        "errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": []}]
    }


def test_realm_follows_forwarded_scheme_and_host(world: World) -> None:
    with world.session() as session:
        response = session.get(
            f"{world.url}/v2/",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.example.com"},
            timeout=30,
        )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="https://registry.example.com/openshift/token"'
    )


@pytest.mark.parametrize(
    ("headers", "realm"),
    [
        # Proxies append to these headers: the first value is the client-facing one.
        (
            {"X-Forwarded-Host": "a.example.com, b.internal", "X-Forwarded-Proto": "https, http"},
            "https://a.example.com/openshift/token",
        ),
        (
            {"X-Forwarded-Host": "reg.example.com", "X-Forwarded-Port": "8443"},
            "https://reg.example.com:8443/openshift/token",
        ),
        (
            {"X-Forwarded-Host": "reg.example.com:5000", "X-Forwarded-Port": "443"},
            "https://reg.example.com:443/openshift/token",
        ),
        ({"X-Forwarded-Host": "[fd00::1]:5000"}, "https://[fd00::1]:5000/openshift/token"),
        ({"X-Forwarded-Proto": "http"}, "http://{host}/openshift/token"),
        # Nothing that is not a scheme or a host gets into the challenge.
        ({"X-Forwarded-Proto": "javascript"}, "https://{host}/openshift/token"),
        ({"X-Forwarded-Host": 'evil"host'}, "https://{host}/openshift/token"),
        ({"X-Forwarded-Host": "evil.example.com/path"}, "https://{host}/openshift/token"),
        ({"Host": 'bad"host'}, "https://{host}/openshift/token"),
    ],
    ids=["lists", "port", "port-replaces", "ipv6", "http", "bad-proto", "quote", "path", "host"],
)
def test_realm_from_forwarded_headers(world: World, headers: dict[str, str], realm: str) -> None:
    with world.session() as session:
        response = session.get(f"{world.url}/v2/", headers=headers, timeout=30)
    assert response.status_code == 401
    expected = realm.format(host=world.host)
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{expected}"'


@pytest.mark.parametrize("scheme", ["Digest realm=x", "Token abc", "Negotiate abc"])
def test_other_schemes_get_the_bearer_challenge(world: World, scheme: str) -> None:
    response = world.get(world.manifest_path(), scheme)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="https://')


def test_token_endpoint_echoes_a_valid_token(world: World) -> None:
    response = world.get("/openshift/token", basic("anything", world.alice.token))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    # The registry issues nothing: the cluster token comes back, with no expires_in.
    assert response.json() == {"token": world.alice.token, "access_token": world.alice.token}


def test_token_endpoint_with_scopes_as_clients_ask(world: World) -> None:
    with world.session(basic("unused", world.alice.token)) as session:
        response = session.get(
            f"{world.url}/openshift/token",
            params={
                "account": "unused",
                "service": "wharf",
                "scope": [
                    f"repository:{world.repository}:pull,push",
                    # The token endpoint checks names, not rights: those come with each request.
                    f"repository:{unique('other')}/x:pull",
                ],
            },
            timeout=30,
        )
    assert response.status_code == 200, response.text
    assert response.json() == {"token": world.alice.token, "access_token": world.alice.token}


def test_token_endpoint_without_credentials_gives_anonymous(world: World) -> None:
    response = world.get("/openshift/token")
    assert response.status_code == 200
    assert response.json() == {"token": "anonymous", "access_token": "anonymous"}


def test_anonymous_token_reaches_the_base_but_no_repository(world: World) -> None:
    assert world.get("/v2/", bearer("anonymous")).json() == {}
    assert world.get("/v2/", basic("anything", "anonymous")).json() == {}
    assert_access_denied(world.get(world.manifest_path(), bearer("anonymous")))


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(bearer("sha256~" + "A" * 43), id="forged-bearer"),
        pytest.param(basic("user", "sha256~" + "A" * 43), id="forged-basic"),
        pytest.param(basic("user", "not-a-token"), id="garbage"),
        pytest.param(basic("user", "x" * 5000), id="huge"),
        pytest.param(basic("user", "sha256~tok\u00e9n"), id="non-ascii"),
    ],
)
def test_token_endpoint_refuses_invalid_tokens_with_an_empty_401(
    world: World, authorization: str
) -> None:
    response = world.get("/openshift/token", authorization)
    assert response.status_code == 401
    assert response.content == b""


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!", id="not-base64"),
        pytest.param("Basic " + b64("no-colon-here"), id="no-colon"),
        pytest.param("Basic " + b64(b"\xff\xfe:\xff"), id="not-utf8"),
        pytest.param("Basic " + b64("user:"), id="empty-password"),
        pytest.param("Basic", id="nothing"),
        pytest.param("Bearer sometoken", id="bearer"),
    ],
)
def test_token_endpoint_refuses_headers_that_are_not_basic_credentials(
    world: World, header: str
) -> None:
    response = world.get("/openshift/token", header)
    assert response.status_code == 401
    assert response.content == b""


@pytest.mark.parametrize(
    "scope",
    [
        "repository:onlyone:pull",
        "repository:a/b/c:pull,push",
        "repository:/x:pull",
        "repository:x/:pull",
        "repository(plugin):onlyone:pull",
        "signature:onlyone:get",
    ],
)
def test_token_endpoint_refuses_repository_names_outside_project_slash_name(
    world: World, scope: str
) -> None:
    # Refused whoever asks, before the credentials are looked at.
    for authorization in (None, basic("user", world.alice.token)):
        response = world.get("/openshift/token", authorization, params={"scope": scope})
        assert response.status_code == 401, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        body = response.json()
        assert list(body) == ["details"], body
        assert "<project>/<name>" in body["details"], body


def test_token_endpoint_ignores_malformed_scopes(world: World) -> None:
    # As OpenShift: a scope that does not parse is left out, not refused.
    response = world.get("/openshift/token", params={"scope": ["garbage", "registry"]})
    assert response.status_code == 200
    assert response.json()["token"] == "anonymous"


def test_token_endpoint_is_get_only(world: World) -> None:
    with world.session(basic("u", world.alice.token)) as session:
        response = session.post(f"{world.url}/openshift/token", timeout=30)
    assert response.status_code == 405


# Credentials on every request


def test_client_flow_probe_token_then_bearer(world: World) -> None:
    """What podman and docker do: probe, follow the realm with Basic, retry with Bearer."""
    probe = world.get(world.manifest_path())
    assert probe.status_code == 401
    realm = probe.headers["WWW-Authenticate"].removeprefix('Bearer realm="').removesuffix('"')
    assert realm == f"{world.url}/openshift/token"
    with world.session(basic("whoever", world.alice.token)) as session:
        token = session.get(
            realm, params={"scope": f"repository:{world.repository}:pull"}, timeout=30
        ).json()["token"]
    assert_pulls(world, bearer(token))
    assert world.get("/v2/", bearer(token)).json() == {}


@pytest.mark.parametrize("user", ["anything", "alice", "kubeadmin", "", "x" * 300, "us\u00e9r"])
def test_basic_password_is_the_token_and_the_user_name_is_ignored(world: World, user: str) -> None:
    authorization = "Basic " + b64(f"{user}:{world.alice.token}")
    response = world.get("/v2/", authorization)
    assert response.status_code == 200
    assert response.json() == {}
    assert_pulls(world, authorization)


def test_bearer_token_works_everywhere(world: World) -> None:
    authorization = bearer(world.alice.token)
    assert world.get("/v2/", authorization).json() == {}
    assert_pulls(world, authorization)
    tags = world.get(f"/v2/{world.repository}/tags/list", authorization)
    assert tags.json() == {"name": world.repository, "tags": ["latest"]}
    with world.session(authorization) as session:
        pushed = Registry(world.url, session).push_image(world.repository, "bearer", seed=2)
    assert pushed.response.status_code == 201


def test_user_name_with_a_colon_fails(world: World) -> None:
    """Basic splits at the first colon: the password is then `serviceaccount:...:<token>`."""
    account = f"system:serviceaccount:{world.project}:builder"
    for token in (world.builder_token, world.alice.token):
        authorization = "Basic " + b64(f"{account}:{token}")
        assert_access_denied(world.get("/v2/", authorization))
        assert_access_denied(world.get(world.manifest_path(), authorization))
        token_answer = world.get("/openshift/token", authorization)
        assert token_answer.status_code == 401
        assert token_answer.content == b""


def test_service_account_tokens_work(world: World) -> None:
    token = world.builder_token
    assert world.get("/openshift/token", basic("x", token)).json() == {
        "token": token,
        "access_token": token,
    }
    # `oc registry login --service-account` names the user with dashes, not colons.
    user = f"system-serviceaccount-{world.project}-builder"
    for authorization in (basic(user, token), bearer(token)):
        assert world.get("/v2/", authorization).json() == {}
        assert_pulls(world, authorization)
    with world.session(bearer(token)) as session:
        pushed = Registry(world.url, session).push_image(world.repository, "from-builder", seed=3)
    assert pushed.response.status_code == 201


# Bad credentials on /v2/


@pytest.fixture(scope="module")
def expired_token(world: World) -> str:
    return world.cluster.expired_token(world.alice.name)


def bad_tokens(world: World, expired: str) -> dict[str, str]:
    return {
        "forged": "sha256~" + secrets.token_urlsafe(32),
        "forged-service-account": "wharfsa~" + secrets.token_urlsafe(32),
        "truncated": world.alice.token[:-4],
        "extended": world.alice.token + "A",
        "expired": expired,
        "garbage": "this is not a token",
        "huge": "x" * 5000,
    }


@pytest.mark.parametrize(
    "name",
    ["forged", "forged-service-account", "truncated", "extended", "expired", "garbage", "huge"],
)
@pytest.mark.parametrize("as_basic", [False, True], ids=["bearer", "basic"])
def test_bad_tokens_are_denied_on_every_endpoint(
    world: World, expired_token: str, name: str, as_basic: bool
) -> None:
    token = bad_tokens(world, expired_token)[name]
    authorization = basic("user", token) if as_basic else bearer(token)
    for path in (
        "/v2/",
        "/v2/_catalog",
        world.manifest_path(),
        f"/v2/{world.repository}/tags/list",
        f"/v2/{world.repository}/blobs/{world.image.digest}",
    ):
        assert_access_denied(world.get(path, authorization))
    with world.session(authorization) as session:
        assert_access_denied(session.head(f"{world.url}{world.manifest_path()}", timeout=30))
        assert_access_denied(
            session.post(f"{world.url}/v2/{world.repository}/blobs/uploads/", timeout=30)
        )
    token_answer = world.get("/openshift/token", basic("user", token))
    assert token_answer.status_code == 401
    assert token_answer.content == b""


def test_oversized_authorization_header_is_a_client_error(world: World) -> None:
    for path in ("/openshift/token", "/v2/", world.manifest_path()):
        response = world.get(path, bearer("x" * 20_000))
        assert response.status_code in (400, 431), (path, response.status_code)


def test_expired_token_was_a_token_of_a_real_user(world: World, expired_token: str) -> None:
    """The expired token is refused for its age alone: the same record, younger, is valid."""
    fresh = world.cluster.expired_token(world.alice.name, age=10, lifetime=3600)
    assert_pulls(world, bearer(fresh))
    assert_access_denied(world.get(world.manifest_path(), bearer(expired_token)))


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!", id="not-base64"),
        pytest.param("Basic " + b64("no-colon-here"), id="no-colon"),
        pytest.param("Basic " + b64(b"\xff:\xfe"), id="not-utf8"),
        pytest.param("Basic " + b64("user:"), id="empty-password"),
        pytest.param("Basic ", id="empty"),
        pytest.param("BASIC \xa0", id="not-ascii"),  # found by the fuzz: was a 500
    ],
)
def test_undecodable_basic_credentials(world: World, header: str) -> None:
    for path in ("/v2/", world.manifest_path(), "/v2/_catalog"):
        response = world.get(path, header)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["WWW-Authenticate"] == UNDECODABLE
        assert errors_of(response)[0]["code"] == "UNAUTHORIZED"


def test_revoked_token_stops_working(world: World) -> None:
    token = world.cluster.login(world.alice.name, world.alice.password)
    assert_pulls(world, bearer(token))
    world.cluster.revoke(token)
    # Token checks are cached briefly: the revocation takes effect within that.
    wait_until(lambda: world.get("/v2/", bearer(token)).status_code == 401, timeout=10)
    for authorization in (bearer(token), basic("alice", token)):
        assert_access_denied(world.get("/v2/", authorization))
        assert_access_denied(world.get(world.manifest_path(), authorization))
    token_answer = world.get("/openshift/token", basic("alice", token))
    assert token_answer.status_code == 401
    assert token_answer.content == b""
    # Her other token is untouched.
    assert_pulls(world, bearer(world.alice.token))


def test_token_of_a_deleted_user_is_denied(world: World) -> None:
    cluster = world.cluster
    bob = cluster.user("bob")
    cluster.bind(world.project, "system:image-puller", user_subject(bob.name))
    wait_until(lambda: world.get(world.manifest_path(), bearer(bob.token)).status_code == 200)
    deleted = cluster.admin.delete(f"/apis/user.openshift.io/v1/users/{bob.name}")
    assert deleted.status_code == 200, deleted.text
    wait_until(lambda: world.get("/v2/", bearer(bob.token)).status_code == 401, timeout=10)
    assert_access_denied(world.get(world.manifest_path(), bearer(bob.token)))


def test_service_account_tokens_end_with_their_account(world: World) -> None:
    cluster = world.cluster
    project = world.project
    created = cluster.admin.post(
        f"/api/v1/namespaces/{project}/serviceaccounts",
        json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
    )
    assert created.status_code == 201, created.text
    binding = cluster.bind(
        project, "system:image-puller", service_account_subject(project, "robot")
    )
    assert binding.status_code == 201, binding.text
    token = cluster.service_account_token(project, "robot")
    assert_pulls(world, bearer(token))
    # Expired: refused, although the account is there.
    expired = cluster.expired_service_account_token(project, "robot")
    assert_access_denied(world.get(world.manifest_path(), bearer(expired)))
    assert world.get("/openshift/token", basic("robot", expired)).status_code == 401
    # The account deleted, and made again under the same name: the old token stays refused.
    deleted = cluster.admin.delete(f"/api/v1/namespaces/{project}/serviceaccounts/robot")
    assert deleted.status_code == 200, deleted.text
    wait_until(lambda: world.get("/v2/", bearer(token)).status_code == 401, timeout=10)
    again = cluster.admin.post(
        f"/api/v1/namespaces/{project}/serviceaccounts",
        json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
    )
    assert again.status_code == 201, again.text
    assert_access_denied(world.get(world.manifest_path(), bearer(token)))
    assert_pulls(world, bearer(cluster.service_account_token(project, "robot")))


def test_rights_follow_role_bindings(world: World) -> None:
    """A binding takes effect on the next request, and so does its removal."""
    cluster = world.cluster
    carol = cluster.user("carol")
    assert_access_denied(world.get(world.manifest_path(), bearer(carol.token)))
    binding = cluster.bind(world.project, "system:image-puller", user_subject(carol.name))
    assert binding.status_code == 201, binding.text
    assert_pulls(world, bearer(carol.token))
    name = binding.json()["metadata"]["name"]
    deleted = cluster.admin.delete(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{world.project}/rolebindings/{name}"
    )
    assert deleted.status_code == 200, deleted.text
    assert_access_denied(world.get(world.manifest_path(), bearer(carol.token)))
    # A group's binding reaches its members.
    group = unique("pullers")
    made = cluster.admin.post(
        "/apis/user.openshift.io/v1/groups",
        json={
            "apiVersion": "user.openshift.io/v1",
            "kind": "Group",
            "metadata": {"name": group},
            "users": [carol.name],
        },
    )
    assert made.status_code == 201, made.text
    binding = cluster.bind(world.project, "system:image-puller", group_subject(group))
    assert binding.status_code == 201, binding.text
    wait_until(
        lambda: world.get(world.manifest_path(), bearer(carol.token)).status_code == 200,
        timeout=10,
    )


# The real client


@pytest.mark.clients
def test_podman_login_with_a_token(world: World, tmp_path: Path) -> None:
    from tests.support.clients import Clients

    clients = Clients(tmp_path / "clients")
    try:
        storage = clients.storage()
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(world.cluster.wharf.ca_file.read_bytes())
        login = clients.podman(
            storage,
            "login",
            "--cert-dir",
            str(certs),
            "-u",
            "anything",
            "-p",
            world.alice.token,
            world.host,
        )
        assert login.stdout.strip() == "Login Succeeded!", login
        # The service account's token, under the name `oc registry login` gives it.
        login = clients.podman(
            storage,
            "login",
            "--cert-dir",
            str(certs),
            "-u",
            "serviceaccount",
            "-p",
            world.builder_token,
            world.host,
        )
        assert login.stdout.strip() == "Login Succeeded!", login
        refused = clients.podman(
            storage,
            "login",
            "--cert-dir",
            str(certs),
            "-u",
            "anything",
            "-p",
            "sha256~" + secrets.token_urlsafe(32),
            world.host,
            check=False,
        )
        assert refused.returncode != 0
        assert "Login Succeeded" not in refused.stdout
        assert "invalid username/password" in refused.stderr, refused
        # Without the CA the registry is not trusted.
        untrusted = clients.podman(
            storage,
            "login",
            "-u",
            "anything",
            "-p",
            world.alice.token,
            world.host,
            check=False,
        )
        assert untrusted.returncode != 0
        assert "certificate" in untrusted.stderr, untrusted
    finally:
        clients.close()


def test_large_blob_comes_whole_over_tls(world: World) -> None:
    # Large blobs leave by sendfile from worker threads on plain connections; over TLS the
    # bytes must go through the TLS layer, and arrive whole.
    data = secrets.token_bytes(5 * 1024 * 1024 + 17)
    with world.session(bearer(world.alice.token)) as session:
        registry = Registry(world.url, session)
        digest = registry.push_blob(world.repository, data)
        whole = registry.blob(world.repository, digest)
        part = registry.blob(
            world.repository, digest, headers={"Range": f"bytes=7-{2 * 1024 * 1024}"}
        )
    assert whole.status_code == 200
    assert whole.content == data
    assert part.status_code == 206
    assert part.content == data[7 : 2 * 1024 * 1024 + 1]
