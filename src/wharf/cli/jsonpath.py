"""kubectl's JSONPath templates (`-o jsonpath=...`, `-o custom-columns=...`).

Supported: literal text, `{.a.b}`, `{$.a}`, `{@}`, `{.a['b.c']}`, `{.a.b\\.c}`, `{.items[*]}`,
`{.items[0]}`, `{.items[-1]}`, `{.items[0,2]}`, `{.items[1:3]}`, `{..name}`, `{.a.*}`,
`{.items[?(@.kind=="X")]}` (==, !=, <, <=, >, >= or existence), `{range EXPR}...{end}` (nested),
and string literals `{"\\n"}`. Missing fields print nothing, as with kubectl; several results of
one expression are joined by spaces; maps and lists print as JSON."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import CliError


class JsonPathError(CliError):
    pass


# Paths


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Descend:
    """`..`: the value and everything below it."""


@dataclass(frozen=True)
class Union:
    """`[0,2]` or `['a','b']`."""

    members: tuple[int | str, ...]


@dataclass(frozen=True)
class Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True)
class Filter:
    left: Path
    op: str  # "" tests that `left` exists and is not false/empty
    right: Path | Literal | None


@dataclass(frozen=True)
class Literal:
    value: Any


Step = Field | Wildcard | Descend | Union | Slice | Filter


@dataclass(frozen=True)
class Path:
    steps: tuple[Step, ...]
    from_root: bool = False

    @property
    def plural(self) -> bool:
        """Whether the path can yield many values (then `range` iterates its results)."""
        return any(isinstance(s, Wildcard | Descend | Slice | Filter) for s in self.steps) or any(
            isinstance(s, Union) and len(s.members) > 1 for s in self.steps
        )


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


def _closing(text: str, start: int, opening: str, closing: str) -> int:
    """The index of the bracket that closes the one at `start`, skipping quoted text."""
    depth = 0
    quote = ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise JsonPathError(f"unclosed {opening} in {text!r}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _unquote(text: str) -> str:
    if len(text) < 2 or text[-1] != text[0]:
        raise JsonPathError(f"unterminated string {text!r}")
    body, out, index = text[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            out.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _literal(text: str) -> Literal:
    text = text.strip()
    if text[:1] in ("'", '"'):
        return Literal(_unquote(text))
    if text in ("true", "false"):
        return Literal(text == "true")
    if text == "null":
        return Literal(None)
    try:
        return Literal(int(text))
    except ValueError:
        pass
    try:
        return Literal(float(text))
    except ValueError:
        raise JsonPathError(f"unrecognized value {text!r} in filter") from None


def _operand_path(text: str, depth: int) -> Path:
    if text[:1] not in ("@", "$"):
        raise JsonPathError(f"a filter compares @ or $ paths, not {text!r}")
    return parse_path(text, depth + 1)


def _filter(text: str, depth: int) -> Filter:
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
            continue
        if char in "'\"":
            quote = char
            continue
        for symbol in ("==", "!=", "<=", ">=", "<", ">"):
            if text.startswith(symbol, index):
                left, right = text[:index].strip(), text[index + len(symbol) :].strip()
                operand: Path | Literal = (
                    _operand_path(right, depth) if right[:1] in ("@", "$") else _literal(right)
                )
                return Filter(_operand_path(left, depth), symbol, operand)
    return Filter(_operand_path(text.strip(), depth), "", None)


def _bracket(content: str, depth: int) -> Step:
    content = content.strip()
    if content == "*":
        return Wildcard()
    if content.startswith("?"):
        inner = content[1:].strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise JsonPathError(f"malformed filter [{content}]")
        return _filter(inner[1:-1], depth)
    parts = _split_outside_quotes(content, ":")
    if len(parts) in (2, 3):
        numbers: list[int | None] = []
        for part in parts:
            part = part.strip()
            try:
                numbers.append(int(part) if part else None)
            except ValueError:
                raise JsonPathError(f"malformed slice [{content}]") from None
        numbers += [None] * (3 - len(numbers))
        if numbers[2] == 0:
            # Python's slices refuse a step of zero with a ValueError; kubectl refuses it too.
            raise JsonPathError(f"slice step cannot be zero in [{content}]")
        return Slice(numbers[0], numbers[1], numbers[2])
    members: list[int | str] = []
    for part in _split_outside_quotes(content, ","):
        part = part.strip()
        if not part:
            raise JsonPathError(f"empty subscript [{content}]")
        if part[0] in "'\"":
            members.append(_unquote(part))
        else:
            try:
                members.append(int(part))
            except ValueError:
                members.append(part)
    return Union(tuple(members))


# Filters nest paths that hold filters: parsing and evaluating them recurses once per level,
# so the levels are bounded to keep any template from reaching Python's recursion limit.
MAX_FILTER_DEPTH = 16


def parse_path(text: str, depth: int = 0) -> Path:
    """The path in `text`; `depth` counts the filters it stands in."""
    if depth > MAX_FILTER_DEPTH:
        raise JsonPathError(f"filters nested deeper than {MAX_FILTER_DEPTH} levels")
    text = text.strip()
    steps: list[Step] = []
    from_root = text.startswith("$")
    index = 1 if text[:1] in ("$", "@") else 0
    while index < len(text):
        if text.startswith("..", index):
            steps.append(Descend())
            index += 2
            if index < len(text) and text[index] == "*":
                steps.append(Wildcard())
                index += 1
            continue
        char = text[index]
        if char == ".":
            index += 1
            if index < len(text) and text[index] == "*":
                steps.append(Wildcard())
                index += 1
            continue
        if char == "[":
            end = _closing(text, index, "[", "]")
            steps.append(_bracket(text[index + 1 : end], depth))
            index = end + 1
            continue
        name = []
        while index < len(text) and text[index] not in ".[":
            if text[index] == "\\" and index + 1 < len(text):
                index += 1
            name.append(text[index])
            index += 1
        steps.append(Field("".join(name).strip()))
    return Path(tuple(steps), from_root)


# Templates


@dataclass
class Text:
    text: str


@dataclass
class Expression:
    path: Path


@dataclass
class Range:
    path: Path
    body: list[Node] = field(default_factory=list)


Node = Text | Expression | Range


def parse_template(template: str) -> list[Node]:
    if "{" not in template and template.strip()[:1] in (".", "$", "@", "["):
        template = "{" + template.strip() + "}"  # kubectl wants braces; we take the bare path
    top: list[Node] = []
    stack: list[list[Node]] = [top]
    index = 0
    while index < len(template):
        start = template.find("{", index)
        if start < 0:
            stack[-1].append(Text(template[index:]))
            break
        if start > index:
            stack[-1].append(Text(template[index:start]))
        end = _closing(template, start, "{", "}")
        inner = template[start + 1 : end].strip()
        index = end + 1
        if inner.startswith("range ") or inner == "range":
            node = Range(parse_path(inner[5:]))
            stack[-1].append(node)
            stack.append(node.body)
        elif inner == "end":
            if len(stack) == 1:
                raise JsonPathError("{end} without {range}")
            stack.pop()
        elif inner[:1] in ("'", '"') and _closing_quote(inner):
            stack[-1].append(Text(_unquote(inner)))
        else:
            stack[-1].append(Expression(parse_path(inner)))
    if len(stack) != 1:
        raise JsonPathError("{range} without {end}")
    return top


def _closing_quote(text: str) -> bool:
    return len(text) >= 2 and text[-1] == text[0]


# Evaluation


def _descendants(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for key in value:
            yield from _descendants(value[key])
    elif isinstance(value, list):
        for item in value:
            yield from _descendants(item)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("==", "!="):
        if isinstance(left, int | float) and isinstance(right, str):
            right = _number(right, right)
        elif isinstance(right, int | float) and isinstance(left, str):
            left = _number(left, left)
        return _OPERATORS[op](left, right)
    try:
        return _OPERATORS[op](_number(left, left), _number(right, right))
    except TypeError:
        return False


def _number(value: Any, default: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return default
    return value


def _matches(step: Filter, item: Any, root: Any) -> bool:
    found = evaluate(step.left, root, item)
    if not step.op:
        return bool(found) and found[0] not in (None, False, "", [], {})
    if not found:
        return False
    if isinstance(step.right, Literal):
        right = step.right.value
    else:
        assert step.right is not None
        others = evaluate(step.right, root, item)
        if not others:
            return False
        right = others[0]
    return _compare(step.op, found[0], right)


def _apply(step: Step, values: list[Any], root: Any) -> list[Any]:
    found: list[Any] = []
    for value in values:
        if isinstance(step, Field):
            if step.name in ("", "@"):
                found.append(value)
            elif isinstance(value, dict) and step.name in value:
                found.append(value[step.name])
        elif isinstance(step, Wildcard):
            if isinstance(value, list):
                found += value
            elif isinstance(value, dict):
                found += [value[k] for k in sorted(value)]
        elif isinstance(step, Descend):
            found += list(_descendants(value))
        elif isinstance(step, Union):
            for member in step.members:
                if isinstance(value, list) and isinstance(member, int):
                    if -len(value) <= member < len(value):
                        found.append(value[member])
                elif isinstance(value, dict) and str(member) in value:
                    found.append(value[str(member)])
        elif isinstance(step, Slice):
            if isinstance(value, list):
                found += value[step.start : step.stop : step.step]
        elif isinstance(step, Filter):
            items = value if isinstance(value, list) else [value]
            found += [item for item in items if _matches(step, item, root)]
    return found


def evaluate(path: Path, root: Any, current: Any) -> list[Any]:
    values = [root if path.from_root else current]
    for step in path.steps:
        values = _apply(step, values, root)
        if not values:
            break
    return values


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _render(nodes: list[Node], root: Any, current: Any, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Expression):
            out.append(" ".join(text_of(v) for v in evaluate(node.path, root, current)))
        else:
            values = evaluate(node.path, root, current)
            if not node.path.plural and len(values) == 1 and isinstance(values[0], list):
                values = values[0]
            for value in values:
                _render(node.body, root, value, out)


def render(template: str | list[Node], data: Any) -> str:
    nodes = parse_template(template) if isinstance(template, str) else template
    out: list[str] = []
    _render(nodes, data, data, out)
    return "".join(out)


# Custom columns


def relaxed(expression: str) -> str:
    """kubectl's relaxed column expression: `.a.b`, `a.b`, `{.a.b}` all mean `{.a.b}`."""
    expression = expression.strip()
    if expression.startswith("{") and expression.endswith("}"):
        expression = expression[1:-1].strip()
    if expression[:1] not in (".", "$", "@", "["):
        expression = "." + expression
    return "{" + expression + "}"


def parse_columns(spec: str) -> list[tuple[str, list[Node]]]:
    columns = []
    for part in _split_outside_quotes(spec, ","):
        header, sep, expression = part.partition(":")
        if not sep or not header.strip() or not expression.strip():
            raise JsonPathError(
                f"custom-columns format is NAME:EXPRESSION[,NAME:EXPRESSION...], got {part!r}"
            )
        columns.append((header.strip(), parse_template(relaxed(expression))))
    return columns


def column_value(nodes: list[Node], obj: Any) -> str:
    node = nodes[0]
    assert isinstance(node, Expression)
    values = evaluate(node.path, obj, obj)
    if not values or all(v is None for v in values):
        return "<none>"
    return ",".join(text_of(v) for v in values)
