"""The protobuf decoder on its own: the exact bodies kubectl 1.32 sends, hand-built bodies for
what kubectl does not send, and random bytes, which must give a 400 and nothing else."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wharf.apiserver import protobuf
from wharf.apiserver.errors import ApiError
from wharf.apiserver.protobuf import Field, Message, decode, decode_message

RBAC = "rbac.authorization.k8s.io"
# Generated bodies per property, as in the other property tests (WHARF_PROPERTY_EXAMPLES).
EXAMPLES = int(os.environ.get("WHARF_PROPERTY_EXAMPLES", "200"))

# Bodies captured from kubectl v1.32.4 (-v=8 prints them): (command, body, decoded JSON form).
KUBECTL_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "create secret generic s --from-literal=a=b --from-file=bin -n x",
        "6b3873000a0c0a027631120653656372657412290a120a017312001a017822002a0032003800420012060a01"
        "6112016212090a0362696e120200ff1a001a002200",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "x"},
            "data": {"a": "Yg==", "bin": "AP8="},
        },
    ),
    (
        "create configmap c --from-literal=a=b --from-file=bin -n x",
        "6b3873000a0f0a0276311209436f6e6669674d617012270a120a016312001a017822002a00320038004200"
        "12060a01611201621a090a0362696e120200ff1a002200",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "x"},
            "data": {"a": "b"},
            "binaryData": {"bin": "AP8="},
        },
    ),
    (
        "create namespace n",
        "6b3873000a0f0a02763112094e616d65737061636512190a110a016e12001a0022002a00320038004200"
        "12001a020a001a002200",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "n"},
            "spec": {},
            "status": {},
        },
    ),
    (
        "create serviceaccount sa -n x",
        "6b3873000a140a027631120e536572766963654163636f756e7412150a130a02736112001a017822002a00"
        "3200380042001a002200",
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "sa", "namespace": "x"},
        },
    ),
    (
        "create rolebinding rb --clusterrole=view --user=bob --serviceaccount=x:sa -n x",
        "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c6542"
        "696e64696e67128a010a130a02726212001a017822002a0032003800420012280a04557365721219726261"
        "632e617574686f72697a6174696f6e2e6b38732e696f1a03626f62220012190a0e53657276696365416363"
        "6f756e7412001a0273612201781a2e0a19726261632e617574686f72697a6174696f6e2e6b38732e696f12"
        "0b436c7573746572526f6c651a04766965771a002200",
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "x"},
            "subjects": [
                {"kind": "User", "apiGroup": RBAC, "name": "bob"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "x"},
            ],
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
        },
    ),
    (
        "create token sa -n x --duration=20m --audience=a",
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e52657175"
        "65737412200a100a0012001a0022002a0032003800420012060a016120b0091a040a0012001a002200",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {},
            "spec": {"audiences": ["a"], "expirationSeconds": 1200},
        },
    ),
    (
        "auth can-i get secrets -n x",
        "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a6563"
        "7441636365737352657669657712390a100a0012001a0022002a00320038004200121b0a190a0178120367"
        "65741a0022002a077365637265747332003a001a08080012001a0020001a002200",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {},
            # The status kubectl sends (all zero) is the server's to fill: not read.
            "spec": {
                "resourceAttributes": {"namespace": "x", "verb": "get", "resource": "secrets"}
            },
        },
    ),
    (
        "auth whoami",
        "6b3873000a2d0a1861757468656e7469636174696f6e2e6b38732e696f2f7631121153656c665375626a65"
        "6374526576696577121a0a100a0012001a0022002a0032003800420012060a040a0012001a002200",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}},
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"),
    [(body, expected) for _, body, expected in KUBECTL_BODIES],
    ids=[command for command, _, _ in KUBECTL_BODIES],
)
def test_the_bodies_kubectl_sends(body: str, expected: dict[str, Any]) -> None:
    assert decode(bytes.fromhex(body)) == expected


# A small encoder, to build what kubectl does not send.


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def number(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def delimited(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(field << 3 | 2) + varint(len(data)) + data


def entry(field: int, key: str, value: bytes | str) -> bytes:
    return delimited(field, delimited(1, key) + delimited(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = delimited(1, api_version) + delimited(2, kind)
    return protobuf.MAGIC + delimited(1, type_meta) + delimited(2, raw)


def refused(body: bytes, message_part: str = "") -> None:
    with pytest.raises(ApiError) as caught:
        decode(body)
    assert caught.value.code == 400 and caught.value.reason == "BadRequest"
    assert message_part in caught.value.message


def test_object_meta_in_full() -> None:
    owner = (
        delimited(1, "Project")
        + delimited(3, "p")
        + delimited(4, "u-1")
        + delimited(5, "project.openshift.io/v1")
        + number(6, 0)  # controller: false, set on purpose (a pointer in Go): kept
    )
    meta = (
        delimited(1, "cfg")
        + delimited(2, "cfg-")
        + delimited(3, "ns")
        + number(7, 3)
        + delimited(8, number(1, 1_700_000_000) + number(2, 5))
        + number(10, -1)  # negative: ten bytes of two's complement on the wire
        + entry(11, "app", "web")
        + entry(11, "tier", "")
        + entry(12, "note", "héllo")
        + delimited(13, owner)
        + delimited(14, "example.com/one")
        + delimited(14, "example.com/two")
    )
    raw = delimited(1, meta) + entry(2, "k", "v") + number(4, 0)
    assert decode(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cfg",
            "generateName": "cfg-",
            "namespace": "ns",
            "generation": 3,
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "deletionGracePeriodSeconds": -1,
            "labels": {"app": "web", "tier": ""},
            "annotations": {"note": "héllo"},
            "ownerReferences": [
                {
                    "kind": "Project",
                    "name": "p",
                    "uid": "u-1",
                    "apiVersion": "project.openshift.io/v1",
                    "controller": False,
                }
            ],
            "finalizers": ["example.com/one", "example.com/two"],
        },
        "data": {"k": "v"},
        "immutable": False,
    }


def test_secret_string_data_immutable_and_a_repeated_key() -> None:
    raw = (
        delimited(1, delimited(1, "s"))
        + entry(2, "bin", b"\x00\xff")
        + entry(2, "bin", b"last wins")
        + delimited(3, "kubernetes.io/basic-auth")
        + entry(4, "username", "admin")
        + number(5, 1)
    )
    assert decode(envelope("v1", "Secret", raw)) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"bin": "bGFzdCB3aW5z"},
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": "admin"},
        "immutable": True,
    }


def test_service_account_and_cluster_role() -> None:
    account = (
        delimited(1, delimited(1, "robot"))
        + delimited(2, delimited(1, "Secret") + delimited(3, "robot-token"))
        + delimited(3, delimited(1, "pull"))
        + number(4, 0)
    )
    assert decode(envelope("v1", "ServiceAccount", account)) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "robot"},
        "secrets": [{"kind": "Secret", "name": "robot-token"}],
        "imagePullSecrets": [{"name": "pull"}],
        "automountServiceAccountToken": False,
    }
    requirement = delimited(1, "env") + delimited(2, "In") + delimited(3, "a") + delimited(3, "b")
    selector = entry(1, "agg", "true") + delimited(2, requirement)
    rule = delimited(1, "get") + delimited(2, "") + delimited(3, "secrets")
    role = (
        delimited(1, delimited(1, "r")) + delimited(2, rule) + delimited(3, delimited(1, selector))
    )
    assert decode(envelope(f"{RBAC}/v1", "ClusterRole", role)) == {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r"},
        "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}],
        "aggregationRule": {
            "clusterRoleSelectors": [
                {
                    "matchLabels": {"agg": "true"},
                    "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}],
                }
            ]
        },
    }


def test_subject_access_review_with_extra_and_selectors() -> None:
    extra = delimited(1, "scopes") + delimited(2, delimited(1, "user:full") + delimited(1, "x"))
    field_selector = delimited(1, "metadata.name=a")
    attributes = delimited(2, "list") + delimited(5, "secrets") + delimited(8, field_selector)
    spec = (
        delimited(1, attributes)
        + delimited(3, "bob")
        + delimited(4, "team")
        + delimited(5, extra)
        + delimited(6, "uid-1")
    )
    body = envelope("authorization.k8s.io/v1", "SubjectAccessReview", delimited(2, spec))
    assert decode(body)["spec"] == {
        "resourceAttributes": {
            "verb": "list",
            "resource": "secrets",
            "fieldSelector": {"rawSelector": "metadata.name=a"},
        },
        "user": "bob",
        "groups": ["team"],
        "extra": {"scopes": ["user:full", "x"]},
        "uid": "uid-1",
    }


def test_fields_a_table_does_not_declare_are_skipped() -> None:
    unknown = (
        number(99, 7)
        + delimited(98, b"\xff\xfe anything")
        + varint(97 << 3 | 1)
        + b"8 bytes!"
        + varint(96 << 3 | 5)
        + b"4by!"
    )
    body = envelope("v1", "Namespace", unknown + delimited(1, delimited(1, "n") + unknown))
    assert decode(body) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}


def test_malformed_bodies_are_bad_requests() -> None:
    meta = delimited(1, delimited(1, "s"))
    refused(b"no magic", "magic number")
    refused(envelope("v1", "Pod", meta), "kind Pod in v1 are not supported")
    refused(envelope("v2", "Secret", meta), "not supported")
    refused(envelope("v1", "Secret", number(1, 5)), "wrong wire type")  # metadata as a number
    refused(envelope("v1", "Secret", delimited(5, b"\x01")), "wrong wire type")  # a bool as bytes
    refused(envelope("v1", "Secret", delimited(1, delimited(1, b"\xff"))), "not UTF-8")
    refused(envelope("v1", "Secret", b"\x0a\x05\x0a"), "runs past the end")
    refused(envelope("v1", "Secret", b"\x08" + b"\xff" * 11))  # a varint that never ends
    refused(envelope("v1", "Secret", varint(1 << 3 | 3)), "wire type 3")
    refused(envelope("v1", "Secret", b"\x00\x01"), "field number 0")
    refused(envelope("v1", "Secret", delimited(1, delimited(8, number(1, 1 << 62)))), "time")
    gzipped = protobuf.MAGIC + delimited(1, delimited(2, "Secret")) + delimited(3, "gzip")
    refused(gzipped, "content encoding")


def _nested(depth: int) -> bytes:
    body = b""
    for _ in range(depth):
        body = delimited(1, body)
    return body


def test_nesting_is_bounded_even_for_a_recursive_message() -> None:
    node = Message("Node", {})
    node.fields[1] = Field("child", node)
    shallow = decode_message(_nested(3), node)
    assert shallow == {"child": {"child": {"child": {}}}}
    with pytest.raises(ApiError) as caught:
        decode_message(_nested(protobuf.MAX_DEPTH + 2), node)
    assert caught.value.code == 400 and "nested too deeply" in caught.value.message


# Random input: a dict (that is JSON) or a 400, never anything else, for any bytes.


def _outcome(body: bytes) -> None:
    try:
        result = decode(body)
    except ApiError as error:
        assert error.code == 400 and error.reason == "BadRequest", error.message
        return
    assert isinstance(result, dict)
    json.dumps(result)  # nothing undecoded (bytes) leaks out


FIELD_NUMBERS = st.integers(min_value=1, max_value=20)
SCALAR_FIELDS = st.one_of(
    st.builds(number, FIELD_NUMBERS, st.integers(min_value=0, max_value=(1 << 64) - 1)),
    st.builds(delimited, FIELD_NUMBERS, st.text(max_size=12)),
    st.builds(delimited, FIELD_NUMBERS, st.binary(max_size=12)),
    st.builds(
        lambda n, b: varint(n << 3 | 1) + b, FIELD_NUMBERS, st.binary(min_size=8, max_size=8)
    ),
    st.builds(
        lambda n, b: varint(n << 3 | 5) + b, FIELD_NUMBERS, st.binary(min_size=4, max_size=4)
    ),
)
# Well-formed fields, nested: these get past the wire format into the tables.
MESSAGES = st.recursive(
    st.lists(SCALAR_FIELDS, max_size=6).map(b"".join),
    lambda inner: st.lists(
        st.one_of(SCALAR_FIELDS, st.builds(delimited, FIELD_NUMBERS, inner)), max_size=6
    ).map(b"".join),
    max_leaves=40,
)
KNOWN_TYPES = st.sampled_from(sorted(protobuf.KINDS))


@functools.cache
def shaped(spec: Message, depth: int = 0) -> st.SearchStrategy[bytes]:
    """Bodies that follow a message's table (any subset of its fields, each of its declared
    type, maps and repeated fields several times), with some random fields mixed in: these
    reach the deepest messages, where random bytes rarely get."""
    parts = [st.lists(SCALAR_FIELDS, max_size=1).map(b"".join)]
    for field_number, declared in spec.fields.items():
        one = _shaped_field(field_number, declared.type, depth)
        parts.append(st.lists(one, max_size=3).map(b"".join))
    return st.tuples(*parts).map(b"".join)


def _shaped_field(field_number: int, kind: protobuf.FieldType, depth: int) -> Any:
    if isinstance(kind, Message):
        inner = shaped(kind, depth + 1) if depth < 8 else st.just(b"")
        return st.builds(delimited, st.just(field_number), inner)
    if kind in (protobuf.INT, protobuf.BOOL):
        values = st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
        return st.builds(number, st.just(field_number), values)
    if kind == protobuf.TIME:
        seconds = st.integers(min_value=-(1 << 40), max_value=1 << 40)
        time = st.builds(lambda s, n: number(1, s) + number(2, n), seconds, st.integers(0, 10**9))
        return st.builds(delimited, st.just(field_number), time)
    text = st.text(max_size=10) if kind == protobuf.STRING else st.binary(max_size=10)
    return st.builds(delimited, st.just(field_number), text)


SHAPED_BODIES = KNOWN_TYPES.flatmap(
    lambda known: st.builds(
        envelope, st.just(known[0]), st.just(known[1]), shaped(protobuf.KINDS[known])
    )
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(body: bytes) -> None:
    _outcome(body)
    _outcome(protobuf.MAGIC + body)


@settings(max_examples=EXAMPLES, deadline=None)
@given(KNOWN_TYPES, MESSAGES)
def test_random_messages_in_a_valid_envelope(known: tuple[str, str], raw: bytes) -> None:
    api_version, kind = known
    _outcome(envelope(api_version, kind, raw))


@settings(max_examples=max(EXAMPLES // 2, 1), deadline=None)
@given(KNOWN_TYPES, MESSAGES, st.integers(min_value=0), st.binary(max_size=8))
def test_random_messages_cut_or_spliced(
    known: tuple[str, str], raw: bytes, at: int, junk: bytes
) -> None:
    body = envelope(*known, raw)
    cut = at % (len(body) + 1)
    _outcome(body[:cut])
    _outcome(body[:cut] + junk + body[cut:])


@settings(max_examples=EXAMPLES, deadline=None)
@given(SHAPED_BODIES, st.integers(min_value=0), st.binary(max_size=4))
def test_bodies_shaped_like_the_tables(body: bytes, at: int, junk: bytes) -> None:
    _outcome(body)
    cut = at % (len(body) + 1)
    _outcome(body[:cut] + junk)
