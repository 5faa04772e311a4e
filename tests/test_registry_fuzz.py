"""Fuzzing /v2/ with hypothesis, against a real Wharf over real sockets.

Generated: repository names (valid, invalid, odd characters, percent-encodings, very long),
references and digests, Range, Content-Type, Content-Range and conditional headers, manifest
bodies (valid manifests and indexes of all four media types, wrong types, huge numbers, deep
nesting, bytes that are no UTF-8), and upload flows (POST, PATCH, PUT, DELETE in any order).

Invariants, for every answer: never a 5xx; a 4xx to anything but HEAD carries the spec's error
body; the connection is never dropped and still frames the next answer right; and the image
pushed before the fuzzing is still pullable byte for byte at the end. Positive checks too: a
201 for a blob or manifest means it is served back as sent, and a 206 carries its slice.

WHARF_FUZZ_EXAMPLES sets how many examples each test runs (a run of the whole file stays under
about a minute on two cores with the default); pytest's --hypothesis-seed replays a run.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests.support.cluster import bearer, integrated_cluster, registry_session
from tests.support.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    ERROR_CODES,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Image,
    Registry,
    digest_of,
)
from tests.support.server import WharfProcess, running_wharf

pytestmark = pytest.mark.generative

EXAMPLES = int(os.environ.get("WHARF_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the working tree; a failure prints its seed
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Pushed first, checked last: no generated name is this one (they have no "z").
KEPT = "zz-kept"
# The same content, where generated requests may do anything.
WORK = "work"

MEDIA_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
# Methods HTTP parsers know: an unknown one is refused by the HTTP layer itself, before
# the registry sees the request, with an answer of its own.
METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]


@dataclass
class Answer:
    method: str
    target: str
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Target:
    """A registry, how to reach it, and what was pushed to it before the fuzzing."""

    wharf: WharfProcess
    authorization: str | None
    kept: Image
    work: Image
    namespace: str  # every repository name here starts with it
    ssl_context: ssl.SSLContext | None = field(default=None)

    @property
    def kept_repo(self) -> str:
        return self.namespace + KEPT

    @property
    def work_repo(self) -> str:
        return self.namespace + WORK

    def connect(self) -> http.client.HTTPConnection:
        host, port = self.wharf.host.rsplit(":", 1)
        if self.ssl_context is not None:
            return http.client.HTTPSConnection(
                host, int(port), timeout=30, context=self.ssl_context
            )
        return http.client.HTTPConnection(host, int(port), timeout=30)


def send(
    target: Target,
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | Iterator[bytes] | None = None,
    *,
    record: bool = True,
) -> Answer:
    """One request on `conn`; the answer checked against the invariants every answer keeps."""
    sent = dict(headers or {})
    if target.authorization is not None:
        sent.setdefault("Authorization", target.authorization)
    chunked = body is not None and not isinstance(body, bytes)
    try:
        conn.request(method, path, body=body, headers=sent, encode_chunked=chunked)
        response = conn.getresponse()
        answer = Answer(method, path, response.status, dict(response.getheaders()), response.read())
    except (http.client.HTTPException, OSError) as exc:
        raise AssertionError(f"{method} {path[:300]} {sent}: connection dropped: {exc!r}") from exc
    check(answer)
    if record:  # --hypothesis-show-statistics shows which answers the examples reached
        event(f"{method} -> {answer.status}")
    return answer


def check(answer: Answer) -> None:
    where = f"{answer.method} {answer.target[:300]} -> {answer.status} {answer.body[:300]!r}"
    assert answer.status < 500, where
    if answer.method == "HEAD":
        assert answer.body == b"", where
        return
    if answer.status < 400:
        return
    content_type = answer.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), (where, answer.headers)
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise AssertionError(f"no JSON: {where}") from None
    assert isinstance(document, dict), where
    errors = document.get("errors")
    assert isinstance(errors, list) and errors, where
    for error in errors:
        assert isinstance(error, dict), where
        assert error.get("code") in ERROR_CODES, where
        assert isinstance(error.get("message"), str), where


def still_framed(target: Target, conn: http.client.HTTPConnection) -> None:
    """The connection carries a next request and answer whole after everything before."""
    answer = send(target, conn, "GET", "/v2/")
    assert answer.status == 200, answer


def assert_kept(target: Target) -> None:
    """The image pushed before the fuzzing is pullable byte for byte."""
    conn = target.connect()
    try:
        accept = {"Accept": ", ".join(MEDIA_TYPES)}
        for reference in (target.kept.digest, "kept"):
            path = f"/v2/{target.kept_repo}/manifests/{reference}"
            answer = send(target, conn, "GET", path, accept, record=False)
            assert answer.status == 200 and answer.body == target.kept.payload, answer
        for digest, data in target.kept.blobs.items():
            path = f"/v2/{target.kept_repo}/blobs/{digest}"
            answer = send(target, conn, "GET", path, record=False)
            assert answer.status == 200 and answer.body == data, answer
    finally:
        conn.close()


# Strategies: the pieces of a path


_LOWER = "abcdefghijklmnopqrstuvwxy0123456789"  # no "z"
component = st.builds(
    lambda parts, separators: (
        "".join(part + separator for part, separator in zip(parts[:-1], separators, strict=False))
        + parts[-1]
    ),
    st.lists(st.text(_LOWER, min_size=1, max_size=6), min_size=1, max_size=3),
    st.lists(st.sampled_from([".", "_", "__", "-", "--"]), min_size=2, max_size=2),
)
valid_names = st.lists(component, min_size=1, max_size=4).map("/".join)
odd_names = st.one_of(
    st.text(min_size=0, max_size=40),
    st.text("aAZ09._-/%:@~ é\x00", min_size=1, max_size=30),
    st.sampled_from(
        [
            "..",
            "a/../b",
            "a//b",
            "/a",
            "a/",
            "A/b",
            "a%2Fb",
            "%2e%2e/x",
            "a%00b",
            "a%ffb",
            "a%zzb",
            "a%",
            "x" * 256,
            "a/" * 130 + "a",
            "a" * 3000,
        ]
    ),
)


def names(target: Target) -> st.SearchStrategy[str]:
    prefix = target.namespace
    return st.one_of(
        st.just(target.work_repo),
        valid_names.map(lambda name: prefix + name),
        odd_names.map(lambda name: prefix + name),
    )


def hex_digests(length: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=length, max_size=length)


def digests(target: Target) -> st.SearchStrategy[str]:
    known = [target.work.digest, *target.work.blobs]
    return st.one_of(
        st.sampled_from(known),
        hex_digests(64).map(lambda h: f"sha256:{h}"),
        hex_digests(128).map(lambda h: f"sha512:{h}"),
        st.text(max_size=80).map(lambda text: f"sha256:{text}"),
        st.text(max_size=80),
        st.sampled_from(["sha256:../../x", "sha256:" + "A" * 64, "md5:" + "a" * 32]),
    )


tags = st.one_of(
    st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}", fullmatch=True),
    st.text(max_size=140),
)


def in_path(text: str) -> str:
    """`text` for a path: what HTTP cannot carry raw is percent-encoded, and percent-encodings
    already in it are sent as they are (so the registry sees "%2F", "%00", "%ff")."""
    return quote(text, safe="/%:@!$&'()*+,;=~-._")


def query(params: dict[str, str]) -> str:
    return "?" + "&".join(f"{quote(k)}={quote(v, safe='%:')}" for k, v in params.items())


# Header values as HTTP carries them: printable ASCII, and Latin-1 bytes past it (which
# are no UTF-8).
header_text = st.text(
    st.one_of(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(min_codepoint=0xA0, max_codepoint=0xFF),
    ),
    max_size=60,
)
credentials = st.one_of(
    header_text,
    st.builds(
        lambda scheme, text: f"{scheme} {text}", st.sampled_from(["Basic", "Bearer"]), header_text
    ),
    st.binary(max_size=40).map(lambda raw: "Basic " + base64.b64encode(raw).decode()),
)
ranges = st.one_of(
    st.builds(
        lambda first, last: f"bytes={first}-{last}",
        st.one_of(st.just(""), st.integers(0, 5000).map(str), st.just("9" * 30)),
        st.one_of(st.just(""), st.integers(0, 5000).map(str), st.just("9" * 5000)),
    ),
    st.sampled_from(["items=0-1", "bytes=0-1,3-4", "bytes=-0", "bytes=", "BYTES=1-2"]),
    header_text,
)
content_types = st.one_of(st.sampled_from([*MEDIA_TYPES, "application/octet-stream"]), header_text)
content_ranges = st.one_of(
    st.builds(
        lambda a, b: f"{a}-{b}",
        st.integers(0, 10_000),
        st.one_of(st.integers(0, 10_000), st.just(10**30)),
    ),
    header_text,
)
etags = st.one_of(header_text, hex_digests(64).map(lambda hexes: f'"sha256:{hexes}"'))


def headers_strategy() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "Range": ranges,
            "Content-Type": content_types,
            "Content-Range": content_ranges,
            "Accept": st.one_of(st.sampled_from(MEDIA_TYPES), header_text),
            "If-Match": etags,
            "If-None-Match": etags,
            "If-Range": etags,
            # Rarely an unknown one: it is refused before anything else is looked at.
            "Expect": st.sampled_from(["100-continue"] * 4 + ["nonsense"]),
        },
    )


# Strategies: manifest bodies


def json_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(max_size=8), children, max_size=3),
        ),
        max_leaves=max_leaves,
    )


def descriptors(target: Target) -> st.SearchStrategy[dict[str, Any]]:
    known = [
        {"mediaType": OCI_CONFIG, "digest": d, "size": len(b)} for d, b in target.work.blobs.items()
    ]
    made = st.fixed_dictionaries(
        {
            "mediaType": st.one_of(
                st.sampled_from([OCI_CONFIG, OCI_LAYER, DOCKER_CONFIG, DOCKER_LAYER, OCI_EMPTY]),
                st.text(max_size=20),
            ),
            "digest": digests(target),
            "size": st.integers(min_value=-1, max_value=2**70),
        },
        optional={
            "annotations": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2),
            "platform": st.fixed_dictionaries(
                {"architecture": st.text(max_size=8), "os": st.text(max_size=8)},
                optional={"variant": st.text(max_size=4), "os.features": st.lists(st.text())},
            ),
            "urls": st.lists(st.text(max_size=20), max_size=2),
            "artifactType": st.text(max_size=20),
        },
    )
    return st.one_of(st.sampled_from(known), made)


def valid_manifests(target: Target) -> st.SearchStrategy[dict[str, Any]]:
    """Manifests of all four types that the work repository can take: every blob and child
    they name is there."""
    blob = st.sampled_from(
        [
            {"mediaType": OCI_CONFIG, "digest": digest, "size": len(data)}
            for digest, data in target.work.blobs.items()
        ]
    )
    platform = st.fixed_dictionaries(
        {"architecture": st.sampled_from(["amd64", "arm64"]), "os": st.just("linux")},
        optional={"variant": st.just("v8"), "os.features": st.lists(st.text(max_size=5))},
    )
    child = st.fixed_dictionaries(
        {
            "mediaType": st.just(target.work.media_type),
            "digest": st.just(target.work.digest),
            "size": st.just(len(target.work.payload)),
        },
        optional={"platform": platform},
    )
    media_type = st.sampled_from([OCI_CONFIG, OCI_LAYER, "application/vnd.example.thing+json"])
    common = {
        "annotations": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2),
        "subject": st.fixed_dictionaries(
            {
                "mediaType": st.just(OCI_MANIFEST),
                "digest": hex_digests(64).map(lambda hexes: f"sha256:{hexes}"),
                "size": st.integers(0, 10**6),
            }
        ),
        "artifactType": media_type,
        "x-unknown": json_values(),  # unknown fields are kept, not refused
    }
    image = st.fixed_dictionaries(
        {
            "schemaVersion": st.just(2),
            "mediaType": st.sampled_from([OCI_MANIFEST, DOCKER_MANIFEST]),
            "config": blob,
            "layers": st.lists(blob, max_size=3),
        },
        optional=common,
    )
    index = st.fixed_dictionaries(
        {
            "schemaVersion": st.just(2),
            "mediaType": st.sampled_from([OCI_INDEX, DOCKER_LIST]),
            "manifests": st.lists(child, max_size=3),
        },
        optional=common,
    )
    return st.one_of(image, index)


def manifests(target: Target) -> st.SearchStrategy[dict[str, Any]]:
    """Manifests of any shape: valid ones, and ones with any field wrong."""
    descriptor = descriptors(target)
    common = {
        "annotations": st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=2),
        "subject": descriptor,
        "artifactType": st.text(max_size=30),
    }
    image = st.fixed_dictionaries(
        {
            "schemaVersion": st.one_of(st.just(2), json_values(2)),
            "mediaType": st.sampled_from([OCI_MANIFEST, DOCKER_MANIFEST]),
            "config": descriptor,
            "layers": st.lists(descriptor, max_size=3),
        },
        optional=common,
    )
    index = st.fixed_dictionaries(
        {
            "schemaVersion": st.just(2),
            "mediaType": st.sampled_from([OCI_INDEX, DOCKER_LIST]),
            "manifests": st.lists(descriptor, max_size=3),
        },
        optional=common,
    )
    return st.one_of(valid_manifests(target), image, index)


def spoiled(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`document` with one top-level field dropped or given any other JSON value."""
    keys = sorted(document)
    return st.one_of(
        st.sampled_from(keys).map(lambda key: {k: v for k, v in document.items() if k != key}),
        st.tuples(st.sampled_from(keys), json_values()).map(
            lambda pair: {**document, pair[0]: pair[1]}
        ),
    )


