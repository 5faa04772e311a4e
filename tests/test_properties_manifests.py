"""Properties of manifest and index parsing (`wharf.oci.manifest`) and of the JSON decoder
under it (`wharf.oci.jsondoc`).

- Any bytes and any Content-Type: parsed, or refused with InvalidManifest (the decoder:
  InvalidJson); nothing else escapes, however deep the nesting.
- What the decoder accepts is JSON as RFC 8259 and I-JSON (RFC 7493) define it: it encodes
  again as strict JSON in UTF-8 and decodes to the same document.
- Manifests and indexes of all four media types, built here with annotations, subject,
  artifactType, platforms, urls and unknown fields, parse into a model that describes exactly
  the descriptors given; the same document encoded another way parses the same.

WHARF_PROPERTY_EXAMPLES sets the examples per test.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wharf.oci import mediatypes
from wharf.oci.digest import Digest
from wharf.oci.jsondoc import MAX_DEPTH, InvalidJson, decode
from wharf.oci.manifest import (
    MAX_SIZE,
    Descriptor,
    InvalidManifest,
    ParsedManifest,
    parse_manifest,
)

EXAMPLES = int(os.environ.get("WHARF_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True)
# Narrow checks of generated manifests (which are slow to make): half the examples.
NARROW = settings(PROPERTY, max_examples=max(EXAMPLES // 2, 1))

Document = dict[str, Any]

# Strategies: the pieces of descriptors.

HEX = "0123456789abcdef"
digests = st.one_of(
    st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    st.text(HEX, min_size=128, max_size=128).map(lambda h: f"sha512:{h}"),
)
# RFC 6838 restricted names, as type/subtype.
RESTRICTED = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,30}"
media_types = st.one_of(
    st.sampled_from(
        [
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            mediatypes.OCI_EMPTY,
            *sorted(mediatypes.FOREIGN_LAYERS),
        ]
    ),
    st.from_regex(rf"{RESTRICTED}/{RESTRICTED}", fullmatch=True),
)
sizes = st.one_of(st.integers(0, 1 << 20), st.integers(0, MAX_SIZE))
texts = st.text(max_size=20)
annotation_maps = st.dictionaries(texts, texts, max_size=3)
urls = st.lists(st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/]{0,20}", fullmatch=True))
# Fields the specs do not define: kept, never refused (image-spec: extensibility).
unknown_fields = st.dictionaries(
    st.from_regex(r"x-[a-z]{1,8}", fullmatch=True),
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), texts),
    max_size=2,
)


@st.composite
def platforms(draw: st.DrawFn) -> Document:
    platform: Document = {
        "architecture": draw(st.sampled_from(["amd64", "arm64", "s390x", "ppc64le"])),
        "os": draw(st.sampled_from(["linux", "windows"])),
    }
    optional = {
        "variant": st.sampled_from(["v7", "v8"]),
        "os.version": st.from_regex(r"10\.0\.[0-9]{1,5}", fullmatch=True),
        "os.features": st.lists(texts, max_size=2),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            platform[key] = draw(strategy)
    return platform


@st.composite
def descriptors(draw: st.DrawFn, media_type: st.SearchStrategy[str] = media_types) -> Document:
    descriptor: Document = {
        "mediaType": draw(media_type),
        "digest": draw(digests),
        "size": draw(sizes),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "annotations": annotation_maps,
        "artifactType": media_types,
        "platform": platforms(),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            descriptor[key] = draw(strategy)
    descriptor.update(draw(unknown_fields))
    return descriptor


@st.composite
def layers(draw: st.DrawFn) -> Document:
    """A layer; only foreign (non-distributable) layers carry urls."""
    layer = draw(descriptors())
    if layer["mediaType"] in mediatypes.FOREIGN_LAYERS and draw(st.booleans()):
        layer["urls"] = draw(urls)
    return layer


@st.composite
def manifests(draw: st.DrawFn) -> tuple[str, Document]:
    """(media type, document) of an image manifest or index of any of the four types."""
    media_type = draw(st.sampled_from(sorted(mediatypes.MANIFESTS)))
    document: Document = {"schemaVersion": 2}
    # Docker's types require mediaType in the document; OCI's only recommend it.
    if media_type not in (mediatypes.OCI_MANIFEST, mediatypes.OCI_INDEX) or draw(st.booleans()):
        document["mediaType"] = media_type
    if media_type in mediatypes.INDEXES:
        document["manifests"] = draw(
            st.lists(descriptors(st.sampled_from(sorted(mediatypes.MANIFESTS))), max_size=4)
        )
    else:
        document["config"] = draw(descriptors())
        document["layers"] = draw(st.lists(layers(), max_size=4))
    optional: dict[str, st.SearchStrategy[Any]] = {
        "subject": descriptors(st.sampled_from(sorted(mediatypes.MANIFESTS))),
        "artifactType": media_types,
        "annotations": annotation_maps,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            document[key] = draw(strategy)
    document.update(draw(unknown_fields))
    return media_type, document


encodings = st.fixed_dictionaries(
    {
        "indent": st.sampled_from([None, 0, 2, "\t"]),
        "sort_keys": st.booleans(),
        "ensure_ascii": st.booleans(),
    }
)


def encode(document: Any, options: dict[str, Any]) -> bytes:
    return json.dumps(document, **options).encode("utf-8")


def described(descriptor: Descriptor) -> Document:
    """The JSON object a parsed descriptor stands for (the fields that were given)."""
    return descriptor.model_dump(by_alias=True, exclude_unset=True)


def assert_describes(parsed: ParsedManifest, media_type: str, document: Document) -> None:
    """`parsed` says exactly what `document` says, in the terms a registry acts on."""
    assert parsed.media_type == media_type
    assert parsed.digest == Digest("sha256", hashlib.sha256(parsed.payload).hexdigest())
    assert parsed.annotations == document.get("annotations", {})
    assert parsed.artifact_type == document.get("artifactType")
    subject = parsed.subject
    assert (None if subject is None else described(subject)) == document.get("subject")
    if media_type in mediatypes.INDEXES:
        assert [described(d) for d in parsed.children] == document["manifests"]
        assert parsed.blobs == ()
        assert parsed.config is None
        return
    assert parsed.children == ()
    assert parsed.config is not None
    assert described(parsed.config) == document["config"]
    # The config is always a blob of the repository; layers are, unless they are foreign.
    stored = [document["config"]] + [
        layer for layer in document["layers"] if layer["mediaType"] not in mediatypes.FOREIGN_LAYERS
    ]
    assert [described(d) for d in parsed.blobs] == stored


# Round trips


@PROPERTY
@given(manifest=manifests(), options=encodings, with_type=st.booleans())
def test_generated_manifests_parse_into_what_was_given(
    manifest: tuple[str, Document], options: dict[str, Any], with_type: bool
) -> None:
    media_type, document = manifest
    payload = encode(document, options)
    # The Content-Type may be left out when the document declares its media type.
    content_type = media_type if with_type or "mediaType" not in document else ""
    parsed = parse_manifest(payload, content_type)
    assert parsed.payload == payload
    assert_describes(parsed, media_type, document)


@PROPERTY
@given(manifest=manifests(), first=encodings, second=encodings)
def test_reencoding_a_parsed_manifest_parses_the_same(
    manifest: tuple[str, Document], first: dict[str, Any], second: dict[str, Any]
) -> None:
    media_type, document = manifest
    parsed = parse_manifest(encode(document, first), media_type)
    again = parse_manifest(encode(decode(parsed.payload), second), media_type)
    assert_describes(again, media_type, document)
    assert again.annotations == parsed.annotations
    assert again.children == parsed.children
    assert again.blobs == parsed.blobs
    assert again.subject == parsed.subject


@NARROW
@given(
    manifest=manifests(),
    case=st.sampled_from([str.lower, str.upper, str.title]),
    parameters=st.sampled_from(["", "; charset=utf-8", ";q=1", ' ; x="a;b"']),
    spaces=st.sampled_from(["", " ", "\t"]),
)
def test_the_content_type_is_a_media_type_whatever_its_case_parameters_and_spaces(
    manifest: tuple[str, Document], case: Any, parameters: str, spaces: str
) -> None:
    """RFC 9110 §8.3.1: type and subtype are case-insensitive, parameters follow a ';'."""
    media_type, document = manifest
    content_type = spaces + case(media_type) + spaces + parameters
    assert parse_manifest(encode(document, {}), content_type).media_type == media_type


@NARROW
@given(manifest=manifests(), sha512=st.booleans())
def test_the_digest_is_computed_with_the_algorithm_asked(
    manifest: tuple[str, Document], sha512: bool
) -> None:
    media_type, document = manifest
    payload = encode(document, {})
    algorithm = "sha512" if sha512 else "sha256"
    asked = Digest.of(b"anything", algorithm)
    assert parse_manifest(payload, media_type, asked).digest == Digest.of(payload, algorithm)


# Refusals


def refused(payload: bytes, content_type: str) -> None:
    with pytest.raises(InvalidManifest):
        parse_manifest(payload, content_type)


@PROPERTY
@given(manifest=manifests(), data=st.data())
def test_a_broken_descriptor_is_refused(
    manifest: tuple[str, Document], data: st.DataObject
) -> None:
    """Each required field wrong in type or value, wherever the descriptor stands."""
    media_type, document = manifest
    where: list[str] = [k for k in ("config", "subject") if k in document]
    where += [k for k in ("layers", "manifests") if document.get(k)]
    if not where:
        return
    key = data.draw(st.sampled_from(where))
    target = document[key][0] if isinstance(document[key], list) else document[key]
    field, value = data.draw(
        st.sampled_from(
            [
                ("digest", "sha256:" + "A" * 64),
                ("digest", "md5:" + "a" * 32),
                ("digest", 7),
                ("size", -1),
                ("size", MAX_SIZE + 1),
                ("size", 1.5),
                ("size", True),
                ("size", "12"),
                ("mediaType", "not a media type"),
                ("mediaType", None),
                ("artifactType", "nope"),
                ("annotations", {"a": 1}),
                ("platform", {"os": "linux"}),
                ("urls", "https://example/"),
            ]
        )
    )
    target[field] = value
    refused(json.dumps(document).encode(), media_type)


@PROPERTY
@given(manifest=manifests(), data=st.data())
def test_a_broken_manifest_is_refused(manifest: tuple[str, Document], data: st.DataObject) -> None:
    media_type, document = manifest
    required = "manifests" if media_type in mediatypes.INDEXES else "layers"
    change = data.draw(
        st.sampled_from(
            [
                ("schemaVersion", 1),
                ("schemaVersion", "2"),
                ("schemaVersion", None),
                ("mediaType", 5),
                (required, None),
                (required, {}),
                ("annotations", ["a"]),
                ("artifactType", "no-slash"),
                ("subject", "sha256:" + "a" * 64),
            ]
        )
    )
    document[change[0]] = change[1]
    refused(json.dumps(document).encode(), media_type)
    del document[change[0]]
    if change[0] in ("schemaVersion", required):
        refused(json.dumps(document).encode(), media_type)


@NARROW
@given(manifest=manifests(), other=st.sampled_from(sorted(mediatypes.MANIFESTS)))
def test_a_content_type_that_contradicts_the_document_is_refused(
    manifest: tuple[str, Document], other: str
) -> None:
    media_type, document = manifest
    document["mediaType"] = media_type
    if other != media_type:
        refused(json.dumps(document).encode(), other)


@NARROW
@given(manifest=manifests())
def test_a_non_distributable_layer_type_on_the_config_does_not_hide_it(
    manifest: tuple[str, Document],
) -> None:
    """Only layers may be foreign: a config is always a blob the repository must hold."""
    media_type, document = manifest
    if media_type in mediatypes.INDEXES:
        return
    document["config"]["mediaType"] = sorted(mediatypes.FOREIGN_LAYERS)[0]
    parsed = parse_manifest(json.dumps(document).encode(), media_type)
    assert parsed.config is not None
    assert parsed.config in parsed.blobs


# Arbitrary input


content_types = st.one_of(
    st.sampled_from(["", *sorted(mediatypes.MANIFESTS), "application/json", "text/plain"]),
    st.text(max_size=40),
)


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )


def nested(depth: int, opening: str, closing: str) -> bytes:
    return (opening * depth + closing * depth).encode()


# Texts that Python's json module takes but that are no JSON (RFC 8259) or no I-JSON
# (RFC 7493: strings are Unicode, no lone surrogates), dropped into valid documents.
NOT_JSON = ["NaN", "Infinity", "-Infinity", '"\\ud800"', '"a\\udfffb"', '{"\\udbff": 1}']

odd_documents = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.tuples(st.integers(0, 3000), st.sampled_from(["[]", "{}", '[{"a":]}'])).map(
        lambda t: nested(t[0], t[1][0], t[1][-1])
    ),
    st.integers(0, 5000).map(lambda n: ('{"a":' * n + "1" + "}" * n).encode()),
    st.integers(4000, 6000).map(lambda n: ("1" * n).encode()),
    st.tuples(json_values(), st.sampled_from(NOT_JSON)).map(
        lambda t: json.dumps([t[0], "SLOT"]).replace('"SLOT"', t[1]).encode()
    ),
    st.tuples(json_values(), st.sampled_from(["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])).map(
        lambda t: json.dumps(t[0]).encode(t[1])
    ),
    manifests().map(lambda m: json.dumps(m[1]).encode()),
    manifests().map(lambda m: json.dumps(m[1], ensure_ascii=True)[:-1].encode()),
)


@PROPERTY
@given(payload=odd_documents, content_type=content_types)
def test_any_payload_parses_or_is_refused_as_invalid(payload: bytes, content_type: str) -> None:
    try:
        parsed = parse_manifest(payload, content_type)
    except InvalidManifest:
        return
    assert parsed.media_type in mediatypes.MANIFESTS
    # What was accepted can be kept and served anywhere: its model encodes as strict JSON.
    for descriptor in (*parsed.blobs, *parsed.children):
        json.dumps(descriptor.model_dump(), allow_nan=False).encode("utf-8")
    json.dumps(parsed.annotations, allow_nan=False).encode("utf-8")


@PROPERTY
@given(data=odd_documents)
def test_the_decoder_takes_only_json_and_refuses_with_its_own_error(data: bytes) -> None:
    try:
        document = decode(data)
    except InvalidJson:
        return
    # RFC 8259 §8.1: JSON between systems is UTF-8, with no byte order mark (Go's decoder,
    # which the clients that pull these documents use, refuses both UTF-16 and a BOM).
    assert not data.decode("utf-8").startswith("\ufeff")
    # Strict JSON, UTF-8, and the same document again (NaN would fail both).
    strict = json.dumps(document, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert json.loads(strict) == document


@PROPERTY
@given(value=json_values(), options=encodings)
def test_the_decoder_returns_what_was_encoded(value: Any, options: dict[str, Any]) -> None:
    assert decode(encode(value, options)) == value


@PROPERTY
@given(depth=st.integers(1, 3 * MAX_DEPTH), arrays=st.booleans())
def test_nesting_is_refused_exactly_past_the_limit(depth: int, arrays: bool) -> None:
    """`depth` arrays or objects, one inside the other."""
    if arrays:
        payload = nested(depth, "[", "]")
    else:
        payload = ('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)).encode()
    if depth <= MAX_DEPTH:
        decode(payload)
    else:
        with pytest.raises(InvalidJson):
            decode(payload)


# Examples of what the properties found, kept as plain regressions.


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_decoder_refuses_the_non_numbers_python_takes(token: str) -> None:
    with pytest.raises(InvalidJson):
        decode(f'{{"a": [1, {token}]}}'.encode())


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\udbffb"])
def test_decoder_refuses_lone_surrogates_in_values_and_keys(escape: str) -> None:
    with pytest.raises(InvalidJson):
        decode(f'{{"annotations": {{"k": "{escape}"}}}}'.encode())
    with pytest.raises(InvalidJson):
        decode(f'{{"{escape}": 1}}'.encode())
    assert decode(b'"\\ud83d\\ude00"') == "\U0001f600"  # a pair is one character


def test_manifest_with_invalid_artifact_type_is_refused() -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "artifactType": "not a media type",
        "config": {"mediaType": mediatypes.OCI_EMPTY, "digest": f"sha256:{'a' * 64}", "size": 2},
        "layers": [],
    }
    refused(json.dumps(document).encode(), mediatypes.OCI_MANIFEST)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
def test_decoder_takes_utf8_without_a_bom_only(encoding: str) -> None:
    document = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": []}
    with pytest.raises(InvalidJson):
        decode(json.dumps(document).encode(encoding))
    refused(json.dumps(document).encode(encoding), mediatypes.OCI_INDEX)
    assert decode(json.dumps(document).encode("utf-8")) == document
