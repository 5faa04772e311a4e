"""Go templates as kubectl and oc print with them (`-o go-template=...`, `-o template
--template=...`): the common subset of Go's text/template, over the object as JSON.

Supported: text, `{{.}}`, `{{.a.b}}`, `{{$}}`, variables (`{{$x := .a}}`, `{{$x = .b}}`,
`{{range $i, $e := .items}}`), string, raw string, number and `true`/`false`/`nil` literals,
`{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}`, `{{range}}` (lists, and maps in key order) with
`{{else}}`, `{{with}}`, pipelines (`{{.a | printf "%s"}}`), parenthesised calls, comments,
`{{-` and `-}}` trimming, and the functions `index`, `len`, `not`, `and`, `or`, `eq`, `ne`, `lt`,
`le`, `gt`, `ge`, `print`, `printf`, `println`, `join`, `base64decode` and `exists`.

Values print as Go prints JSON-decoded data: a missing field as `<no value>`, maps as
`map[k:v ...]`, lists as `[a b]`. Errors (of parsing or of running) are `TemplateError`s, which
the command prints as `error: ...`."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import CliError


class TemplateError(CliError):
    pass


class _Missing:
    """A field that is not there: Go's invalid value, printed `<no value>`."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()

# Lexing

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<variable>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<identifier>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{3}))"
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def _unescape(body: str) -> str:
    """A Go string literal's escapes: \\n, \\t, \\", \\\\, \\xHH, \\uHHHH, \\UHHHHHHHH, \\ooo."""
    out: list[str] = []
    position = 0
    while position < len(body):
        slash = body.find("\\", position)
        if slash < 0:
            out.append(body[position:])
            break
        out.append(body[position:slash])
        match = _ESCAPE.match(body, slash)
        if match is None:
            raise TemplateError(f"invalid escape in string literal: {body[slash : slash + 2]}")
        simple, hex2, hex4, hex8, octal = match.groups()
        if simple:
            out.append(_GO_ESCAPES.get(simple, simple))
        else:
            code = int(octal, 8) if octal else int(hex2 or hex4 or hex8, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise TemplateError(f"invalid escape in string literal: {match.group(0)}")
            out.append(chr(code))
        position = match.end()
    return "".join(out)


def _tokens(action: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(action):
        match = _TOKEN.match(action, position)
        if match is None:
            raise TemplateError(f"unexpected {action[position]!r} in action {{{{{action}}}}}")
        kind = str(match.lastgroup)
        if kind != "space":
            tokens.append(Token(kind, match.group(0)))
        position = match.end()
    return tokens


# The tree


@dataclass(frozen=True)
class FieldChain:
    """`.a.b` on dot, on a variable (`$x.a`) or on a parenthesised pipeline."""

    base: Any  # None for dot, a variable name, or a Pipeline
    names: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Constant:
    value: Any


@dataclass(frozen=True)
class Command:
    """A function call (`index .a "b"`) or a single operand."""

    function: str | None
    args: tuple[Any, ...]
    source: str


@dataclass(frozen=True)
class Pipeline:
    declarations: tuple[str, ...]
    assign: bool  # `$x = ...` rather than `$x := ...`
    commands: tuple[Command, ...]
    source: str


@dataclass
class Action:
    pipeline: Pipeline


@dataclass
class Block:
    kind: str  # if, range, with
    pipeline: Pipeline
    body: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)


# Parsing

_UNSUPPORTED = ("define", "template", "block", "break", "continue")


def _split(template: str) -> Iterator[tuple[str, str]]:
    """("text", ...) and ("action", ...) in order, with `{{- ` and ` -}}` trimming applied."""
    position = 0
    trim_next = False
    while True:
        start = template.find("{{", position)
        text = template[position : start if start >= 0 else len(template)]
        if start < 0:
            yield "text", text.lstrip() if trim_next else text
            return
        left_trim = (
            template.startswith("{{- ", start)
            or template.startswith("{{-\t", start)
            or (template.startswith("{{-\n", start))
        )
        if trim_next:
            text = text.lstrip()
        if left_trim:
            text = text.rstrip()
        yield "text", text
        inner_start = start + (3 if left_trim else 2)
        end = _action_end(template, inner_start)
        inner = template[inner_start:end]
        trim_next = bool(re.search(r"\s-$", inner))
        if trim_next:
            inner = inner[:-2]
        yield "action", inner
        position = end + 2


def _action_end(template: str, start: int) -> int:
    """Where the `}}` closing the action starting at `start` is (quotes may hold `}}`)."""
    position = start
    if template.startswith("/*", position) or re.match(r"\s*/\*", template[position:]):
        close = template.find("*/", position)
        if close < 0:
            raise TemplateError("unclosed comment")
        position = close + 2
    while position < len(template):
        char = template[position]
        if template.startswith("}}", position):
            return position
        if char in "\"'`":
            position = _quote_end(template, position)
        position += 1
    raise TemplateError("unclosed action")


def _quote_end(template: str, start: int) -> int:
    quote = template[start]
    position = start + 1
    while position < len(template):
        char = template[position]
        if char == "\\" and quote != "`":
            position += 2
            continue
        if char == quote:
            return position
        if char == "\n" and quote != "`":
            break
        position += 1
    raise TemplateError("unterminated quoted string")


class _Parser:
    def __init__(self, template: str) -> None:
        self.items = list(_split(template))
        self.position = 0

    def parse(self) -> list[Any]:
        nodes, ending = self._list()
        if ending is not None:
            raise TemplateError(f"unexpected {{{{{ending}}}}}")
        return nodes

    def _list(self) -> tuple[list[Any], str | None]:
        """Nodes up to an `{{else...}}` or `{{end}}` (returned as the ending) or the end."""
        nodes: list[Any] = []
        while self.position < len(self.items):
            kind, text = self.items[self.position]
            self.position += 1
            if kind == "text":
                if text:
                    nodes.append(text)
                continue
            stripped = text.strip()
            if stripped.startswith("/*"):
                if not stripped.endswith("*/"):
                    raise TemplateError("comment ends before closing delimiter")
                continue
            tokens = _tokens(text)
            if not tokens:
                raise TemplateError("missing value for command")
            head = tokens[0]
            if head.kind == "identifier" and head.text in ("end", "else"):
                return nodes, " ".join(t.text for t in tokens)
            if head.kind == "identifier" and head.text in ("if", "range", "with"):
                nodes.append(self._block(head.text, tokens[1:]))
            elif head.kind == "identifier" and head.text in _UNSUPPORTED:
                raise TemplateError(f"{{{{{head.text}}}}} is not supported")
            else:
                nodes.append(Action(_pipeline(tokens, allow_declaration=True)))
        return nodes, None

    def _block(self, kind: str, tokens: list[Token]) -> Block:
        block = Block(kind, _pipeline(tokens, allow_declaration=True, in_range=kind == "range"))
        block.body, ending = self._list()
        if ending is None:
            raise TemplateError(f"unexpected EOF: {{{{{kind}}}}} without {{{{end}}}}")
        if ending == "end":
            return block
        words = ending.split(maxsplit=1)
        if words[0] != "else":
            raise TemplateError(f"unexpected {{{{{ending}}}}}")
        if len(words) == 1:
            block.otherwise, ending = self._list()
            if ending != "end":
                raise TemplateError(f"expected {{{{end}}}} after {{{{else}}}}, not {ending!r}")
            return block
        # `{{else if ...}}` and `{{else with ...}}`: a nested block that shares our {{end}}.
        nested_tokens = _tokens(words[1])
        if nested_tokens[0].text not in ("if", "with") or nested_tokens[0].kind != "identifier":
            raise TemplateError(f"unexpected {{{{{ending}}}}}")
        block.otherwise = [self._block(nested_tokens[0].text, nested_tokens[1:])]
        return block


def _pipeline(
    tokens: list[Token], allow_declaration: bool = False, in_range: bool = False
) -> Pipeline:
    source = " ".join(t.text for t in tokens)
    declarations: list[str] = []
    assign = False
    kinds = [t.kind for t in tokens]
    if in_range and kinds[:4] == ["variable", "comma", "variable", "declare"]:
        declarations = [tokens[0].text, tokens[2].text]
        tokens = tokens[4:]
    elif kinds[:1] == ["variable"] and kinds[1:2] in (["declare"], ["assign"]):
        declarations = [tokens[0].text]
        assign = kinds[1] == "assign"
        tokens = tokens[2:]
    if any("." in name for name in declarations):
        raise TemplateError(f"bad variable name in declaration: {source}")
    if declarations and not allow_declaration:
        raise TemplateError("variable declaration in a parenthesised pipeline")
    commands: list[Command] = []
    for part in _split_tokens(tokens, "pipe"):
        if not part:
            raise TemplateError(f"missing command in pipeline: {source}")
        commands.append(_command(part))
    if not commands:
        raise TemplateError(f"missing value for command: {source or 'empty action'}")
    return Pipeline(tuple(declarations), assign, tuple(commands), source)


def _split_tokens(tokens: list[Token], separator: str) -> list[list[Token]]:
    """Split at top-level `separator` tokens (not inside parentheses)."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "open":
            depth += 1
        elif token.kind == "close":
            depth -= 1
            if depth < 0:
                raise TemplateError("unexpected right paren")
        if token.kind == separator and depth == 0:
            parts.append([])
        else:
            parts[-1].append(token)
    if depth:
        raise TemplateError("unclosed left paren")
    return parts if any(parts) else []


def _command(tokens: list[Token]) -> Command:
    source = " ".join(t.text for t in tokens)
    operands = _operands(tokens)
    head = tokens[0]
    if head.kind == "identifier" and head.text not in ("true", "false", "nil"):
        if head.text not in FUNCTIONS:
            raise TemplateError(f'function "{head.text}" not defined')
        return Command(head.text, tuple(operands[1:]), source)
    if len(operands) > 1:
        raise TemplateError(f"can't give argument to non-function {tokens[0].text}")
    return Command(None, tuple(operands), source)


def _operands(tokens: list[Token]) -> list[Any]:
    operands: list[Any] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "open":
            depth, end = 0, index
            for end in range(index, len(tokens)):
                depth += {"open": 1, "close": -1}.get(tokens[end].kind, 0)
                if depth == 0:
                    break
            inner = _pipeline(tokens[index + 1 : end])
            index = end + 1
            names: tuple[str, ...] = ()
            if index < len(tokens) and tokens[index].kind == "field" and tokens[index].text != ".":
                names = tuple(tokens[index].text.split(".")[1:])
                index += 1
            operands.append(FieldChain(inner, names, f"({inner.source})"))
            continue
        operands.append(_operand(token))
        index += 1
    return operands


def _operand(token: Token) -> Any:
    text = token.text
    if token.kind == "field":
        names = () if text == "." else tuple(text.split(".")[1:])
        return FieldChain(None, names, text)
    if token.kind == "variable":
        name, _, rest = text.partition(".")
        return FieldChain(name, tuple(rest.split(".")) if rest else (), text)
    if token.kind == "string":
        return Constant(_unescape(text[1:-1]))
    if token.kind == "raw":
        return Constant(text[1:-1])
    if token.kind == "char":
        value = _unescape(text[1:-1])
        if len(value) != 1:
            raise TemplateError(f"malformed character constant: {text}")
        return Constant(ord(value))
    if token.kind == "number":
        return Constant(_number(text))
    if token.kind == "identifier":
        if text in ("true", "false"):
            return Constant(text == "true")
        if text == "nil":
            return Constant(None)
        return Constant(_FunctionName(text))
    raise TemplateError(f"unexpected {text!r} in operand")


@dataclass(frozen=True)
class _FunctionName:
    """A function named as an argument (`{{len index}}`): Go refuses it when run."""

    name: str


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", clean) and len(clean) < 40:
            whole: int | None = int(clean, 16)
        elif re.fullmatch(r"[-+]?\d+", clean) and len(clean) < 40:
            whole = int(clean)
        else:
            whole = None
        if whole is not None and -(1 << 63) <= whole < 1 << 63:
            return whole
        number = float(clean) if whole is None else float(whole)
    except (ValueError, OverflowError):
        raise TemplateError(f"bad number syntax: {text!r}") from None
    if number in (float("inf"), float("-inf")):
        raise TemplateError(f"number out of range: {text!r}")
    return number


def parse(template: str) -> list[Any]:
    """The template's tree; raises TemplateError on a template Go would not parse."""
    try:
        return _Parser(template).parse()
    except RecursionError:
        raise TemplateError("template nested too deeply") from None


# Running


def go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "interface {}"


def go_text(value: Any) -> str:
    """`fmt.Sprint` of JSON-decoded data, as Go prints it."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value).replace("e+0", "e+").replace("e-0", "e-")
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_text(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    if isinstance(value, _FunctionName):
        return value.name
    return str(value)


def truth(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if value is MISSING or value is None:
            raise TemplateError("index of untyped nil")
        if isinstance(value, dict):
            if not isinstance(key, str):
                raise TemplateError(f"value has type {go_type(key)}; should be string")
            value = value.get(key)
        elif isinstance(value, list | str):
            if isinstance(key, bool) or not isinstance(key, int):
                raise TemplateError(f"cannot index slice/array with type {go_type(key)}")
            if not 0 <= key < len(value):
                raise TemplateError(f"index out of range: {key}")
            item = value[key]
            value = ord(item) if isinstance(item, str) else item
        else:
            raise TemplateError(f"can't index item of type {go_type(value)}")
    return value


def _len(value: Any) -> int:
    if isinstance(value, str | list | dict):
        return len(value)
    raise TemplateError(f"len of type {go_type(value)}")


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([vsdqtxXfgeEbco%T])")


def _printf(form: Any, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use: %v %s %d %q %t %x %f %g %e %c %%."""
    if not isinstance(form, str):
        raise TemplateError(f"wrong type for printf format: {go_type(form)}")
    values = list(args)
    out: list[str] = []
    position = 0
    for match in _VERB.finditer(form):
        out.append(form[position : match.start()])
        position = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if not values:
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_pad(_format(verb, values.pop(0), precision), flags, width))
    out.append(form[position:])
    if values:
        out.append("%!(EXTRA " + ", ".join(f"{go_type(v)}={go_text(v)}" for v in values) + ")")
    return "".join(out)


