"""A reader of CEL expressions into a small syntax tree, used only to check rules.

The CEL library (``cel``, Rust-backed) parses and evaluates conditions, but exposes no
syntax tree. To tell an operator at load time that ``customer.teir`` is not a field, or
that ``order.total > "abc"`` compares a number with text, ``streams.core.rules_check``
walks the tree this module builds. The grammar is the CEL specification's, minus message
construction (``Type{field: value}``), which rule conditions have no use for. The library
stays the judge of syntax: a condition is compiled by it first, so this reader only sees
expressions that CEL accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
    | (?P<string>
        (?P<raw>[bB]?[rR][bB]?)(?P<rq>"{3}|'{3}|"|')(?:(?!(?P=rq)).)*?(?P=rq)
        | (?P<prefix>[bB]?)(?P<quote>"{3}|'{3}|"|')(?:\\.|(?!(?P=quote)).)*?(?P=quote))
    | (?P<double>(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?))
    | (?P<uint>(?:0[xX][0-9a-fA-F]+|\d+)[uU])
    | (?P<int>0[xX][0-9a-fA-F]+|\d+)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
_KINDS = ("space", "string", "double", "uint", "int", "ident", "op")
_LITERAL_WORDS = {"true": "bool", "false": "bool", "null": "null"}
_BINARY_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"<", "<=", ">", ">=", "==", "!=", "in"}),
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
)


class ExprSyntaxError(ValueError):
    """An expression this reader cannot follow; ``position`` is a 0-based offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the tree; ``start``/``end`` are offsets into the source.

    ``kind`` is one of: literal (``name`` is its CEL type), ident, select (``name`` is
    the field), call (``name`` is the function; ``target`` set for ``x.f()``), index,
    unary, binary (``name`` is the operator, at ``operator_at``), cond, list, map.
    """

    kind: str
    name: str
    args: tuple[Node, ...]
    start: int
    end: int
    target: Node | None = None
    operator_at: int = -1


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source``, ending with an ``eof`` token."""
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise ExprSyntaxError(f"unexpected character {source[position]!r}", position)
        kind = next(name for name in _KINDS if match.group(name) is not None)
        if kind != "space":
            text = match.group(kind)
            if kind == "ident" and text in _LITERAL_WORDS:
                kind = _LITERAL_WORDS[text]
            elif kind == "ident" and text == "in":
                kind = "op"
            elif kind == "string" and "b" in (match.group("raw") or match.group("prefix")).lower():
                kind = "bytes"
            tokens.append(Token(kind, text, match.start(), match.end()))
        position = match.end()
    tokens.append(Token("eof", "", len(source), len(source)))
    return tokens


def parse(source: str) -> Node:
    """The syntax tree of a CEL expression."""
    return _Parser(tokenize(source)).parse_all()


class _Parser:
    """A recursive-descent reader following the precedence levels of the CEL grammar."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._at = 0

    def parse_all(self) -> Node:
        node = self._expr()
        token = self._peek()
        if token.kind != "eof":
            raise ExprSyntaxError(f"unexpected {token.text!r}", token.start)
        return node

    def _peek(self) -> Token:
        return self._tokens[self._at]

    def _next(self) -> Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _accept(self, text: str) -> Token | None:
        token = self._peek()
        if token.kind == "op" and token.text == text:
            self._at += 1
            return token
        return None

    def _expect(self, text: str) -> Token:
        token = self._accept(text)
        if token is None:
            found = self._peek()
            raise ExprSyntaxError(f"expected {text!r}, found {found.text!r}", found.start)
        return token

    def _expr(self) -> Node:
        condition = self._binary(0)
        if self._accept("?") is None:
            return condition
        then = self._binary(0)
        self._expect(":")
        otherwise = self._expr()
        return Node("cond", "?:", (condition, then, otherwise), condition.start, otherwise.end)

    def _binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self._unary()
        left = self._binary(level + 1)
        while (token := self._peek()).kind == "op" and token.text in _BINARY_LEVELS[level]:
            self._next()
            right = self._binary(level + 1)
            left = Node(
                "binary", token.text, (left, right), left.start, right.end, None, token.start
            )
        return left

    def _unary(self) -> Node:
        token = self._peek()
        if token.kind == "op" and token.text in ("!", "-"):
            self._next()
            operand = self._unary()
            return Node("unary", token.text, (operand,), token.start, operand.end)
        return self._member()

    def _member(self) -> Node:
        node = self._primary()
        while True:
            if self._accept(".") is not None:
                field = self._next()
                if field.kind != "ident":
                    raise ExprSyntaxError("expected a field name after '.'", field.start)
                if self._accept("(") is not None:
                    args, end = self._list_until(")")
                    node = Node("call", field.text, args, node.start, end, target=node)
                else:
                    node = Node("select", field.text, (node,), node.start, field.end)
            elif self._accept("[") is not None:
                index = self._expr()
                end = self._expect("]").end
                node = Node("index", "[]", (node, index), node.start, end)
            else:
                return node

    def _primary(self) -> Node:
        token = self._next()
        if token.kind == "ident":
            if self._accept("(") is not None:
                args, end = self._list_until(")")
                return Node("call", token.text, args, token.start, end)
            return Node("ident", token.text, (), token.start, token.end)
        if token.kind == "op" and token.text == "(":
            inner = self._expr()
            end = self._expect(")").end
            return Node(
                inner.kind,
                inner.name,
                inner.args,
                token.start,
                end,
                inner.target,
                inner.operator_at,
            )
        if token.kind == "op" and token.text == "[":
            items, end = self._list_until("]")
            return Node("list", "[]", items, token.start, end)
        if token.kind == "op" and token.text == "{":
            return self._map(token)
        if token.kind in ("int", "uint", "double", "string", "bytes", "bool", "null"):
            return Node("literal", token.kind, (), token.start, token.end)
        raise ExprSyntaxError(f"unexpected {token.text or 'end of expression'!r}", token.start)

    def _list_until(self, closing: str) -> tuple[tuple[Node, ...], int]:
        items: list[Node] = []
        while (end := self._accept(closing)) is None:
            items.append(self._expr())
            if self._accept(",") is None:
                end = self._expect(closing)
                break
        return tuple(items), end.end

    def _map(self, opening: Token) -> Node:
        entries: list[Node] = []
        while (end := self._accept("}")) is None:
            key = self._expr()
            self._expect(":")
            entries.extend((key, self._expr()))
            if self._accept(",") is None:
                end = self._expect("}")
                break
        return Node("map", "{}", tuple(entries), opening.start, end.end)
