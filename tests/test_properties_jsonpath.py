"""Properties of the JSONPath templates of `wharf get -o jsonpath=...` (`wharf.cli.jsonpath`).

- Any template, on any JSON data, renders or fails with JsonPathError (which the CLI prints as
  `error: ...`); never IndexError, KeyError, ValueError, RecursionError or another traceback,
  whatever the nesting of the template or of the data. The same for custom-columns specs.
- For generated objects and generated simple paths (`{.a.b}`, `{.items[*].metadata.name}`,
  `{.items[N]}`, `{range .items[*]}...{end}`) the output is what a model written here says,
  from kubectl's rules: a missing field prints nothing, several results are joined by spaces,
  maps and lists print as JSON.

WHARF_PROPERTY_EXAMPLES sets the examples per test.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from wharf.cli import jsonpath
from wharf.cli.jsonpath import JsonPathError

EXAMPLES = int(os.environ.get("WHARF_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True)

KEYS = ["a", "b", "c", "items", "metadata", "name", "x-y", "k_1"]
keys = st.sampled_from(KEYS)
scalars = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.text(st.characters(codec="utf-8", exclude_characters="{}"), max_size=10),
)
json_data = st.recursive(
    st.one_of(scalars, st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)

# Pieces of templates: every bit of syntax the module knows, and some it does not.
PIECES = [
    "{",
    "}",
    ".",
    "..",
    "[",
    "]",
    "*",
    "?(",
    ")",
    "(",
    "@",
    "$",
    "range ",
    "end",
    "'",
    '"',
    "\\",
    ",",
    ":",
    "::",
    "0",
    "1",
    "-1",
    "2",
    "==",
    "!=",
    "<",
    ">=",
    "a",
    "items",
    " ",
    "x",
    "true",
    "null",
    "1.5",
    "::0",
    "[0:2:0]",
    "[?(@.a)]",
    "{range .items[*]}",
    "{end}",
    '{"\\n"}',
    "{.a}",
    "{..a}",
    "{.*}",
    "['a']",
    "[-1]",
    "[0,1]",
    "[a,b]",
    "99999999999999999999",
]
templates = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=14).map("".join),
    st.text(max_size=40),
)


def deep_filter(depth: int) -> str:
    """A filter in a filter in a filter..., `depth` deep."""
    return "{.a" + "[?(@.a" * depth + ")]" * depth + "}"


def deep_data(depth: int) -> Any:
    """Lists and maps `depth` deep, built without recursion."""
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def renders_or_refuses(template: str, data: Any) -> str | None:
    try:
        return jsonpath.render(template, data)
    except JsonPathError:
        return None


@PROPERTY
@given(template=templates, data=json_data)
def test_any_template_renders_or_fails_with_its_own_error(template: str, data: Any) -> None:
    renders_or_refuses(template, data)


# Long templates: a fifth of the examples covers the depths around the limit.
@settings(PROPERTY, max_examples=max(EXAMPLES // 5, 1))
@given(depth=st.integers(1, 300), data=json_data)
def test_deeply_nested_filters_render_or_fail_with_its_own_error(depth: int, data: Any) -> None:
    renders_or_refuses(deep_filter(depth), data)


# Deep data is slow to walk: a tenth of the examples covers the depths.
@settings(PROPERTY, max_examples=max(EXAMPLES // 10, 1))
@given(
    depth=st.integers(1, 480),
    template=st.sampled_from(["{..a}", "{..*}", "{.*}", "{.}", "{range ..a}[{@}]{end}"]),
)
def test_data_as_deep_as_json_decodes_renders(depth: int, template: str) -> None:
    """The CLI's data comes from json.loads: as deep as it decodes (here up to 960 levels,
    near its limit of a thousand), a template renders."""
    try:
        data = json.loads('{"a":[' * depth + "]}" * depth)
    except RecursionError:
        reject()
    assert isinstance(jsonpath.render(template, data), str)


@PROPERTY
@given(spec=templates, data=json_data)
def test_any_columns_spec_works_or_fails_with_its_own_error(spec: str, data: Any) -> None:
    try:
        columns = jsonpath.parse_columns(spec)
    except JsonPathError:
        return
    for _, nodes in columns:
        assert isinstance(jsonpath.column_value(nodes, data), str)


# A model of the simple paths, from kubectl's printing rules.


def model_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def model_walk(value: Any, path: list[str]) -> list[Any]:
    """The value at `path` (field names), or nothing when a field is missing."""
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return []
        value = value[key]
    return [value]


objects_data = st.recursive(
    scalars,
    lambda inner: st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
items = st.lists(
    st.fixed_dictionaries(
        {}, optional={"metadata": st.fixed_dictionaries({}, optional={"name": scalars})}
    ),
    max_size=5,
)
field_paths = st.lists(keys, min_size=1, max_size=4)


@PROPERTY
@given(data=objects_data, path=field_paths, dollar=st.booleans())
def test_field_paths_print_the_value_there(data: Any, path: list[str], dollar: bool) -> None:
    template = "{" + ("$" if dollar else "") + "".join(f".{key}" for key in path) + "}"
    expected = " ".join(model_text(v) for v in model_walk(data, path))
    assert jsonpath.render(template, data) == expected


@PROPERTY
@given(listed=items, prefix=st.text("ab :", max_size=3))
def test_items_star_names_print_every_name_joined_by_spaces(listed: list[Any], prefix: str) -> None:
    data = {"items": listed}
    names = [v for item in listed for v in model_walk(item, ["metadata", "name"])]
    expected = prefix + " ".join(model_text(name) for name in names)
    assert jsonpath.render(prefix + "{.items[*].metadata.name}", data) == expected


@PROPERTY
@given(listed=items, separator=st.sampled_from(["\\n", ",", " ", "\\t"]))
def test_range_prints_its_body_once_per_item(listed: list[Any], separator: str) -> None:
    data = {"items": listed}
    template = f'{{range .items[*]}}[{{.metadata.name}}]{{"{separator}"}}{{end}}'
    unescaped = separator.replace("\\n", "\n").replace("\\t", "\t")
    expected = "".join(
        "["
        + " ".join(model_text(v) for v in model_walk(item, ["metadata", "name"]))
        + "]"
        + unescaped
        for item in listed
    )
    assert jsonpath.render(template, data) == expected


@PROPERTY
@given(listed=st.lists(scalars, max_size=5), index=st.integers(-7, 7))
def test_an_index_prints_that_item_or_nothing(listed: list[Any], index: int) -> None:
    expected = model_text(listed[index]) if -len(listed) <= index < len(listed) else ""
    assert jsonpath.render(f"{{.items[{index}]}}", {"items": listed}) == expected


numbered = st.lists(
    st.fixed_dictionaries(
        {"name": st.text("abc", min_size=1, max_size=3)},
        optional={"n": st.integers(-3, 3)},
    ),
    max_size=6,
)
COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@PROPERTY
@given(listed=numbered, op=st.sampled_from(sorted(COMPARE)), value=st.integers(-3, 3))
def test_a_filter_keeps_the_items_whose_field_compares_true(
    listed: list[dict[str, Any]], op: str, value: int
) -> None:
    """Items without the field are left out, whatever the operator."""
    kept = [item["name"] for item in listed if "n" in item and COMPARE[op](item["n"], value)]
    template = f"{{.items[?(@.n {op} {value})].name}}"
    assert jsonpath.render(template, {"items": listed}) == " ".join(kept)


@PROPERTY
@given(
    listed=st.lists(st.integers(0, 99), max_size=8),
    start=st.none() | st.integers(-9, 9),
    stop=st.none() | st.integers(-9, 9),
    step=st.none() | st.integers(1, 3),
)
def test_a_slice_prints_the_items_it_spans(
    listed: list[int], start: int | None, stop: int | None, step: int | None
) -> None:
    """Negative bounds count from the end; bounds past either end are clamped."""

    def bound(value: int | None, default: int) -> int:
        if value is None:
            return default
        return min(max(value + len(listed) if value < 0 else value, 0), len(listed))

    spanned = listed[bound(start, 0) : bound(stop, len(listed)) : step or 1]
    spec = ("" if start is None else str(start)) + ":" + ("" if stop is None else str(stop))
    spec += "" if step is None else f":{step}"
    expected = " ".join(str(item) for item in spanned)
    assert jsonpath.render(f"{{.items[{spec}]}}", {"items": listed}) == expected


@PROPERTY
@given(listed=st.lists(st.integers(0, 99), max_size=6), indexes=st.lists(st.integers(-7, 7)))
def test_a_union_prints_each_index_that_exists_in_order(
    listed: list[int], indexes: list[int]
) -> None:
    if not indexes:
        return
    chosen = [listed[i] for i in indexes if -len(listed) <= i < len(listed)]
    template = "{.items[" + ",".join(str(i) for i in indexes) + "]}"
    expected = " ".join(str(item) for item in chosen)
    assert jsonpath.render(template, {"items": listed}) == expected


# Examples of what the properties found, kept as plain regressions.


def test_slice_step_zero_is_an_error_not_a_traceback() -> None:
    with pytest.raises(JsonPathError):
        jsonpath.render("{.items[0:2:0]}", {"items": [1, 2, 3]})
    assert jsonpath.render("{.items[0:3:2]}", {"items": [1, 2, 3]}) == "1 3"


def test_filters_nested_past_the_limit_are_an_error() -> None:
    with pytest.raises(JsonPathError):
        jsonpath.render(deep_filter(2000), {"a": []})
    data = {"a": [{"a": [{"a": 1}]}]}
    assert jsonpath.render("{.a[?(@.a[?(@.a)])].a[*].a}", data) == "1"


def test_descending_into_deep_data_works() -> None:
    assert jsonpath.render("{..a}", deep_data(900)).endswith("leaf")