def _format(verb: str, value: Any, precision: str | None) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if verb in "vs":
        return go_text(value)
    if verb == "T":
        return go_type(value)
    if verb == "q" and isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if verb == "t" and isinstance(value, bool):
        return "true" if value else "false"
    if verb in "dxXobc" and isinstance(value, int) and not isinstance(value, bool):
        return {
            "d": str(value),
            "x": format(value, "x"),
            "X": format(value, "X"),
            "o": format(value, "o"),
            "b": format(value, "b"),
            "c": chr(value) if 0 <= value <= 0x10FFFF else "\ufffd",
        }[verb]
    if verb in "xX" and isinstance(value, str):
        return value.encode().hex() if verb == "x" else value.encode().hex().upper()
    if verb in "fgeE" and number:
        digits = 6 if precision is None else min(int(precision), 100)
        if verb == "g" and precision is None:
            return go_text(float(value))
        return format(float(value), f".{digits}{verb}")
    return f"%!{verb}({go_type(value)}={go_text(value)})"


def _pad(text: str, flags: str, width: str | None) -> str:
    if not width or width == "*":
        return text
    size = min(int(width), 1000)
    return text.ljust(size) if "-" in flags else text.rjust(size, "0" if "0" in flags else " ")


def _compare(name: str) -> Callable[..., bool]:
    def compare(left: Any, *rights: Any) -> bool:
        if not rights:
            raise TemplateError(f"missing argument for comparison: {name}")
        if name == "eq":
            return any(_comparable(left, r) and left == r for r in rights)
        right = rights[0]
        if not _comparable(left, right):
            raise TemplateError(f"incompatible types for comparison: {name}")
        if name == "ne":
            return bool(left != right)
        texts = isinstance(left, str) and isinstance(right, str)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
        if not (texts or numbers):
            raise TemplateError(f"invalid type for comparison: {name}")
        ordered: dict[str, Callable[[Any, Any], bool]] = {
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
            "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b,
        }
        return ordered[name](left, right)

    return compare


