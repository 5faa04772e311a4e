"""The parts of the `wharf` command that need no server: JSONPath, durations, kubeconfig
names, type resolution, and `--help` on every verb."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wharf.cli import jsonpath
from wharf.cli.access import parse_duration
from wharf.cli.describe import ago, human_duration
from wharf.cli.discovery import Discovery, ResourceType
from wharf.cli.errors import CliError
from wharf.cli.kubeconfig import cluster_nickname, normalize_server
from wharf.cli.main import app, run
from wharf.cli.printers import align, parse_output
from wharf.kube import merge_patch

DATA: dict[str, Any] = {
    "kind": "List",
    "items": [
        {
            "metadata": {"name": "a", "annotations": {"openshift.io/display-name": "A"}},
            "spec": {"host": "a.example", "port": 80, "tls": True, "tags": ["x", "y"]},
        },
        {"metadata": {"name": "b"}, "spec": {"host": "b.example", "port": 443}},
    ],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{.kind}", "List"),
        ("{.items[*].metadata.name}", "a b"),
        ("{.items[0].spec.host}", "a.example"),
        ("{.items[-1].metadata.name}", "b"),
        ("{.items[0,1].spec.port}", "80 443"),
        ("{.items[1:].metadata.name}", "b"),
        ("{.items[0].spec.tls}", "true"),
        ("{.items[0].spec.tags}", '["x","y"]'),
        ("{.items[1].metadata}", '{"name":"b"}'),
        ("{.items[0].metadata.annotations.openshift\\.io/display-name}", "A"),
        ("{.items[0].metadata.annotations['openshift.io/display-name']}", "A"),
        ("{..host}", "a.example b.example"),
        ("{.items[?(@.spec.port>100)].metadata.name}", "b"),
        ('{.items[?(@.metadata.name=="a")].spec.host}', "a.example"),
        ("{.items[?(@.spec.tls)].metadata.name}", "a"),
        ("{.items[?(@.spec.port!=80)].metadata.name}", "b"),
        ('{range .items[*]}{.metadata.name}={.spec.port}{"\\n"}{end}', "a=80\nb=443\n"),
        ("{range .items}[{.metadata.name}]{end}", "[a][b]"),
        ("{range .items[*]}{range .spec.tags[*]}{@},{end};{end}", "x,y,;;"),
        ("name: {.items[0].metadata.name}!", "name: a!"),
        ("{.missing.field}", ""),
        ("{.items[5].metadata.name}", ""),
        (".kind", "List"),
        ("{$.kind}", "List"),
        ('{"\\t"}', "\t"),
    ],
)
def test_jsonpath(template: str, expected: str) -> None:
    assert jsonpath.render(template, DATA) == expected


@pytest.mark.parametrize("template", ["{.items", "{range .items[*]}{.a}", "{end}", "{.a[?(x)]}"])
def test_jsonpath_errors(template: str) -> None:
    with pytest.raises(CliError):
        jsonpath.render(template, DATA)


def test_custom_columns() -> None:
    columns = jsonpath.parse_columns("NAME:.metadata.name,HOST:spec.host,TLS:{.spec.tls}")
    values = [[jsonpath.column_value(n, item) for _, n in columns] for item in DATA["items"]]
    assert values == [["a", "a.example", "true"], ["b", "b.example", "<none>"]]
    with pytest.raises(CliError):
        jsonpath.parse_columns("NAME")


def test_output_formats() -> None:
    assert parse_output(None).tabular
    assert parse_output("wide").format == "wide"
    assert parse_output("jsonpath={.a}").argument == "{.a}"
    assert parse_output("=json").format == "json"  # -o=json
    for bad in ("xml", "jsonpath", "json=x", "custom-columns="):
        with pytest.raises(CliError):
            parse_output(bad)


def test_align() -> None:
    assert align([["NAME", "AGE"], ["long-name", "1d"]]) == "NAME        AGE\nlong-name   1d\n"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("90m", 5400), ("1h30m", 5400), ("3600s", 3600), ("1.5h", 5400), ("0", 0)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1y", "h", "10", "1h x", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(CliError):
        parse_duration(text)


def test_server_names() -> None:
    assert normalize_server("127.0.0.1:8443/") == "https://127.0.0.1:8443"
    assert cluster_nickname("https://api.example.com") == "api-example-com:443"
    assert cluster_nickname("https://127.0.0.1:8443") == "127-0-0-1:8443"
    with pytest.raises(CliError):
        normalize_server("ftp://x")


def test_merge_patch() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": None, "e": 3}}) == {
        "a": {"c": 2, "e": 3},
        "d": 1,
    }


class _Offline(Discovery):
    def __init__(self, types: list[ResourceType]) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self._all = types
        self._fresh = True


def test_type_resolution() -> None:
    types = [
        ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, (), ("ns",)),
        ResourceType(
            "", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, (), ("sa",)
        ),
        ResourceType(
            "image.openshift.io",
            "v1",
            "imagestreams",
            "imagestream",
            "ImageStream",
            True,
            (),
            ("is",),
        ),
        ResourceType(
            "image.openshift.io",
            "v1",
            "imagestreamtags",
            "imagestreamtag",
            "ImageStreamTag",
            True,
            (),
            ("istag",),
        ),
        ResourceType(
            "rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True
        ),
    ]
    found = _Offline(types)
    for text, plural in [
        ("ns", "namespaces"),
        ("Namespace", "namespaces"),
        ("namespaces.v1", "namespaces"),
        ("is", "imagestreams"),
        ("istag", "imagestreamtags"),
        ("ImageStreamTag", "imagestreamtags"),
        ("imagestreams.image.openshift.io", "imagestreams"),
        ("imagestream.image", "imagestreams"),
        ("rolebindings.rbac", "rolebindings"),
        ("SA", "serviceaccounts"),
    ]:
        assert found.resolve(text).plural == plural, text
    for text in ("widgets", "imagestreams.rbac", "ns.image.openshift.io", ""):
        with pytest.raises(CliError):
            found.resolve(text)
    assert found.resolve("is").path("demo", "app") == (
        "/apis/image.openshift.io/v1/namespaces/demo/imagestreams/app"
    )
    assert found.resolve("ns").path("ignored", "x") == "/api/v1/namespaces/x"
    assert found.resolve("is").kind_name == "imagestream.image.openshift.io"


VERBS = [
    [],
    ["serve"],
    ["login"],
    ["logout"],
    ["whoami"],
    ["new-project"],
    ["project"],
    ["projects"],
    ["get"],
    ["describe"],
    ["create"],
    ["create", "token"],
    ["apply"],
    ["delete"],
    ["policy"],
    ["policy", "add-role-to-user"],
    ["policy", "remove-role-from-user"],
    ["policy", "add-role-to-group"],
    ["policy", "remove-role-from-group"],
    ["adm"],
    ["adm", "policy"],
    ["adm", "policy", "add-cluster-role-to-user"],
    ["adm", "policy", "remove-cluster-role-from-user"],
    ["adm", "policy", "add-cluster-role-to-group"],
    ["auth"],
    ["auth", "can-i"],
    ["user"],
    ["user", "add"],
    ["user", "remove"],
    ["user", "list"],
    ["htpasswd"],
]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: " ".join(v) or "wharf")
def test_every_verb_has_help(verb: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(app, [*verb, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage:" in out
    assert f"wharf {' '.join(verb)}".strip() in " ".join(out.split())


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_ages_in_ocs_words(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_ago() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert ago("2026-01-02T03:02:05Z", now) == "2 minutes ago"
    assert ago("not a time", now) == "<unknown>"
    assert ago(None, now) == "<unknown>"
