"""A small GraphQL parser and executor, enough for the documents the wandb client sends.

The stand-in has no schema: resolvers return plain dicts whose values are data or
callables taking the field's arguments, and the executor projects the selection set
onto them. Unknown nested fields resolve to null, as optional fields would on W&B.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n]*)
    |(?P<spread>\.\.\.)
    |(?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
    |(?P<string>"(?:\\.|[^"\\])*")
    |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    |(?P<name>[_A-Za-z][_0-9A-Za-z]*)
    |(?P<punct>[!$():=@\[\]{}|&])
    """,
    re.VERBOSE,
)


class GraphQLSyntaxError(ValueError):
    """The document is not GraphQL this parser understands."""


@dataclass
class Variable:
    """A `$name` reference inside an argument value."""

    name: str


@dataclass
class Field:
    """One field of a selection set."""

    name: str
    alias: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)
    selections: list[Selection] | None = None

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class FragmentSpread:
    """`...Name`, resolved against the document's fragments."""

    name: str
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class InlineFragment:
    """`... on Type { ... }`; the type condition is ignored (no schema)."""

    selections: list[Selection]
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)


Selection = Field | FragmentSpread | InlineFragment


@dataclass
class Operation:
    """The executable part of a document."""

    kind: str
    name: str | None
    defaults: dict[str, Any]
    selections: list[Selection]
    fragments: dict[str, list[Selection]]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = list(self._lex(text))
        self.pos = 0

    @staticmethod
    def _lex(text: str) -> Iterator[tuple[str, str]]:
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match:
                raise GraphQLSyntaxError(f"unexpected character at {pos}: {text[pos : pos + 20]!r}")
            pos = match.end()
            kind = match.lastgroup or ""
            if kind != "skip":
                yield kind, match.group()

    def peek(self, value: str | None = None) -> bool:
        if self.pos >= len(self.tokens):
            return False
        return value is None or self.tokens[self.pos][1] == value

    def next(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise GraphQLSyntaxError("unexpected end of document")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        _, got = self.next()
        if got != value:
            raise GraphQLSyntaxError(f"expected {value!r}, got {got!r}")

    def name(self) -> str:
        kind, value = self.next()
        if kind != "name":
            raise GraphQLSyntaxError(f"expected a name, got {value!r}")
        return value

    def document(self) -> tuple[list[Operation], dict[str, list[Selection]]]:
        operations: list[Operation] = []
        fragments: dict[str, list[Selection]] = {}
        while self.peek():
            if self.peek("{"):
                operations.append(Operation("query", None, {}, self.selection_set(), fragments))
                continue
            keyword = self.name()
            if keyword == "fragment":
                name = self.name()
                self.expect("on")
                self.name()
                self.directives()
                fragments[name] = self.selection_set()
            elif keyword in ("query", "mutation", "subscription"):
                name = None if self.peek("(") or self.peek("{") else self.name()
                defaults = self.variable_definitions() if self.peek("(") else {}
                self.directives()
                operations.append(
                    Operation(keyword, name, defaults, self.selection_set(), fragments)
                )
            else:
                raise GraphQLSyntaxError(f"unexpected {keyword!r}")
        return operations, fragments

    def variable_definitions(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        self.expect("(")
        while not self.peek(")"):
            self.expect("$")
            name = self.name()
            self.expect(":")
            self.type_ref()
            if self.peek("="):
                self.next()
                defaults[name] = self.value()
            self.directives()
        self.expect(")")
        return defaults

    def type_ref(self) -> None:
        if self.peek("["):
            self.next()
            self.type_ref()
            self.expect("]")
        else:
            self.name()
        if self.peek("!"):
            self.next()

    def directives(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        while self.peek("@"):
            self.next()
            name = self.name()
            found[name] = self.arguments() if self.peek("(") else {}
        return found

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        self.expect("(")
        while not self.peek(")"):
            name = self.name()
            self.expect(":")
            args[name] = self.value()
        self.expect(")")
        return args

    def value(self) -> Any:
        kind, token = self.next()
        if token == "$":
            return Variable(self.name())
        if token == "[":
            items = []
            while not self.peek("]"):
                items.append(self.value())
            self.next()
            return items
        if token == "{":
            obj = {}
            while not self.peek("}"):
                key = self.name()
                self.expect(":")
                obj[key] = self.value()
            self.next()
            return obj
        if kind == "number":
            return float(token) if re.search(r"[.eE]", token) else int(token)
        if kind == "string":
            return _unescape(token[1:-1])
        if kind == "block":
            return token[3:-3]
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(token, token)
        raise GraphQLSyntaxError(f"unexpected {token!r} in a value")

    def selection_set(self) -> list[Selection]:
        selections: list[Selection] = []
        self.expect("{")
        while not self.peek("}"):
            if self.peek("..."):
                self.next()
                if self.peek("on"):
                    self.next()
                    self.name()
                    directives = self.directives()
                    selections.append(InlineFragment(self.selection_set(), directives))
                elif self.peek("{") or self.peek("@"):
                    directives = self.directives()
                    selections.append(InlineFragment(self.selection_set(), directives))
                else:
                    name = self.name()
                    selections.append(FragmentSpread(name, self.directives()))
                continue
            name = self.name()
            alias = None
            if self.peek(":"):
                self.next()
                alias, name = name, self.name()
            args = self.arguments() if self.peek("(") else {}
            directives = self.directives()
            sub = self.selection_set() if self.peek("{") else None
            selections.append(Field(name, alias, args, directives, sub))
        self.next()
        return selections


def _unescape(text: str) -> str:
    escapes = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r"}
    escapes["t"] = "\t"

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("u"):
            return chr(int(code[1:], 16))
        return escapes.get(code, code)

    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", replace, text)


def parse(text: str, operation_name: str | None = None) -> Operation:
    """Parse a document and pick the operation to run (the named one, or the only one)."""
    operations, _ = _Parser(text).document()
    if operation_name:
        for op in operations:
            if op.name == operation_name:
                return op
        raise GraphQLSyntaxError(f"no operation named {operation_name!r}")
    if len(operations) != 1:
        raise GraphQLSyntaxError("the document must hold exactly one operation")
    return operations[0]


def execute(op: Operation, root: Mapping[str, Any], variables: Mapping[str, Any]) -> dict:
    """Run `op` against `root`; a root field the stand-in lacks raises KeyError."""
    values = {**op.defaults, **variables}
    result: dict[str, Any] = {}
    for fld in _collect(op.selections, op.fragments, values):
        if fld.name == "__typename":
            result[fld.key] = "Query" if op.kind == "query" else "Mutation"
            continue
        if fld.name not in root:
            raise KeyError(fld.name)
        result[fld.key] = _complete(
            _resolve(root[fld.name], fld, values), fld, op.fragments, values
        )
    return result


def _collect(
    selections: list[Selection],
    fragments: dict[str, list[Selection]],
    values: Mapping[str, Any],
) -> Iterator[Field]:
    for sel in selections:
        if not _included(sel.directives, values):
            continue
        if isinstance(sel, Field):
            yield sel
        elif isinstance(sel, FragmentSpread):
            yield from _collect(fragments[sel.name], fragments, values)
        else:
            yield from _collect(sel.selections, fragments, values)


def _included(directives: dict[str, dict[str, Any]], values: Mapping[str, Any]) -> bool:
    if "skip" in directives and _bind(directives["skip"].get("if"), values):
        return False
    return not ("include" in directives and not _bind(directives["include"].get("if"), values))


def _bind(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, Variable):
        return values.get(value.name)
    if isinstance(value, list):
        return [_bind(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _bind(v, values) for k, v in value.items()}
    return value


def _resolve(value: Any, fld: Field, values: Mapping[str, Any]) -> Any:
    if callable(value):
        return value(_bind(fld.args, values))
    return value


def _complete(
    value: Any, fld: Field, fragments: dict[str, list[Selection]], values: Mapping[str, Any]
) -> Any:
    if value is None or fld.selections is None:
        return value
    if isinstance(value, list):
        return [_complete(item, fld, fragments, values) for item in value]
    node: Mapping[str, Any] = value
    out: dict[str, Any] = {}
    for sub in _collect(fld.selections, fragments, values):
        raw = node.get(sub.name)
        out[sub.key] = _complete(_resolve(raw, sub, values), sub, fragments, values)
    return out