def deep(depth: int, kind: str) -> bytes:
    opening, closing = (b"[", b"]") if kind == "array" else (b'{"a":', b"}")
    return opening * depth + b"1" + closing * depth


def bodies(target: Target) -> st.SearchStrategy[bytes]:
    documents = manifests(target)
    return st.one_of(
        documents.map(lambda d: json.dumps(d).encode()),
        documents.flatmap(spoiled).map(lambda d: json.dumps(d).encode()),
        st.builds(deep, st.integers(1, 3000), st.sampled_from(["array", "object"])),
        st.builds(
            lambda digits: b'{"schemaVersion": ' + b"7" * digits + b"}", st.integers(1, 6000)
        ),
        st.binary(max_size=200),
        st.just(b"\xff\xfe{}\x80"),
        st.just(b""),
    )


# The registries


# An image config nested deeper than the registry takes: a manifest may name it as config,
# and the integrated registry then reads it into the Image's metadata.
DEEP_CONFIG = b'{"architecture": "amd64", "config": {"Labels": ' + deep(5000, "array") + b"}}"


def push_baseline(reg: Registry, namespace: str) -> tuple[Image, Image]:
    kept = reg.push_image(namespace + KEPT, "kept", layers=2, seed=1)
    work = reg.push_image(namespace + WORK, "kept", layers=2, seed=1)
    work.blobs[reg.push_blob(namespace + WORK, DEEP_CONFIG)] = DEEP_CONFIG
    return kept, work


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The registry on its own (no logins), as the protocol tests run it."""
    with running_wharf(tmp_path_factory.mktemp("fuzz") / "data") as wharf:
        kept, work = push_baseline(Registry(wharf.url), "fuzz/")
        target = Target(wharf, None, kept, work, "fuzz/")
        yield target
        assert_kept(target)
        assert "request failed" not in wharf.log(), wharf.log()[-3000:]


# The fuzz tests


@FUZZ
@given(data=st.data())
def test_any_request(alone: Target, data: st.DataObject) -> None:
    fuzz_any_request(alone, data)


def fuzz_any_request(target: Target, data: st.DataObject) -> None:
    name = in_path(data.draw(names(target), label="name"))
    digest = in_path(data.draw(digests(target), label="digest"))
    reference = in_path(data.draw(st.one_of(tags, digests(target)), label="reference"))
    paths = [
        "/v2/",
        "/v2",
        f"/v2/{name}/tags/list",
        f"/v2/{name}/manifests/{reference}",
        f"/v2/{name}/blobs/{digest}",
        f"/v2/{name}/blobs/uploads/",
        f"/v2/{name}/blobs/uploads/{reference}",
        f"/v2/{name}/blobs/uploads/{uuid.uuid4()}",
        f"/v2/{name}/referrers/{digest}",
        f"/v2/{name}",
        f"/v2/{in_path(data.draw(st.text(max_size=60), label='tail'))}",
        f"/extensions/v2/{name}/signatures/{digest}",
        "/v2/_catalog",
    ]
    path = data.draw(st.sampled_from(paths), label="path")
    params = data.draw(
        st.dictionaries(
            st.sampled_from(["n", "last", "digest", "mount", "from", "artifactType"]),
            st.one_of(st.text(max_size=30), digests(target), st.just("9" * 2000)),
            max_size=3,
        ),
        label="query",
    )
    if params:
        path += query(params)
    # aiohttp's HTTP layer refuses a request line over 8190 bytes itself, with an answer of
    # its own, before the registry sees the request.
    assume(len(path) < 8000)
    method = data.draw(st.sampled_from(METHODS), label="method")
    headers = data.draw(headers_strategy(), label="headers")
    if data.draw(st.integers(0, 9), label="odd credentials") == 0:  # in place of the target's
        headers["Authorization"] = data.draw(credentials, label="Authorization")
    body = data.draw(bodies(target), label="body") if method in ("PUT", "PATCH", "POST") else None
    conn = target.connect()
    try:
        send(target, conn, method, path, headers, body)
        still_framed(target, conn)
    finally:
        conn.close()


@FUZZ
@given(data=st.data())
def test_manifest_put(alone: Target, data: st.DataObject) -> None:
    fuzz_manifest_put(alone, data)


def fuzz_manifest_put(target: Target, data: st.DataObject) -> None:
    name = data.draw(st.one_of(st.just(target.work_repo), names(target)), label="name")
    valid = valid_manifests(target).map(lambda document: json.dumps(document).encode())
    body = data.draw(st.one_of(valid, bodies(target)), label="body")
    by_digest = data.draw(st.booleans(), label="by digest")
    reference = digest_of(body) if by_digest else data.draw(tags, label="tag")
    declared = st.sampled_from(MEDIA_TYPES)  # right or wrong for the body
    content_type = data.draw(st.one_of(st.none(), declared, content_types), label="content type")
    headers = {} if content_type is None else {"Content-Type": content_type}
    conn = target.connect()
    try:
        path = f"/v2/{in_path(name)}/manifests/{in_path(reference)}"
        answer = send(target, conn, "PUT", path, headers, body)
        if answer.status == 201:  # stored: served back exactly as sent
            digest = answer.headers["Docker-Content-Digest"]
            assert digest == digest_of(body)
            got = send(target, conn, "GET", f"/v2/{in_path(name)}/manifests/{digest}")
            assert got.status == 200 and got.body == body, got
        still_framed(target, conn)
    finally:
        conn.close()


@FUZZ
@given(data=st.data())
def test_blob_ranges(alone: Target, data: st.DataObject) -> None:
    fuzz_blob_ranges(alone, data)


def fuzz_blob_ranges(target: Target, data: st.DataObject) -> None:
    digest, blob = data.draw(st.sampled_from(sorted(target.work.blobs.items())), label="blob")
    headers = data.draw(
        st.fixed_dictionaries(
            {"Range": ranges}, optional={"If-Range": etags, "If-None-Match": etags}
        ),
        label="headers",
    )
    method = data.draw(st.sampled_from(["GET", "HEAD"]), label="method")
    conn = target.connect()
    try:
        answer = send(target, conn, method, f"/v2/{target.work_repo}/blobs/{digest}", headers)
        size = len(blob)
        if answer.status == 200 and method == "GET":
            assert answer.body == blob
        elif answer.status == 206:
            first, last = _content_range(answer.headers["Content-Range"], size)
            assert answer.body == blob[first : last + 1]
        elif answer.status == 416:
            assert answer.headers["Content-Range"] == f"bytes */{size}"
        else:
            assert answer.status in (200, 304, 412), answer
        still_framed(target, conn)
    finally:
        conn.close()


def _content_range(header: str, size: int) -> tuple[int, int]:
    unit, _, rest = header.partition(" ")
    span, _, total = rest.partition("/")
    first, _, last = span.partition("-")
    assert unit == "bytes" and total == str(size), header
    assert 0 <= int(first) <= int(last) < size, header
    return int(first), int(last)


@FUZZ
@given(data=st.data())
def test_upload_flows(alone: Target, data: st.DataObject) -> None:
    fuzz_upload_flow(alone, data)


def fuzz_upload_flow(target: Target, data: st.DataObject) -> None:
    """A session opened, then chunks, status checks, finishes and cancels in any order, with
    right or wrong ranges and digests; a 201 means the blob is served as uploaded."""
    name = target.namespace + data.draw(st.one_of(st.just(WORK), valid_names), label="name")
    blob = data.draw(st.binary(max_size=3000), label="blob")
    conn = target.connect()
    try:
        location = _open_upload(target, conn, data, name, blob)
        sent = 0  # what the registry reported it holds (a guess, for choosing chunks)
        for _ in range(data.draw(st.integers(1, 4), label="steps") if location else 0):
            step = data.draw(st.sampled_from(["PATCH", "GET", "PUT", "DELETE"]), label="step")
            answer = _upload_step(target, conn, data, step, location, blob, sent)
            if answer.status in (202, 204) and step != "DELETE":
                location = _path_of(answer.headers["Location"])
                sent = int(answer.headers["Range"].rsplit("-", 1)[1]) + 1
            if answer.status == 201:
                _assert_served(target, conn, name, answer.headers["Docker-Content-Digest"])
                break
        still_framed(target, conn)
    finally:
        conn.close()


def _path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _open_upload(
    target: Target, conn: http.client.HTTPConnection, data: st.DataObject, name: str, blob: bytes
) -> str:
    """The session's location, or "" when the POST opened none."""
    params = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "digest": st.one_of(st.just(digest_of(blob)), digests(target)),
                "mount": digests(target),
                "from": st.one_of(st.just(target.work_repo), st.text(max_size=20)),
            },
        ),
        label="open",
    )
    path = f"/v2/{in_path(name)}/blobs/uploads/" + (query(params) if params else "")
    body = blob if "digest" in params else None
    answer = send(target, conn, "POST", path, {"Content-Type": "application/octet-stream"}, body)
    if answer.status == 201:
        _assert_served(target, conn, name, answer.headers["Docker-Content-Digest"])
    return _path_of(answer.headers["Location"]) if answer.status == 202 else ""


