"""A reader of CEL expressions into a small syntax tree, used only to check rules.

The CEL library (``cel``, Rust-backed) parses and evaluates conditions, but exposes no
syntax tree. To tell an operator at load time that ``customer.teir`` is not a field, or
that ``order.total > "abc"`` compares a number with text, ``streams.core.rules.check``
walks the tree this module builds. The grammar is the CEL specification's, minus message
construction (``Type{field: value}``), which rule conditions have no use for. The library
stays the judge of syntax: a condition is compiled by it first, so this reader only sees
expressions that CEL accepts.

Size limits. Rules come from a topic anyone upstream may write to, and reading a tree is
recursive (here, in the checker, in the library): ``!`` written 3,000 times overflowed
Python's stack and stopped every worker, and a long enough chain of ``+`` overflows the
library's own stack and kills the process outright. So a condition is measured before
anything recursive reads it (``measure``, by the rule compiler before the library sees it;
``parse`` again): at most ``MAX_CONDITION_CHARS`` characters and ``MAX_CONDITION_TOKENS``
tokens, nested at most ``MAX_DEPTH`` deep. Nesting counts open brackets, unary operators in
a row (``!!x``) and chained conditionals (``a ? b : c ? d : e``), all found by a scan of the
tokens, and, once parsed, the depth of the tree, found without recursion: a chain
``a || b || c`` is a tree as deep as it has operators. Real rules are a few dozen tokens and
nest a handful of levels.
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
_LEVEL_OF = {op: level for level, ops in enumerate(_BINARY_LEVELS) for op in ops}
_OPENING, _CLOSING = frozenset("([{"), frozenset(")]}")

MAX_CONDITION_CHARS = 10_000
"""The longest condition accepted, in characters (a list of a few hundred skus fits)."""
MAX_CONDITION_TOKENS = 2_000
"""The most names, values and operators a condition may have."""
MAX_DEPTH = 64
"""How deeply a condition may nest: brackets, unary operators in a row, chained conditionals
and the operators of a chain such as ``a || b || c`` each count one level."""


class ExprTooLarge(ValueError):
    """An expression past one of the size limits; the message names the limit."""


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


def measure(source: str) -> None:
    """Raise ExprTooLarge if ``source`` is past a size limit that shows without parsing it.

    Only a scan, nothing recursive: safe on any text, so it runs before the library's parser.
    Text this reader cannot tokenize is measured by its length only; the library refuses it.
    """
    _check_length(source)
    try:
        tokens = tokenize(source)
    except ExprSyntaxError:
        return
    _check_tokens(tokens)


def parse(source: str) -> Node:
    """The syntax tree of a CEL expression; ExprTooLarge past a size limit."""
    _check_length(source)
    tokens = tokenize(source)
    _check_tokens(tokens)
    tree = _Parser(tokens).parse_all()
    levels = depth(tree)
    if levels > MAX_DEPTH:
        raise ExprTooLarge(_too_deep(levels))
    return tree


def depth(node: Node) -> int:
    """How many levels the tree goes below ``node``, counted without recursion."""
    deepest = 0
    pending = [(node, 0)]
    while pending:
        current, level = pending.pop()
        deepest = max(deepest, level)
        children = current.args if current.target is None else (current.target, *current.args)
        pending.extend((child, level + 1) for child in children)
    return deepest


def _too_deep(levels: int) -> str:
    return f"condition is nested {levels} deep; the limit is {MAX_DEPTH}"


def _check_length(source: str) -> None:
    if len(source) > MAX_CONDITION_CHARS:
        raise ExprTooLarge(
            f"condition is {len(source):,} characters long; the limit is {MAX_CONDITION_CHARS:,}"
        )


def _check_tokens(tokens: list[Token]) -> None:
    levels = nesting(tokens)
    if levels > MAX_DEPTH:
        raise ExprTooLarge(_too_deep(levels))
    count = len(tokens) - 1  # the eof token is not the operator's
    if count > MAX_CONDITION_TOKENS:
        raise ExprTooLarge(
            f"condition has {count:,} names, values and operators; "
            f"the limit is {MAX_CONDITION_TOKENS:,}"
        )


def nesting(tokens: list[Token]) -> int:
    """How deeply ``tokens`` nest, as far as a scan can tell: an open bracket, a unary
    operator of a run (``!!x`` is 2) and a ``?`` (its else part may hold the next one) each
    add a level until the bracket around them closes; a unary run lasts to the end of its
    operand (``!x[y]`` reads ``y`` under the ``!``). The parser recurses no deeper than this
    plus one, so measuring it first keeps the parser's stack bounded."""
    deepest = base = run = 0
    opened: list[tuple[int, int]] = []  # per open bracket: the level and run outside it
    previous: Token | None = None
    for token in tokens:
        text = token.text if token.kind == "op" else ""
        if text in _OPENING:
            opened.append((base, run))
            base, run = base + run + 1, 0
        elif text in _CLOSING:
            base, run = opened.pop() if opened else (base, 0)
        elif text == ",":
            base, run = (sum(opened[-1]) + 1 if opened else base), 0  # a new item: afresh
        elif text == "!" or (text == "-" and _before_operand(previous)):
            run += 1
        elif text == "?":
            base, run = base + 1, 0
        elif text in _LEVEL_OF or text == ":":
            run = 0  # the end of an operand, and of the unary operators before it
        deepest = max(deepest, base + run)
        previous = token
    return deepest


def _before_operand(previous: Token | None) -> bool:
    """Whether a ``-`` after ``previous`` is a sign (unary), not a subtraction."""
    return previous is None or (previous.kind == "op" and previous.text not in _CLOSING)


class _Parser:
    """A recursive-descent reader following the precedence levels of the CEL grammar.

    It recurses only into what nests (brackets, unary operators, conditionals), at most
    ``MAX_DEPTH + 1`` levels: ``parse`` measured the nesting first, and the parser counts its
    own levels as well, so a path the scan did not foresee still cannot overflow the stack.
    """

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._at = 0
        self._depth = 0

    def _descend(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH + 1:  # the whole expression is the first level
            raise ExprTooLarge(_too_deep(self._depth - 1))

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
        self._descend()
        condition = self._binary(0)
        if self._accept("?") is None:
            self._depth -= 1
            return condition
        then = self._binary(0)
        self._expect(":")
        otherwise = self._expr()
        self._depth -= 1
        return Node("cond", "?:", (condition, then, otherwise), condition.start, otherwise.end)

    def _binary(self, lowest: int) -> Node:
        """Operators of precedence ``lowest`` and above, each level left-associative.

        A chain (``a || b || c``) is read in a loop, and the right operand of an operator
        recurses only for operators that bind more tightly: at most one call per level.
        """
        left = self._unary()
        while (token := self._peek()).kind == "op" and _LEVEL_OF.get(token.text, -1) >= lowest:
            self._next()
            right = self._binary(_LEVEL_OF[token.text] + 1)
            left = Node(
                "binary", token.text, (left, right), left.start, right.end, None, token.start
            )
        return left

    def _unary(self) -> Node:
        token = self._peek()
        if token.kind == "op" and token.text in ("!", "-"):
            self._next()
            self._descend()
            operand = self._unary()
            self._depth -= 1
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
