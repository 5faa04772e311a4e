"""The upstream package's parsers: pull specs of other registries and pull secrets."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wharf.upstream.credentials import Credentials, credentials_for
from wharf.upstream.reference import RemoteReference

DIGEST = "sha256:" + "ab" * 32

components = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8})?", fullmatch=True)
repositories = st.lists(components, min_size=1, max_size=3).map("/".join)
hosts = st.sampled_from(["docker.io", "quay.io", "127.0.0.1:5000", "localhost", "reg.example:443"])
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)
digests = st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "must not be empty"),
        ("UPPER/case", "invalid repository name"),
        ("repo:bad tag", "invalid tag"),
        ("repo@sha256:short", "invalid digest"),
        ("quay.io/", "invalid repository name"),
        ("bad_host!.io/repo", "invalid registry host"),
        (" repo", "invalid image reference"),
    ],
)
def test_bad_references_say_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        RemoteReference.parse(text)


@pytest.mark.parametrize(
    "text, registry, repository, tag, digest",
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("index.docker.io/foo/bar:1", "docker.io", "foo/bar", "1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("127.0.0.1:5000/lib/app:v1", "127.0.0.1:5000", "lib/app", "v1", None),
        (f"quay.io/a/b@{DIGEST}", "quay.io", "a/b", None, DIGEST),
        (f"quay.io/a/b:t@{DIGEST}", "quay.io", "a/b", "t", DIGEST),
    ],
)
def test_references_are_normalised_as_docker_does(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert RemoteReference.parse(text) == RemoteReference(registry, repository, tag, digest)


def test_by_digest_pins_the_repository() -> None:
    pinned = RemoteReference.parse("quay.io/a/b:t").by_digest(DIGEST)
    assert str(pinned) == f"quay.io/a/b@{DIGEST}"


@given(hosts, repositories, st.none() | tags, st.none() | digests)
def test_parse_round_trips(host: str, repository: str, tag: str | None, digest: str | None) -> None:
    if host == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    if tag is None and digest is None:
        tag = "latest"
    reference = RemoteReference(host, repository, tag, digest)
    assert RemoteReference.parse(str(reference)) == reference


@given(st.text(max_size=300))
def test_parse_raises_only_value_error(text: str) -> None:
    try:
        parsed = RemoteReference.parse(text)
    except ValueError:
        return
    assert RemoteReference.parse(str(parsed)) == parsed


def _secret(kind: str, auths: dict[str, Any]) -> dict[str, Any]:
    if kind == "kubernetes.io/dockercfg":
        encoded = base64.b64encode(json.dumps(auths).encode()).decode()
        return {"type": kind, "data": {".dockercfg": encoded}}
    document = json.dumps({"auths": auths}).encode()
    return {"type": kind, "data": {".dockerconfigjson": base64.b64encode(document).decode()}}


def test_credentials_come_from_either_kind_of_pull_secret() -> None:
    basic = base64.b64encode(b"alice:s3:cret").decode()
    secrets = [
        {"type": "Opaque", "data": {"x": "eA=="}},
        _secret("kubernetes.io/dockerconfigjson", {"https://index.docker.io/v1/": {"auth": basic}}),
        _secret("kubernetes.io/dockerconfigjson", {"127.0.0.1:5000": {"auth": basic}}),
    ]
    secrets[-1]["data"][".dockercfg"] = "ignored"
    old = {
        "type": "kubernetes.io/dockercfg",
        "data": {
            ".dockercfg": base64.b64encode(
                json.dumps({"http://quay.io/v2": {"username": "bob", "password": "pw"}}).encode()
            ).decode()
        },
    }
    assert credentials_for("docker.io", secrets) == Credentials("alice", "s3:cret")
    assert credentials_for("127.0.0.1:5000", secrets) == Credentials("alice", "s3:cret")
    assert credentials_for("quay.io", [*secrets, old]) == Credentials("bob", "pw")
    assert credentials_for("127.0.0.1:5001", secrets) is None
    assert "s3:cret" not in repr(credentials_for("docker.io", secrets))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


@given(
    st.lists(
        st.one_of(
            json_values,
            st.builds(
                _secret,
                st.sampled_from(["kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"]),
                st.dictionaries(st.text(max_size=20), json_values, max_size=3),
            ),
            st.fixed_dictionaries(
                {"type": st.just("kubernetes.io/dockerconfigjson"), "data": json_values}
            ),
        ),
        max_size=4,
    ),
    st.text(max_size=20),
)
def test_credentials_for_never_raises(secrets: list[Any], registry: str) -> None:
    found = credentials_for(registry, secrets)
    assert found is None or isinstance(found, Credentials)