def _upload_step(
    target: Target,
    conn: http.client.HTTPConnection,
    data: st.DataObject,
    step: str,
    location: str,
    blob: bytes,
    sent: int,
) -> Answer:
    if step in ("GET", "DELETE"):
        return send(target, conn, step, location)
    # Mostly the right chunk, so that flows get to their end; sometimes a wrong one.
    start = data.draw(st.sampled_from([sent, sent, sent, 0, sent + 1]), label="start")
    end = data.draw(
        st.one_of(st.just(len(blob)), st.integers(min(start, len(blob)), len(blob))), label="end"
    )
    chunk = blob[start:end]
    headers = {"Content-Type": "application/octet-stream"}
    if data.draw(st.booleans(), label="with Content-Range"):
        ends = [start + len(chunk) - 1, start + len(chunk)]
        last = data.draw(st.sampled_from(ends), label="last")
        headers["Content-Range"] = data.draw(
            st.one_of(st.just(f"{start}-{last}"), content_ranges), label="Content-Range"
        )
    body: bytes | Iterator[bytes] = chunk
    if data.draw(st.booleans(), label="chunked encoding"):
        body = iter([chunk[:7], chunk[7:]])
    if step == "PATCH":
        return send(target, conn, "PATCH", location, headers, body)
    digest = data.draw(st.one_of(st.just(digest_of(blob)), digests(target)), label="digest")
    separator = "&" if "?" in location else "?"
    return send(target, conn, "PUT", f"{location}{separator}digest={quote(digest)}", headers, body)