def _comparable(left: Any, right: Any) -> bool:
    numbers = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return True
    if isinstance(left, dict | list) or isinstance(right, dict | list):
        raise TemplateError("incomparable types: maps and slices can only be compared to nil")
    return type(left) is type(right) or left is None or right is None


def _base64decode(value: Any) -> str:
    if not isinstance(value, str):
        raise TemplateError(f"base64decode of {go_type(value)}")
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError) as exc:
        raise TemplateError(f"base64decode: {exc}") from None


def _exists(value: Any, *keys: Any) -> bool:
    for key in keys:
        in_map = isinstance(value, dict) and isinstance(key, str) and key in value
        in_list = isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)
        if not (in_map or in_list):
            return False
        value = value[key]
    return True


def _join(items: Any, separator: Any) -> str:
    if not isinstance(items, list) or not isinstance(separator, str):
        raise TemplateError("join needs a list and a separator")
    return separator.join(go_text(i) for i in items)


def _print(*args: Any) -> str:
    # Go's Sprint puts a space between two operands only when neither is a string.
    out = ""
    for index, arg in enumerate(args):
        if index and not (isinstance(arg, str) or isinstance(args[index - 1], str)):
            out += " "
        out += go_text(arg)
    return out


def _and(*args: Any) -> Any:
    for arg in args:
        if not truth(arg):
            return arg
    return args[-1]


