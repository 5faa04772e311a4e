"""Go templates (`-o go-template=...`, `--template`): the subset kubectl users write, as Go's
text/template prints it, and any string at all either renders or fails as a clean
TemplateError (printed `error: ...`), never another exception."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wharf.cli.gotemplate import FUNCTIONS, TemplateError, render

OBJECT: dict[str, Any] = {
    "kind": "List",
    "items": [
        {
            "metadata": {
                "name": "app",
                "labels": {"tier": "web", "app.kubernetes.io/name": "shop"},
                "annotations": None,
            },
            "spec": {"replicas": 3, "ready": True, "ports": [80, 443]},
            "data": {"password": "c2VjcmV0"},
        },
        {"metadata": {"name": "db", "labels": {}}, "spec": {"replicas": 0, "ready": False}},
    ],
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain text", "plain text"),
        ("{{.kind}}", "List"),
        ('{{range .items}}{{.metadata.name}}{{"\\n"}}{{end}}', "app\ndb\n"),
        ("{{range .items}}{{.metadata.name}} {{end}}", "app db "),
        ('{{index (index .items 0).metadata.labels "app.kubernetes.io/name"}}', "shop"),
        ('{{range .items}}{{index .metadata.labels "tier"}};{{end}}', "web;<no value>;"),
        ("{{range .items}}{{if .spec.ready}}{{.metadata.name}}{{end}}{{end}}", "app"),
        (
            "{{range .items}}{{if .spec.replicas}}up{{else}}down{{end}} {{end}}",
            "up down ",
        ),
        (
            '{{range .items}}{{if eq .metadata.name "db"}}db!'
            "{{else if .spec.ready}}r{{end}}{{end}}",
            "rdb!",
        ),
        ("{{.missing}}", "<no value>"),
        ("{{.missing.deeper}}", "<no value>"),
        ("{{with index .items 1}}{{.metadata.name}}{{end}}", "db"),
        ("{{with .missing}}yes{{else}}no{{end}}", "no"),
        ("{{range .nothing}}x{{else}}empty{{end}}", "empty"),
        ("{{range $i, $item := .items}}{{$i}}={{$item.metadata.name}},{{end}}", "0=app,1=db,"),
        ("{{$first := index .items 0}}{{$first.spec.replicas}}", "3"),
        ("{{range .items}}{{$.kind}}{{end}}", "ListList"),
        ("{{(index .items 0).spec.ports}}", "[80 443]"),
        ("{{(index .items 0).metadata.labels}}", "map[app.kubernetes.io/name:shop tier:web]"),
        ("{{len .items}} {{len (index .items 0).spec.ports}}", "2 2"),
        ('{{printf "%s has %d" (index .items 0).metadata.name 3}}', "app has 3"),
        ('{{(index .items 0).metadata.name | printf "%q"}}', '"app"'),
        ("{{(index .items 0).data.password | base64decode}}", "secret"),
        ("a  {{- .kind -}}  b", "aListb"),
        ("{{/* a comment */}}x", "x"),
        ("{{`raw\\n`}}", "raw\\n"),
        ('{{"tab\\tand \\u00e9"}}', "tab\tand \u00e9"),
        ('{{not true}} {{and 1 0}} {{or 0 "x"}} {{ne 1 2}} {{lt 1 2}}', "false 0 x true true"),
        ("{{(index .items 0).metadata.annotations}}", "<no value>"),
        ("{{1.5}} {{-2}} {{0x10}} {{nil | print}}", "1.5 -2 16 <nil>"),
        ('{{exists . "items"}} {{exists . "nope"}}', "true false"),
        ('{{print "a" "b" 1 2 "c"}}', "ab1 2c"),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert render(template, OBJECT) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.kind", "unclosed action"),
        ("{{if .kind}}x", "without {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ("{{nosuch .kind}}", 'function "nosuch" not defined'),
        ('{{"open}}', "unterminated quoted string"),
        ("{{.kind .kind}}", "can't give argument to non-function"),
        ("{{(index .items 0}}", "unclosed left paren"),
        ("{{}}", "missing value for command"),
        ('{{define "x"}}{{end}}', "not supported"),
        ("{{$undefined}}", "undefined variable: $undefined"),
        ("{{.kind.name}}", "can't evaluate field name in type string"),
        ("{{(index .items 0).metadata.annotations.x}}", "nil pointer evaluating interface {}.x"),
        ("{{index .items 5}}", "index out of range: 5"),
        ('{{index .items "a"}}', "cannot index slice/array with type string"),
        ("{{len 3}}", "len of type int64"),
        ("{{lt .items 1}}", "incomparable types"),
        ('{{"\\q"}}', "invalid escape"),
        ("{{1e999}}", "number out of range"),
        ('{{"abc" | base64decode}}', "error calling base64decode"),
    ],
)
def test_template_errors(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, OBJECT)
    assert message in caught.value.message
    assert caught.value.message.startswith("error ")


# Template-shaped strings: fragments of the syntax glued together at random, so that most
# examples get past the lexer and exercise the parser and the runner, not just "unclosed".
FRAGMENTS = st.sampled_from(
    [
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        ".",
        ".items",
        ".metadata",
        ".name",
        ".spec.replicas",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        ",",
        '"s"',
        '"\\n"',
        "`r`",
        "'c'",
        "1",
        "-2",
        "0x1F",
        "1.5e3",
        "true",
        "nil",
        "if",
        "else",
        "end",
        "range",
        "with",
        "index",
        "len",
        "printf",
        '"%d %s %v %q %x %5.2f %-3s %%"',
        "eq",
        "ne",
        "lt",
        "and",
        "or",
        "not",
        "print",
        "base64decode",
        "exists",
        "join",
        "/*",
        "*/",
        "text",
        "\n",
        "{",
        "}",
        "\\",
        "define",
    ]
)
ACTIONS = st.lists(FRAGMENTS, min_size=1, max_size=6).map(lambda w: "{{" + " ".join(w) + "}}")
PIECES = st.one_of(ACTIONS, ACTIONS, FRAGMENTS, st.text(max_size=5))
# And templates of the grammar's shape, so that many get as far as being run.
OPERANDS = st.sampled_from(
    [
        ".",
        ".items",
        ".kind",
        ".metadata.name",
        ".spec.ports",
        "$",
        "$.items",
        "$x",
        '"s"',
        '"c2VjcmV0"',
        "1",
        "0",
        "-1",
        "2.5",
        "nil",
        "true",
        "(index .items 0)",
        "(len .items)",
        "(index .items 0).spec",
        "(index .items 0).metadata.annotations",
    ]
)
CALLS = st.one_of(
    OPERANDS,
    st.tuples(st.sampled_from(sorted(FUNCTIONS)), st.lists(OPERANDS, max_size=3)).map(
        lambda call: " ".join([call[0], *call[1]])
    ),
)
PIPELINES = st.lists(CALLS, min_size=1, max_size=3).map(" | ".join)
DECLARED = st.one_of(PIPELINES, PIPELINES.map(lambda p: f"$x := {p}"))


def blocks(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """if/with/range blocks, with else, around templates made so far."""
    kinds = st.sampled_from(["if", "with", "range"])
    return st.one_of(
        st.tuples(kinds, DECLARED, inner, inner).map(
            lambda b: f"{{{{{b[0]} {b[1]}}}}}{b[2]}{{{{else}}}}{b[3]}{{{{end}}}}"
        ),
        st.tuples(PIPELINES, inner).map(
            lambda b: f"{{{{range $i, $x := {b[0]}}}}}{b[1]}{{{{end}}}}"
        ),
        st.lists(inner, min_size=2, max_size=3).map("".join),
    )


SHAPED = st.recursive(
    st.one_of(st.text(max_size=3), DECLARED.map(lambda p: "{{" + p + "}}")), blocks, max_leaves=8
)
TEMPLATES = st.one_of(
    SHAPED, SHAPED, st.text(max_size=60), st.lists(PIECES, min_size=1, max_size=12).map("".join)
)


@settings(max_examples=600, deadline=None)
@given(TEMPLATES)
def test_any_string_renders_or_fails_cleanly(template: str) -> None:
    try:
        out = render(template, OBJECT)
    except TemplateError as exc:
        assert exc.message.startswith(("error parsing template", "error executing template"))
    else:
        assert isinstance(out, str)
