"""OCI Distribution 1.1: every error code with its status, and bad input of every kind.

No bad request may answer 500, and none may leave anything half-visible behind.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import requests

from tests.support.oci import (
    DOCKER_MANIFEST,
    EMPTY_JSON,
    ERROR_CODES,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    OCTET,
    Registry,
    absolute,
    assert_error,
    catalog,
    descriptor,
    digest_of,
    image_manifest,
    random_bytes,
    raw_request,
    send_and_abandon,
    upload_in_mode,
    with_query,
)
from tests.support.server import WharfProcess, wait_until


@pytest.fixture
def no_server_errors(wharf: WharfProcess) -> Iterator[None]:
    """Fail the test if the server logged an unhandled error while it ran: some bad requests
    break the connection, so their answer cannot be read, only the log."""
    before = wharf.log().count("request failed")
    yield
    for _ in range(3):  # round trips, so that the server has handled what came before them
        assert requests.get(f"{wharf.url}/v2/").status_code == 200
    assert wharf.log().count("request failed") == before, wharf.log()[-3000:]


def session(reg: Registry, repo: str) -> str:
    return absolute(reg.url, reg.start_upload(repo))


def upload_path(url: str) -> str:
    return urlparse(url).path


# Each code, with its status


def test_blob_unknown_is_404(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, b"a")
    assert_error(reg.blob(repo, digest_of(b"b")), 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize(
    "content_range",
    ["bytes=abc", "5-2", "-", "0-", "x-y", "0-4/3/2", "0-" + "9" * 5000, "9" * 5000 + "-0"],
    ids=lambda content_range: content_range[:20],
)
def test_blob_upload_invalid_for_a_malformed_content_range(
    reg: Registry, repo: str, content_range: str
) -> None:
    url = session(reg, repo)
    response = reg.http.patch(
        url, data=b"12345", headers={"Content-Range": content_range, "Content-Type": OCTET}
    )
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert reg.http.get(url).headers["Range"] == "0-0"
    final = reg.http.put(
        with_query(url, digest=digest_of(b"12345")),
        data=b"12345",
        headers={"Content-Range": content_range, "Content-Type": OCTET},
    )
    assert_error(final, 416, "BLOB_UPLOAD_INVALID")
    assert reg.http.get(url).headers["Range"] == "0-0"


def test_blob_upload_invalid_when_content_range_and_length_disagree(
    reg: Registry, repo: str
) -> None:
    url = session(reg, repo)
    response = reg.http.patch(url, data=b"12345", headers={"Content-Range": "0-9"})
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    status = reg.http.get(url)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
@pytest.mark.parametrize("upload", ["random-uuid", "not-a-session", "x" * 300])
def test_blob_upload_unknown_is_404(reg: Registry, repo: str, method: str, upload: str) -> None:
    reg.start_upload(repo)
    upload_id = str(uuid.uuid4()) if upload == "random-uuid" else upload
    url = reg.v2(f"{repo}/blobs/uploads/{upload_id}")
    if method == "PUT":
        url = with_query(url, digest=digest_of(b"abc"))
    response = reg.http.request(method, url, data=b"abc" if method in ("PATCH", "PUT") else None)
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_blob_upload_unknown_in_an_unknown_repository(reg: Registry) -> None:
    url = reg.v2(f"never/pushed/blobs/uploads/{uuid.uuid4()}")
    assert_error(reg.http.get(url), 404, "BLOB_UPLOAD_UNKNOWN")


def test_digest_invalid_is_400(reg: Registry, repo: str) -> None:
    data = random_bytes(100, seed=50)
    created = reg.http.post(
        with_query(reg.v2(f"{repo}/blobs/uploads/"), digest=digest_of(b"other")), data=data
    )
    assert_error(created, 400, "DIGEST_INVALID")


def test_manifest_blob_unknown_is_400(reg: Registry, repo: str) -> None:
    payload = image_manifest(descriptor(OCI_EMPTY, EMPTY_JSON), [])
    assert_error(reg.put_manifest(repo, "v1", payload), 400, "MANIFEST_BLOB_UNKNOWN")


def test_manifest_invalid_is_400(reg: Registry, repo: str) -> None:
    assert_error(reg.put_manifest(repo, "v1", b"blablabla"), 400, "MANIFEST_INVALID")


def test_manifest_unknown_is_404(reg: Registry, repo: str) -> None:
    reg.push_image(repo, "v1")
    assert_error(reg.get_manifest(repo, "v2"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "name",
    [
        "Upper/case",
        "trailing-",
        "-leading",
        "double..dot",
        "a/../b",
        "a/./b",
        "under___three",
        "a:b",
        "a b",
        "a@b",
        "é",
        "x" * 256,
        "/".join(["abcdefghij"] * 25) + "/x" * 5,  # 260 characters of valid components
    ],
    ids=lambda name: name[:20],
)
@pytest.mark.parametrize("endpoint", ["blobs/uploads/", "tags/list", "manifests/latest"])
def test_name_invalid_is_400(wharf: WharfProcess, name: str, endpoint: str) -> None:
    # Raw, because an HTTP library would resolve the dot segments before sending.
    method = "POST" if endpoint.endswith("/") else "GET"
    response = raw_request(
        wharf.host, method, f"/v2/{quote(name, safe='/')}/{endpoint}", {"Content-Length": "0"}
    )
    assert response.status == 400, response
    assert response.json()["errors"][0]["code"] == "NAME_INVALID"


def test_longest_valid_name_is_accepted(reg: Registry) -> None:
    name = f"n{uuid.uuid4().hex[:8]}/" + "a" * (255 - 10)
    assert len(name) == 255
    digest = reg.push_blob(name, b"long")
    assert reg.blob(name, digest).content == b"long"


def test_name_unknown_is_404(reg: Registry) -> None:
    assert_error(
        reg.http.get(reg.v2(f"no/such/{uuid.uuid4().hex[:8]}/tags/list")), 404, "NAME_UNKNOWN"
    )


def test_size_invalid_for_a_manifest_over_4_mib(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, EMPTY_JSON)
    big = image_manifest(
        descriptor(OCI_EMPTY, EMPTY_JSON), [], annotations={"pad": "x" * (4 * 1024 * 1024)}
    )
    assert len(big) > 4 * 1024 * 1024
    assert_error(reg.put_manifest(repo, "big", big), 413, "SIZE_INVALID")
    assert_error(reg.put_manifest(repo, digest_of(big), big), 413, "SIZE_INVALID")
    assert_error(reg.get_manifest(repo, "big"), 404, "MANIFEST_UNKNOWN")
    assert_error(reg.get_manifest(repo, digest_of(big)), 404, "MANIFEST_UNKNOWN")


def test_size_invalid_for_a_streamed_manifest_over_4_mib(reg: Registry, repo: str) -> None:
    """Without a Content-Length the limit holds while reading."""
    reg.push_blob(repo, EMPTY_JSON)
    big = image_manifest(
        descriptor(OCI_EMPTY, EMPTY_JSON), [], annotations={"pad": "x" * (4 * 1024 * 1024)}
    )
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
    response = reg.http.put(
        reg.v2(f"{repo}/manifests/big"), data=chunks, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 413, "SIZE_INVALID")
    assert_error(reg.get_manifest(repo, "big"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "blobs/{digest}"),
        ("PATCH", "blobs/{digest}"),
        ("POST", "manifests/latest"),
        ("PATCH", "manifests/latest"),
        ("DELETE", "tags/list"),
        ("PUT", "tags/list"),
        ("POST", "referrers/{digest}"),
        ("GET", "blobs/uploads/"),
    ],
)
def test_unsupported_is_405(reg: Registry, repo: str, method: str, path: str) -> None:
    digest = reg.push_blob(repo, b"x")
    response = reg.http.request(method, reg.v2(f"{repo}/{path.format(digest=digest)}"))
    assert_error(response, 405, "UNSUPPORTED")


# Malformed and unacceptable manifests


def manifest_with(reg: Registry, repo: str, **changes: object) -> bytes:
    """A valid image manifest (blobs pushed), with top-level fields replaced."""
    layer = random_bytes(64, seed=51)
    reg.push_blob(repo, layer)
    reg.push_blob(repo, EMPTY_JSON)
    document = json.loads(
        image_manifest(descriptor(OCI_EMPTY, EMPTY_JSON), [descriptor(OCI_LAYER, layer)])
    )
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"blablabla",
        b"{",
        b"[]",
        b"null",
        b'"a string"',
        b"\xff\xfe{}",
        b'{"schemaVersion": 2}',
        b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
    ],
    ids=["empty", "text", "truncated", "array", "null", "string", "not-utf8", "bare", "no-config"],
)
def test_malformed_manifest_is_manifest_invalid(reg: Registry, repo: str, payload: bytes) -> None:
    assert_error(reg.put_manifest(repo, "v1", payload), 400, "MANIFEST_INVALID")
    response = reg.get_manifest(repo, "v1")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}


@pytest.mark.parametrize(
    "changes",
    [
        {"schemaVersion": 1},
        {"schemaVersion": "2"},
        {"schemaVersion": None},
        {"config": None},
        {"layers": None},
        {"layers": {}},
        {"config": {"mediaType": OCI_CONFIG, "digest": "sha256:abc", "size": 2}},
        {"config": {"mediaType": OCI_EMPTY, "digest": digest_of(EMPTY_JSON), "size": -1}},
        {"config": {"mediaType": OCI_EMPTY, "digest": digest_of(EMPTY_JSON), "size": "2"}},
        {"config": {"mediaType": "not a media type", "digest": digest_of(EMPTY_JSON), "size": 2}},
        {"config": {"digest": digest_of(EMPTY_JSON), "size": 2}},
        {"config": {"mediaType": OCI_EMPTY, "digest": digest_of(EMPTY_JSON), "size": 3}},
        {"annotations": {"key": 1}},
        {"subject": {"mediaType": OCI_MANIFEST, "digest": "nope", "size": 1}},
        {
            "layers": [
                {"mediaType": OCI_LAYER, "digest": digest_of(b"x"), "size": 1, "urls": ["http://x"]}
            ]
        },
    ],
    ids=[
        "schema-1",
        "schema-string",
        "no-schema",
        "no-config",
        "no-layers-field",
        "layers-object",
        "bad-digest",
        "negative-size",
        "size-string",
        "bad-media-type",
        "descriptor-no-media-type",
        "wrong-size",
        "annotation-not-string",
        "bad-subject",
        "urls-on-a-normal-layer",
    ],
)
def test_invalid_manifest_content_is_refused(
    reg: Registry, repo: str, changes: dict[str, object]
) -> None:
    payload = manifest_with(reg, repo, **changes)
    response = reg.put_manifest(repo, "v1", payload)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["code"] in {"MANIFEST_INVALID", "DIGEST_INVALID"}
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")
    assert_error(reg.get_manifest(repo, digest_of(payload)), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    ("content_type", "declared"),
    [
        (DOCKER_MANIFEST, OCI_MANIFEST),  # says one type, is another
        (OCI_INDEX, OCI_MANIFEST),
        ("application/vnd.example.unknown+json", None),  # unknown type, nothing declared
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", None),  # schema 1
        ("application/vnd.docker.distribution.manifest.v1+json", None),
        ("text/plain", None),
        (None, None),  # no type anywhere
        (OCI_MANIFEST, "application/vnd.example.unknown+json"),
        (OCI_MANIFEST, 7),
    ],
)
def test_wrong_or_unknown_media_type_is_manifest_invalid(
    reg: Registry, repo: str, content_type: str | None, declared: object
) -> None:
    payload = manifest_with(reg, repo, mediaType=declared)
    response = reg.put_manifest(repo, "v1", payload, content_type)
    assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")


def test_manifest_without_content_type_takes_its_declared_type(reg: Registry, repo: str) -> None:
    payload = manifest_with(reg, repo)
    assert reg.put_manifest(repo, "v1", payload, None).status_code == 201
    assert reg.get_manifest(repo, "v1").headers["Content-Type"] == OCI_MANIFEST


def test_manifest_pushed_under_another_digest_is_digest_invalid(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    altered = image.payload + b"  "  # whitespace changes the digest
    response = reg.put_manifest(repo, image.digest, altered)
    assert_error(response, 400, "DIGEST_INVALID")
    assert reg.get_manifest(repo, image.digest).content == image.payload
    assert_error(reg.get_manifest(repo, digest_of(altered)), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "reference", ["sha256:totallywrong", "sha256:baddigeststring", "sha512:" + "a" * 64, "md5:x"]
)
def test_manifest_put_with_malformed_digest_is_digest_invalid(
    reg: Registry, repo: str, reference: str
) -> None:
    payload = manifest_with(reg, repo)
    assert_error(reg.put_manifest(repo, reference, payload), 400, "DIGEST_INVALID")
    response = reg.get_manifest(repo, reference)
    assert response.status_code in (400, 404)
    assert response.json()["errors"][0]["code"] in {"DIGEST_INVALID", "MANIFEST_UNKNOWN"}


def test_manifest_put_with_an_invalid_tag_is_manifest_invalid(reg: Registry, repo: str) -> None:
    payload = manifest_with(reg, repo)
    for tag in ("-dash", ".dot", "t" * 129):
        assert_error(reg.put_manifest(repo, tag, payload), 400, "MANIFEST_INVALID")


def nested(depth: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    return opening * depth + b"1" + closing * depth


DEEP_BODIES = {
    # Deeper than Python's recursion limit: the JSON decoder itself gives up.
    "config-1000-deep": b'{"schemaVersion": 2, "mediaType": "%s", "config": %s, "layers": []}'
    % (OCI_MANIFEST.encode(), nested(1000)),
    "array-100000-deep": nested(100_000),
    "objects-1000-deep": nested(1000, b'{"a": ', b"}"),
    "index-1000-deep": b'{"schemaVersion": 2, "mediaType": "%s", "manifests": %s}'
    % (OCI_INDEX.encode(), nested(1000)),
    # Integers past Python's digit limit for int(): a ValueError, not a JSONDecodeError.
    "5000-digit-number": b'{"schemaVersion": %s}' % (b"2" * 5000),
}


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_deeply_nested_or_undecodable_manifest_is_manifest_invalid(
    reg: Registry, repo: str, body: bytes, no_server_errors: None
) -> None:
    reg.push_blob(repo, b"the repository exists")
    media_type = OCI_INDEX if b"manifests" in body else OCI_MANIFEST
    assert_error(reg.put_manifest(repo, "v1", body, media_type), 400, "MANIFEST_INVALID")
    assert_error(reg.put_manifest(repo, digest_of(body), body, media_type), 400, "MANIFEST_INVALID")
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")
    assert_error(reg.get_manifest(repo, digest_of(body)), 404, "MANIFEST_UNKNOWN")


def test_nesting_deeper_than_a_manifest_needs_is_manifest_invalid(reg: Registry, repo: str) -> None:
    """Decodable, but deeper than the registry takes: what it stores must stay encodable and
    walkable wherever it is read later, whatever the stack depth there."""
    deep = manifest_with(reg, repo, x=json.loads(nested(100)))
    assert_error(reg.put_manifest(repo, "v1", deep), 400, "MANIFEST_INVALID")
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")
    payload = manifest_with(reg, repo, x=json.loads(nested(30)))
    assert reg.put_manifest(repo, "v1", payload).status_code == 201
    assert reg.get_manifest(repo, "v1").content == payload


@pytest.mark.parametrize("size", [2**63, 2**64 + 2, 10**40])
def test_descriptor_size_beyond_int64_is_manifest_invalid(
    reg: Registry, repo: str, size: int
) -> None:
    """Sizes are int64 in the image spec; a larger one could never be stored or compared."""
    layer = {"mediaType": OCI_LAYER, "digest": digest_of(b"huge"), "size": size}
    payload = manifest_with(reg, repo, layers=[layer])
    assert_error(reg.put_manifest(repo, "v1", payload), 400, "MANIFEST_INVALID")
    index = json.dumps(
        {"schemaVersion": 2, "manifests": [{**layer, "mediaType": OCI_MANIFEST}]}
    ).encode()
    assert_error(reg.put_manifest(repo, "i1", index, OCI_INDEX), 400, "MANIFEST_INVALID")


# Invalid digests anywhere


BAD_DIGESTS = [
    "sha256:abc",
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha512:" + "a" * 64,
    "sha256",
    "sha256:",
    ":" + "a" * 64,
    "md5:" + "a" * 32,
    "SHA256:" + "a" * 64,
    "sha256:" + "a" * 64 + "%00",
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_malformed_digest_in_a_path_is_digest_invalid(
    reg: Registry, repo: str, digest: str
) -> None:
    reg.push_blob(repo, b"x")
    for method in ("GET", "DELETE"):
        assert_error(
            reg.http.request(method, reg.v2(f"{repo}/blobs/{digest}")), 400, "DIGEST_INVALID"
        )
    head = reg.http.head(reg.v2(f"{repo}/blobs/{digest}"))
    assert head.status_code == 400
    assert_error(reg.http.get(reg.v2(f"{repo}/referrers/{digest}")), 400, "DIGEST_INVALID")


SLASHED = [
    "sha256:../../x",
    "sha256:a/b",
    "a/b",
    "sha256:" + "a" * 64 + "/x",
    "sha256:" + "b" * 64 + "/",
]


@pytest.mark.parametrize("reference", SLASHED)
def test_malformed_reference_with_slashes_is_refused_like_any_other(
    wharf: WharfProcess, repo: str, reference: str
) -> None:
    """A slash in the digest or reference of a path is one more malformed value: the answer
    is that of the endpoint, not 405 from a path that matched no route."""
    Registry(wharf.url).push_blob(repo, b"x")
    digest_error = {(400, "DIGEST_INVALID"), (404, "BLOB_UNKNOWN")}
    manifest_error = {(400, "DIGEST_INVALID"), (404, "MANIFEST_UNKNOWN")}
    put_error = {(400, "DIGEST_INVALID"), (400, "MANIFEST_INVALID")}
    upload_error = {(404, "BLOB_UPLOAD_UNKNOWN")}
    expected = [
        ("GET", f"/v2/{repo}/blobs/{reference}", digest_error),
        ("HEAD", f"/v2/{repo}/blobs/{reference}", digest_error),
        ("DELETE", f"/v2/{repo}/blobs/{reference}", digest_error),
        ("GET", f"/v2/{repo}/referrers/{reference}", {(400, "DIGEST_INVALID")}),
        ("GET", f"/v2/{repo}/manifests/{reference}", manifest_error),
        ("HEAD", f"/v2/{repo}/manifests/{reference}", manifest_error),
        ("DELETE", f"/v2/{repo}/manifests/{reference}", manifest_error),
        ("PUT", f"/v2/{repo}/manifests/{reference}", put_error),
        ("GET", f"/v2/{repo}/blobs/uploads/{reference}", upload_error),
        ("PATCH", f"/v2/{repo}/blobs/uploads/{reference}", upload_error),
        ("PUT", f"/v2/{repo}/blobs/uploads/{reference}?digest={digest_of(b'x')}", upload_error),
        ("DELETE", f"/v2/{repo}/blobs/uploads/{reference}", upload_error),
    ]
    for method, target, answers in expected:
        body = b"{}" if method in ("PUT", "PATCH") else b""
        headers = {"Content-Length": str(len(body)), "Content-Type": OCI_MANIFEST}
        response = raw_request(wharf.host, method, target, headers, body)
        if method == "HEAD":
            assert response.status in {status for status, _ in answers}, (target, response)
            assert response.body == b""
            continue
        code = response.json()["errors"][0]["code"]
        assert (response.status, code) in answers, (method, target, response)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
@pytest.mark.parametrize(
    "path",
    [
        "/v2/{repo}/blobs/sha256:%0A",
        "/v2/{repo}/blobs/sha256:%0A/x",
        "/v2/{repo}/manifests/a%0A/b",
        "/v2/{repo}/blobs/uploads/%0A/x",
        "/v2/%0A",
        "/v2/{repo}/%0A",
    ],
)
def test_newlines_in_a_path_get_the_error_envelope(
    wharf: WharfProcess, repo: str, path: str, method: str
) -> None:
    """A percent-encoded newline in a path (the fuzz found these answered bare: the routes'
    patterns stopped at it)."""
    Registry(wharf.url).push_blob(repo, b"x")
    for headers in ({}, {"Expect": "nonsense"}):
        sent = {"Content-Length": "2", **headers}
        response = raw_request(wharf.host, method, path.format(repo=repo), sent, b"{}")
        assert 400 <= response.status < 500, response
        assert response.json()["errors"][0]["code"] in ERROR_CODES, response
        if headers:
            assert response.status == 417, response


@pytest.mark.parametrize("middle", ["blobs", "manifests", "blobs/uploads", "referrers"])
def test_names_with_endpoint_words_as_components_still_work(
    reg: Registry, repo: str, middle: str
) -> None:
    """The routes that take slashed values come after the others: a name such as
    `a/blobs/b` is still read as a name."""
    name = f"{repo}/{middle}/x"
    image = reg.push_image(name, "v1", layers=1)
    for digest, data in image.blobs.items():
        assert reg.blob(name, digest).content == data
    assert reg.get_manifest(name, "v1").content == image.payload
    assert reg.http.get(reg.v2(f"{name}/tags/list")).json() == {"name": name, "tags": ["v1"]}
    assert reg.http.get(reg.v2(f"{name}/referrers/{image.digest}")).status_code == 200
    assert reg.http.delete(reg.v2(f"{name}/manifests/v1")).status_code == 202


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_malformed_digest_parameter_is_digest_invalid(
    reg: Registry, repo: str, digest: str
) -> None:
    data = random_bytes(50, seed=52)
    monolithic = reg.http.post(reg.v2(f"{repo}/blobs/uploads/") + "?digest=" + digest, data=data)
    assert_error(monolithic, 400, "DIGEST_INVALID")
    url = session(reg, repo)
    put = reg.http.put(url + "?digest=" + digest, data=data)
    assert_error(put, 400, "DIGEST_INVALID")
    # The session is still there, unharmed: the request was refused before it started.
    status = reg.http.get(url)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"
    assert reg.head_blob(repo, digest_of(data)).status_code == 404


def test_put_without_digest_is_refused_and_the_session_survives(reg: Registry, repo: str) -> None:
    data = random_bytes(50, seed=53)
    url = session(reg, repo)
    response = reg.http.put(url, data=data)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] in {"DIGEST_INVALID", "BLOB_UPLOAD_INVALID"}
    assert reg.http.get(url).status_code == 204
    created = reg.http.put(with_query(url, digest=digest_of(data)), data=data)
    assert created.status_code == 201
    assert reg.blob(repo, digest_of(data)).content == data


# Digest mismatch in every upload mode: refused, and the blob is never served


@pytest.mark.parametrize(
    "mode", ["post-only", "post-put", "stream", "chunked", "chunked-put-chunk"]
)
def test_digest_mismatch_is_refused_in_every_mode(reg: Registry, repo: str, mode: str) -> None:
    real = random_bytes(3 * 1024 - 5, seed=54)
    claimed = digest_of(real)
    sent = real + b"oh no"  # what arrives is not what the digest names
    response = upload_in_mode(reg, repo, mode, sent, claimed)
    assert_error(response, 400, "DIGEST_INVALID")
    assert reg.head_blob(repo, claimed).status_code == 404
    assert reg.head_blob(repo, digest_of(sent)).status_code == 404
    assert_error(reg.blob(repo, claimed), 404, "BLOB_UNKNOWN")


def test_after_a_mismatch_the_session_is_gone(reg: Registry, repo: str) -> None:
    url = session(reg, repo)
    assert_error(
        reg.http.put(with_query(url, digest=digest_of(b"right")), data=b"wrong"),
        400,
        "DIGEST_INVALID",
    )
    assert_error(reg.http.get(url), 404, "BLOB_UPLOAD_UNKNOWN")


def test_mismatch_does_not_disturb_an_existing_blob(reg: Registry, repo: str) -> None:
    data = random_bytes(500, seed=55)
    digest = reg.push_blob(repo, data)
    other = f"{repo}-attacker"
    forged = reg.http.post(
        with_query(reg.v2(f"{other}/blobs/uploads/"), digest=digest), data=b"evil"
    )
    assert_error(forged, 400, "DIGEST_INVALID")
    assert reg.blob(repo, digest).content == data
    assert reg.head_blob(other, digest).status_code == 404


def test_refused_chunk_leaves_nothing_in_the_blob(reg: Registry, repo: str) -> None:
    """A chunk whose length is not the one its Content-Range announced is refused; none of
    its bytes may end up in the blob that the upload later becomes."""
    data = random_bytes(100, seed=61)
    url = session(reg, repo)
    accepted = reg.http.patch(url, data=data, headers={"Content-Range": "0-99"})
    assert accepted.status_code == 202
    garbage = (part for part in [random_bytes(150, seed=62), random_bytes(150, seed=63)])
    # Chunked transfer encoding: no Content-Length to compare with, so the body is read.
    refused = reg.http.patch(url, data=garbage, headers={"Content-Range": "100-199"})
    assert_error(refused, 416, "BLOB_UPLOAD_INVALID")
    assert refused.headers["Range"] == "0-99"
    created = reg.http.put(with_query(url, digest=digest_of(data)))
    assert created.status_code == 201
    served = reg.blob(repo, digest_of(data))
    assert served.headers["Content-Length"] == "100"
    assert served.content == data


# Bodies that lie about their length, and clients that go away


def test_monolithic_body_shorter_than_content_length(
    wharf: WharfProcess, reg: Registry, repo: str, no_server_errors: None
) -> None:
    data = random_bytes(1000, seed=56)
    digest = digest_of(data)
    send_and_abandon(
        wharf.host,
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={digest}",
        {"Content-Length": str(len(data) + 500), "Content-Type": OCTET},
        data,
        reset=False,
    )
    assert reg.head_blob(repo, digest).status_code == 404


def test_monolithic_body_longer_than_content_length(
    wharf: WharfProcess, reg: Registry, repo: str, no_server_errors: None
) -> None:
    data = random_bytes(1000, seed=57)
    digest = digest_of(data)
    # Keep-alive: the registry reads 600 bytes as the body, and the rest as the next request,
    # which is no request at all (the HTTP layer answers that one with a plain 400).
    response = raw_request(
        wharf.host,
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={digest}",
        {"Content-Length": "600", "Content-Type": OCTET},
        data,
        close=False,
    )
    assert response.status == 400
    assert reg.head_blob(repo, digest).status_code == 404
    assert reg.head_blob(repo, digest_of(data[:600])).status_code == 404


def test_manifest_body_shorter_than_content_length(
    wharf: WharfProcess, reg: Registry, repo: str, no_server_errors: None
) -> None:
    payload = manifest_with(reg, repo)
    send_and_abandon(
        wharf.host,
        "PUT",
        f"/v2/{repo}/manifests/v1",
        {"Content-Length": str(len(payload) + 100), "Content-Type": OCI_MANIFEST},
        payload,
        reset=False,
    )
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")


def test_manifest_body_cut_in_chunked_encoding(
    wharf: WharfProcess, reg: Registry, repo: str, no_server_errors: None
) -> None:
    payload = manifest_with(reg, repo)
    send_and_abandon(
        wharf.host,
        "PUT",
        f"/v2/{repo}/manifests/v1",
        {"Transfer-Encoding": "chunked", "Content-Type": OCI_MANIFEST},
        f"{len(payload):x}\r\n".encode() + payload[:50],
        reset=False,
    )
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")


def resume(reg: Registry, url: str, data: bytes) -> requests.Response:
    """Finish sending `data` to the session at `url` the way a client recovers: ask where the
    upload stands, send the rest from there with its Content-Range, and on a 416 ask again.
    Returns the 202 of the last chunk, or the 404 of a session the registry dropped."""
    answers: list[requests.Response] = []

    def attempt() -> bool:
        status = reg.http.get(url)
        if status.status_code == 404:
            answers.append(status)
            return True
        assert status.status_code == 204
        end = int(status.headers["Range"].split("-")[1])
        have = end + 1 if end > 0 else 0  # "0-0" is an empty upload
        assert have <= len(data)
        response = reg.http.patch(
            absolute(reg.url, status),
            data=data[have:],
            headers={"Content-Type": OCTET, "Content-Range": f"{have}-{len(data) - 1}"},
        )
        if response.status_code == 416:
            return False
        assert response.status_code == 202, response.content
        answers.append(response)
        return True

    wait_until(attempt, timeout=10)
    return answers[-1]


@pytest.mark.parametrize("ranged", [True, False], ids=["content-range", "streamed"])
@pytest.mark.parametrize("reset", [True, False], ids=["rst", "fin"])
def test_client_that_disconnects_mid_upload(
    wharf: WharfProcess, reg: Registry, repo: str, reset: bool, ranged: bool, no_server_errors: None
) -> None:
    """Headers and part of the body, then the connection drops. The session then reports the
    bytes the registry kept (at most those sent) and resumes to the right blob, or is gone;
    the blob is never visible before its PUT."""
    data = random_bytes(300_000, seed=58)
    digest = digest_of(data)
    sent = 120_000
    url = session(reg, repo)
    headers = {"Content-Length": str(len(data)), "Content-Type": OCTET}
    if ranged:
        headers["Content-Range"] = f"0-{len(data) - 1}"
    send_and_abandon(wharf.host, "PATCH", upload_path(url), headers, data[:sent], reset=reset)
    status = reg.http.get(url)
    assert status.status_code in (204, 404)
    if status.status_code == 204:
        assert int(status.headers["Range"].split("-")[1]) < sent
    assert reg.head_blob(repo, digest).status_code == 404
    assert reg.head_blob(repo, digest_of(data[:sent])).status_code == 404
    accepted = resume(reg, url, data)
    if accepted.status_code == 404:  # the registry may drop the session instead
        assert reg.head_blob(repo, digest).status_code == 404
        return
    assert reg.head_blob(repo, digest).status_code == 404
    created = reg.http.put(with_query(absolute(reg.url, accepted), digest=digest))
    assert created.status_code == 201, created.content
    assert reg.blob(repo, digest).content == data


# Path traversal


TRAVERSALS = [
    "/v2/../../etc/blobs/uploads/",
    "/v2/%2e%2e/%2e%2e/etc/blobs/uploads/",
    "/v2/%2E%2E/etc/blobs/uploads/",
    "/v2/a%2F..%2F..%2Fetc/blobs/uploads/",
    "/v2/a%2f%2e%2e%2fb/blobs/uploads/",
    "/v2//etc/blobs/uploads/",
    "//v2//etc/passwd/blobs/uploads/",
    "/v2/a/../b/blobs/uploads/",
    "/v2/a/./b/blobs/uploads/",
    "/v2/a\\..\\b/blobs/uploads/",
    "/v2/a%00b/blobs/uploads/",
    "/v2/..%252f..%252fetc/blobs/uploads/",
]

TRAVERSAL_TARGETS = [
    "/v2/{repo}/blobs/uploads/..%2F..%2F..%2Fwharf.db",
    "/v2/{repo}/blobs/uploads/%2e%2e%2f%2e%2e%2fblobs",
    "/v2/{repo}/blobs/uploads/../../wharf.db",
    "/v2/{repo}/manifests/..%2F..%2Fetc",
    "/v2/{repo}/manifests/sha256:..%2F..%2F..%2Fwharf.db",
    "/v2/{repo}/blobs/sha256:..%2F..%2Fwharf.db",
    "/v2/{repo}/referrers/sha256:..%2F..%2Fwharf.db",
    "/v2/{repo}/blobs/uploads/?digest=sha256:..%2F..%2F..%2Fx",
    "/v2/{repo}/blobs/uploads/?mount=sha256:..%2F..%2Fx&from=..%2F..",
]


def snapshot(root: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(folder, name), root)
        for folder, dirs, files in os.walk(root)
        for name in dirs + files
    }


def test_path_traversal_in_names_creates_nothing(wharf: WharfProcess, repo: str) -> None:
    reg = Registry(wharf.url)
    reg.push_image(repo, "v1")
    listed_before = catalog(reg)
    root = wharf.data_dir.parent.parent  # every test's temporary files, this server's too
    before = snapshot(root)
    failures = wharf.log().count("request failed")
    for target in TRAVERSALS + [t.format(repo=repo) for t in TRAVERSAL_TARGETS]:
        for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
            response = raw_request(
                wharf.host, method, target, {"Content-Length": "5", "Content-Type": OCTET}, b"hello"
            )
            if "?mount=" in target and method == "POST":
                # A mount it cannot do is an ordinary upload session, in the named repository.
                assert response.status == 202, response
                assert response.headers["location"].startswith(f"/v2/{repo}/blobs/uploads/")
                continue
            assert response.status in (400, 404, 405, 416), (method, target, response)
            if target.startswith("/v2/") and method != "HEAD":
                assert response.json()["errors"][0]["code"] in {
                    "NAME_INVALID",
                    "NAME_UNKNOWN",
                    "DIGEST_INVALID",
                    "BLOB_UPLOAD_UNKNOWN",
                    "BLOB_UPLOAD_INVALID",
                    "MANIFEST_UNKNOWN",
                    "MANIFEST_INVALID",
                    "UNSUPPORTED",
                }, (method, target, response)
    assert wharf.log().count("request failed") == failures
    # Nothing appeared anywhere but in the data directory's upload sessions.
    data = os.path.relpath(wharf.data_dir, root)
    created = snapshot(root) - before
    assert all(path.startswith(os.path.join(data, "uploads", "")) for path in created), created
    assert catalog(reg) == listed_before
    assert reg.get_manifest(repo, "v1").status_code == 200