def _or(*args: Any) -> Any:
    for arg in args:
        if truth(arg):
            return arg
    return args[-1]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "index": _index,
    "len": _len,
    "not": lambda value: not truth(value),
    "and": _and,
    "or": _or,
    "eq": _compare("eq"),
    "ne": _compare("ne"),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
    "print": _print,
    "printf": _printf,
    "println": lambda *args: " ".join(go_text(a) for a in args) + "\n",
    "join": _join,
    "base64decode": _base64decode,
    "exists": _exists,
}
# (fewest, most) arguments of each function, checked before the call
_ARITY = {"not": (1, 1), "len": (1, 1), "and": (1, 999), "or": (1, 999), "index": (1, 999)}
_ARITY |= {"eq": (2, 999), "ne": (2, 2), "lt": (2, 2), "le": (2, 2), "gt": (2, 2), "ge": (2, 2)}
_ARITY |= {"base64decode": (1, 1), "join": (2, 2), "printf": (1, 999), "exists": (1, 999)}
_ARITY |= {"print": (0, 999), "println": (0, 999)}


@dataclass
class _Scope:
    root: Any
    variables: list[dict[str, Any]]

    def lookup(self, name: str) -> Any:
        for frame in reversed(self.variables):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable: {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.variables):
            if name in frame:
                frame[name] = value
                return
        raise TemplateError(f"undefined variable: {name}")