def _assert_served(
    target: Target, conn: http.client.HTTPConnection, name: str, digest: str
) -> None:
    got = send(target, conn, "GET", f"/v2/{in_path(name)}/blobs/{digest}")
    assert got.status == 200 and digest_of(got.body, digest.split(":")[0]) == digest, got


# The integrated registry: a smaller run with a logged-in user's token


@pytest.fixture(scope="module")
def integrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with integrated_cluster(tmp_path_factory.mktemp("fuzz-cluster")) as cluster:
        alice = cluster.user("alice")
        project = cluster.new_project(alice.api)
        authorization = bearer(alice.token)
        namespace = f"{project}/"  # the integrated registry's names are <project>/<stream>
        with registry_session(cluster.wharf, authorization) as session:
            kept, work = push_baseline(Registry(cluster.wharf.url, session), namespace)
        context = ssl.create_default_context(cafile=str(cluster.wharf.ca_file))
        target = Target(cluster.wharf, authorization, kept, work, namespace, context)
        yield target
        assert_kept(target)
        assert "request failed" not in cluster.wharf.log(), cluster.wharf.log()[-3000:]


INTEGRATED = settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))


@INTEGRATED
@given(data=st.data())
def test_any_request_integrated(integrated: Target, data: st.DataObject) -> None:
    fuzz_any_request(integrated, data)


@INTEGRATED
@given(data=st.data())
def test_manifest_put_integrated(integrated: Target, data: st.DataObject) -> None:
    fuzz_manifest_put(integrated, data)


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_image_config_nested_deeper_than_the_registry_takes(
    integrated: Target, media_type: str
) -> None:
    """The integrated registry reads a pushed image's config into the Image; one nested
    thousands deep once broke that read (RecursionError, 500). It is pushed, and the Image
    simply has no metadata from it."""
    config = {"mediaType": OCI_CONFIG, "digest": digest_of(DEEP_CONFIG), "size": len(DEEP_CONFIG)}
    payload = json.dumps(
        {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": []}
    ).encode()
    conn = integrated.connect()
    try:
        path = f"/v2/{integrated.work_repo}/manifests/deep-{media_type.split('.')[-2]}"
        headers = {"Content-Type": media_type}
        answer = send(integrated, conn, "PUT", path, headers, payload, record=False)
        assert answer.status == 201, answer
        got = send(integrated, conn, "GET", path, {"Accept": media_type}, record=False)
        assert got.body == payload
    finally:
        conn.close()
