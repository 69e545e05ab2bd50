"""A small OData ``$filter`` parser for the subset Graph directory queries use:
``eq ne ge le gt lt``, ``in (...)``, ``startswith/endswith(p,'v')``, ``not``, ``and``/``or``,
parentheses and lambda ``any`` (``proxyAddresses/any(x:x eq 'smtp:a@b')``,
``targetResources/any(t:t/id eq '...')``). The AST is compiled to SQL by the caller's
field map, so filters run in SQLite with its indexes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),:])|"
    r"(?P<dt>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)|(?P<num>-?\d+(?:\.\d+)?)|"
    r"(?P<word>[A-Za-z_$][A-Za-z0-9_./$]*))"
)
COMPARE = ("eq", "ne", "ge", "le", "gt", "lt")
# Deepest nesting of parentheses, not, and lambdas a filter may have; real filters use a few
# levels, and the recursive parser must stay far from Python's recursion limit.
MAX_DEPTH = 32
# Most tokens a filter may have: keeps the compiled SQL under SQLite's expression depth and
# bound-variable limits (a 1,000-term "or" chain would otherwise fail inside SQLite).
MAX_TOKENS = 500
# Integer literals are Edm.Int64, which is also what SQLite can bind.
INT64 = (-(2**63), 2**63 - 1)


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class In:
    field: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Func:
    name: str  # startswith | endswith
    field: str
    value: str


@dataclass(frozen=True)
class Any_:
    collection: str
    var: str
    body: Node


@dataclass(frozen=True)
class Bool:
    op: str  # and | or
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | In | Func | Any_ | Bool | Not


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"Syntax error at position {pos} in '{text}'.")
        pos = m.end()
        if len(out) >= MAX_TOKENS:
            raise FilterError(f"The query filter has more than {MAX_TOKENS} terms.")
        kind = m.lastgroup
        raw = m.group(kind or "")
        if kind == "str":
            out.append(("lit", raw[1:-1].replace("''", "'")))
        elif kind == "dt":
            out.append(("lit", raw))
        elif kind == "num":
            number = float(raw) if "." in raw else int(raw)
            if isinstance(number, int) and not INT64[0] <= number <= INT64[1]:
                raise FilterError(f"The number {raw} is out of range for Edm.Int64.")
            out.append(("lit", number))
        elif kind == "word" and raw in ("true", "false", "null"):
            out.append(("lit", {"true": True, "false": False, "null": None}[raw]))
        else:
            out.append((kind or "", raw))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"The query filter is nested more than {MAX_DEPTH} levels deep.")

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, Any]:
        tok = self.peek()
        if tok is None or (value is not None and str(tok[1]).lower() != value):
            raise FilterError(f"Expected '{value or 'token'}' in filter.")
        self.i += 1
        return tok

    def word(self) -> str | None:
        tok = self.peek()
        return str(tok[1]).lower() if tok and tok[0] == "word" else None

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise FilterError(f"Unexpected '{self.peek()[1]}' in filter.")  # type: ignore[index]
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.word() == "or":
            self.take()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Bool("or", tuple(items))

    def and_(self) -> Node:
        items = [self.unary()]
        while self.word() == "and":
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else Bool("and", tuple(items))

    def unary(self) -> Node:
        self.enter()
        try:
            if self.word() == "not":
                self.take()
                return Not(self.unary())
            tok = self.peek()
            if tok and tok[1] == "(":
                self.take("(")
                node = self.or_()
                self.take(")")
                return node
            return self.primary()
        finally:
            self.depth -= 1

    def literal(self) -> Any:
        kind, value = self.take()
        if kind != "lit":
            raise FilterError(f"Expected a literal, got '{value}'.")
        return value

    def primary(self) -> Node:
        kind, name = self.take()
        if kind != "word":
            raise FilterError(f"Unexpected '{name}' in filter.")
        low = name.lower()
        if low in ("startswith", "endswith"):
            self.take("(")
            field = str(self.take()[1])
            self.take(",")
            value = self.literal()
            self.take(")")
            return Func(low, field, str(value))
        if low.endswith("/any"):
            self.take("(")
            var = str(self.take()[1])
            self.take(":")
            body = self.or_()
            self.take(")")
            return Any_(name[: -len("/any")], var, body)
        op = self.word()
        if op in COMPARE:
            self.take()
            return Compare(name, op, self.literal())
        if op == "in":
            self.take()
            self.take("(")
            values = [self.literal()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take(",")
                values.append(self.literal())
            self.take(")")
            return In(name, tuple(values))
        raise FilterError(f"Unsupported operator after '{name}'.")


def parse(text: str) -> Node:
    return _Parser(text).parse()


def uses_advanced(node: Node) -> bool:
    """``ne``, ``not`` and ``endswith`` need ConsistencyLevel: eventual + $count (B.2)."""
    if isinstance(node, Compare):
        return node.op == "ne"
    if isinstance(node, Func):
        return node.name == "endswith"
    if isinstance(node, Not):
        return True
    if isinstance(node, Bool):
        return any(uses_advanced(i) for i in node.items)
    if isinstance(node, Any_):
        return uses_advanced(node.body)
    return False