_MAX_OUTPUT = 64 << 20


class _Runner:
    def __init__(self, root: Any) -> None:
        self.scope = _Scope(root, [{"$": root}])
        self.out: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > _MAX_OUTPUT:
            raise TemplateError("the template's output is larger than 64 MiB")
        self.out.append(text)

    def run(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, str):
                self.write(node)
            elif isinstance(node, Action):
                value = self.pipeline(node.pipeline, dot)
                if not node.pipeline.declarations:
                    # Go digs a nil out of its interface{} and prints it as no value.
                    self.write("<no value>" if value is None else go_text(value))
            else:
                self.block(node, dot)

    def block(self, block: Block, dot: Any) -> None:
        self.scope.variables.append({})
        try:
            if block.kind == "range":
                self.range(block, dot)
                return
            value = self.pipeline(block.pipeline, dot)
            if truth(value):
                self.run(block.body, value if block.kind == "with" else dot)
            else:
                self.run(block.otherwise, dot)
        finally:
            self.scope.variables.pop()

    def range(self, block: Block, dot: Any) -> None:
        pipeline = block.pipeline
        value = self.pipeline(Pipeline((), False, pipeline.commands, pipeline.source), dot)
        if isinstance(value, dict):
            pairs: list[tuple[Any, Any]] = sorted(value.items())
        elif isinstance(value, list):
            pairs = list(enumerate(value))
        elif value is MISSING or value is None:
            pairs = []
        else:
            raise TemplateError(f"range can't iterate over {go_text(value)}")
        if not pairs:
            self.run(block.otherwise, dot)
            return
        names = pipeline.declarations
        for key, item in pairs:
            frame = self.scope.variables[-1]
            if len(names) == 2:
                frame[names[0]], frame[names[1]] = key, item
            elif len(names) == 1:
                frame[names[0]] = item
            self.run(block.body, item)

    def pipeline(self, pipeline: Pipeline, dot: Any) -> Any:
        value: Any = MISSING
        for index, command in enumerate(pipeline.commands):
            final = () if index == 0 else (value,)
            value = self.command(command, dot, final)
        for name in pipeline.declarations:
            if pipeline.assign:
                self.scope.assign(name, value)
            else:
                self.scope.variables[-1][name] = value
        return value

    def command(self, command: Command, dot: Any, final: tuple[Any, ...]) -> Any:
        if command.function is None:
            if final:
                raise TemplateError(f"can't give argument to non-function {command.source}")
            return self.operand(command.args[0], dot)
        function = FUNCTIONS[command.function]
        if command.function in ("and", "or"):
            # Go evaluates `and`/`or` arguments only as far as needed.
            return self._short_circuit(command, dot, final)
        args = [self.operand(a, dot) for a in command.args] + list(final)
        low, high = _ARITY[command.function]
        if not low <= len(args) <= high:
            raise TemplateError(f"wrong number of args for {command.function}: got {len(args)}")
        for arg in args:
            if isinstance(arg, _FunctionName):
                raise TemplateError(f"function {arg.name} used as a value")
        try:
            return function(*args)
        except TemplateError as exc:
            raise TemplateError(f"error calling {command.function}: {exc.message}") from None

    def _short_circuit(self, command: Command, dot: Any, final: tuple[Any, ...]) -> Any:
        if not command.args and not final:
            raise TemplateError(f"wrong number of args for {command.function}: got 0")
        value: Any = MISSING
        for arg in command.args:
            value = self.operand(arg, dot)
            if truth(value) != (command.function == "and"):
                return value
        return final[0] if final else value

    def operand(self, operand: Any, dot: Any) -> Any:
        if isinstance(operand, Constant):
            return operand.value
        assert isinstance(operand, FieldChain)
        if operand.base is None:
            value = dot
        elif isinstance(operand.base, Pipeline):
            value = self.pipeline(operand.base, dot)
        else:
            value = self.scope.lookup(operand.base)
        for name in operand.names:
            value = self.field(value, name, operand.source)
        return value

    def field(self, value: Any, name: str, source: str) -> Any:
        if value is MISSING:
            return MISSING  # Go: a field of nothing is nothing, quietly
        if value is None:
            raise TemplateError(f"<{source}>: nil pointer evaluating interface {{}}.{name}")
        if not isinstance(value, dict):
            raise TemplateError(f"<{source}>: can't evaluate field {name} in type {go_type(value)}")
        return value.get(name, MISSING)


def execute(nodes: list[Any], data: Any) -> str:
    runner = _Runner(data)
    try:
        runner.run(nodes, data)
    except RecursionError:
        raise TemplateError("template nested too deeply") from None
    return "".join(runner.out)


def render_checked(template: str) -> list[Any]:
    """The parsed template; a template Go would not parse fails as kubectl words it."""
    try:
        return parse(template)
    except TemplateError as exc:
        raise TemplateError(f"error parsing template {template}, {exc.message}") from None


def render(template: str, data: Any) -> str:
    """The template run over `data`; errors as kubectl words them."""
    nodes = render_checked(template)
    try:
        return execute(nodes, data)
    except TemplateError as exc:
        raise TemplateError(f'error executing template "{template}": {exc.message}') from None
