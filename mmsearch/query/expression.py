"""The filter expression language of `mmsearch search --filter` and `search(filter=...)`.

A hand-written tokenizer and recursive-descent parser turn one line of text into a
`Predicate` tree of `mmsearch.query.filters`; the tree becomes SQL with every key and value
bound as a parameter. Nothing is evaluated and no input text reaches SQL. Examples:

    meta.camera = "north" and tags has "kitchen"
    meta.year >= 2020 and meta.year < 2024
    has meta.gps and not tags has "draft"
    media_type in ("audio", "video") or meta["content-type"] != "text/html"
    start_s >= 30 and end_s <= 90 and ingested_at >= "2026-01-01"

Grammar (keywords are case-insensitive; `not` binds tighter than `and`, `and` than `or`):

    filter   = or
    or       = and { "or" and }
    and      = unary { "and" unary }
    unary    = "not" unary | "(" or ")" | test
    test     = "has" metakey                          (the key exists, any value)
             | "tags" "has" ( value | ( "any" | "all" ) list )
             | field op value
             | field [ "not" ] "in" list              (equal to one of the values)
    field    = metakey | column
    metakey  = "meta" ( "." NAME | "[" STRING "]" )   (a top-level key of record metadata)
    column   = collection | media_type | mime | kind                  (strings; = != in)
             | start_s | end_s | duration_s | width | height          (numbers)
             | ingested_at | created_at       (ISO 8601 strings; without a zone, UTC)
    op       = "=" | "!=" | "<" | "<=" | ">" | ">="
    list     = "(" value { "," value } ")"
    value    = STRING | NUMBER | "true" | "false" | "null"

NAME is a letter or `_` then letters, digits or `_`. STRING is in double or single quotes;
a backslash makes the next character literal (`"say \\"hi\\""`). NUMBER is a decimal such as
`-3`, `2.5` or `1e6`.

Meaning: metadata `=` and `!=` compare JSON values exactly (2020 is not "2020"); ordering
compares numbers with JSON numbers and strings with JSON strings (codepoint order), so a
missing key or another type is simply false. `start_s`/`end_s` are the segment's own
times (NULL is false). `a != b` is `not a = b`, so it includes rows without the key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from mmsearch.errors import UserError
from mmsearch.query.filters import (
    COLUMNS,
    And,
    ColumnCompare,
    Comparison,
    HasTags,
    MetaCompare,
    MetaExists,
    Not,
    Or,
    Predicate,
    Scalar,
)

MAX_LENGTH = 10_000
MAX_DEPTH = 64
NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
INTEGER = re.compile(r"[-+]?\d+")

TokenKind = Literal["word", "string", "number", "op", "punct", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  #: the source text (a string token: its value, unquoted)
    pos: int  #: 0-based offset in the expression

    def is_keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words

    def describe(self) -> str:
        if self.kind == "end":
            return "the end"
        if self.kind == "string":
            shown = self.text if len(self.text) <= 20 else self.text[:17] + "..."
            return f"string {shown!r}"
        return repr(self.text)


def parse(text: str) -> Predicate:
    """Parse a filter expression; bad input raises a one-line `UserError` with its column."""
    if len(text) > MAX_LENGTH:
        raise UserError(f"filter is longer than {MAX_LENGTH} characters")
    return _Parser(text).parse()


def tokenize(text: str) -> list[Token]:
    """Words, strings, numbers, operators and punctuation, ending with an `end` token."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "(),.[]":
            tokens.append(Token("punct", char, i))
            i += 1
        elif char in "=!<>":
            op = text[i : i + 2] if text[i : i + 2] in ("!=", "<=", ">=", "==") else char
            if op == "!":
                raise _error("'!' must be followed by '=' (use not to negate)", i)
            tokens.append(Token("op", "=" if op == "==" else op, i))
            i += len(op)
        elif char in "\"'":
            value, end = _string(text, i)
            tokens.append(Token("string", value, i))
            i = end
        elif number := NUMBER.match(text, i):
            if not math.isfinite(float(number.group())):
                raise _error(f"number {number.group()[:20]} is out of range", i)
            tokens.append(Token("number", number.group(), i))
            i = number.end()
        elif char.isalpha() or char == "_":
            end = i + 1
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            tokens.append(Token("word", text[i:end], i))
            i = end
        else:
            raise _error(f"unexpected character {char!r}", i)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted string at `start`, and the offset after its closing quote."""
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif char == quote:
            return "".join(out), i + 1
        else:
            out.append(char)
            i += 1
    raise _error("unterminated string", start)


def _error(message: str, pos: int) -> UserError:
    return UserError(f"bad filter at column {pos + 1}: {message}")


@dataclass(frozen=True)
class _Field:
    name: str  #: a column of COLUMNS, or the metadata key
    meta: bool


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        token = self.peek()
        if token.kind != "end":
            raise _error(f"expected 'and', 'or' or the end, got {token.describe()}", token.pos)
        return predicate

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def accept(self, *words: str) -> Token | None:
        """Take the next token if it is one of the keywords (or punctuation) `words`."""
        token = self.peek()
        if token.is_keyword(*words) or (token.kind == "punct" and token.text in words):
            return self.take()
        return None

    def expect(self, punct: str, after: str) -> Token:
        token = self.take()
        if token.kind != "punct" or token.text != punct:
            raise _error(f"expected '{punct}' {after}, got {token.describe()}", token.pos)
        return token

    @contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"nested deeper than {MAX_DEPTH} levels", token.pos)
        try:
            yield
        finally:
            self.depth -= 1

    def disjunction(self) -> Predicate:
        items = [self.conjunction()]
        while self.accept("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Predicate:
        items = [self.unary()]
        while self.accept("and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Predicate:
        token = self.peek()
        if self.accept("not"):
            with self.nested(token):
                return Not(self.unary())
        if self.accept("("):
            with self.nested(token):
                inner = self.disjunction()
            self.expect(")", "to close the '(' at column " + str(token.pos + 1))
            return inner
        return self.test()

    def test(self) -> Predicate:
        token = self.peek()
        if self.accept("has"):
            start = self.peek()
            if start.kind != "word" or start.text != "meta":
                raise _error(f"expected meta.KEY after 'has', got {start.describe()}", start.pos)
            key = self.field().name
            return self.build(start, lambda: MetaExists(key))
        if token.kind == "word" and token.text == "tags":
            self.take()
            if not self.accept("has"):
                got = self.peek()
                raise _error(f"expected 'has' after 'tags', got {got.describe()}", got.pos)
            every = self.peek().is_keyword("all")
            items = self.values() if self.accept("any", "all") else [self.value()]
            tags: list[str] = []
            for item, value in items:
                if not isinstance(value, str):
                    raise _error(f"tags are strings, got {item.describe()}", item.pos)
                tags.append(value)
            return self.build(items[0][0], lambda: HasTags(tuple(tags), every=every))
        field = self.field()
        negated = self.accept("not")
        if negated or self.accept("in"):
            if negated and not self.accept("in"):
                got = self.peek()
                raise _error(f"expected 'in' after 'not', got {got.describe()}", got.pos)
            options = tuple(self.compare(field, "=", item) for item in self.values())
            choice = options[0] if len(options) == 1 else Or(options)
            return Not(choice) if negated else choice
        op = self.take()
        if op.kind != "op":
            raise _error(
                f"expected =, !=, <, <=, >, >= or in after the field, got {op.describe()}", op.pos
            )
        return self.compare(field, cast(Comparison, op.text), self.value())

    def field(self) -> _Field:
        token = self.take()
        if token.kind == "word" and token.text == "meta":
            if self.accept("."):
                key = self.take()
                if key.kind != "word":
                    got = key.describe()
                    raise _error(f"expected a key name after 'meta.', got {got}", key.pos)
                return _Field(key.text, meta=True)
            if self.accept("["):
                key = self.take()
                if key.kind != "string":
                    got = key.describe()
                    raise _error(f"expected a quoted key after 'meta[', got {got}", key.pos)
                self.expect("]", "after the key")
                return _Field(key.text, meta=True)
            got = self.peek()
            raise _error(f"expected '.' or '[' after 'meta', got {got.describe()}", got.pos)
        if token.kind == "word" and token.text in COLUMNS:
            return _Field(token.text, meta=False)
        raise _error(
            f"expected a field (meta.KEY, tags, {', '.join(COLUMNS)}), got {token.describe()}",
            token.pos,
        )

    def values(self) -> list[tuple[Token, Scalar]]:
        self.expect("(", "to start the list")
        items = [self.value()]
        while self.accept(","):
            items.append(self.value())
        self.expect(")", "to end the list")
        return items

    def value(self) -> tuple[Token, Scalar]:
        token = self.take()
        if token.kind == "string":
            return token, token.text
        if token.kind == "number":
            text = token.text
            return token, int(text) if INTEGER.fullmatch(text) else float(text)
        if token.is_keyword("true", "false", "null"):
            return token, {"true": True, "false": False, "null": None}[token.text.lower()]
        got = token.describe()
        raise _error(f"expected a string, number, true, false or null, got {got}", token.pos)

    def compare(self, field: _Field, op: Comparison, item: tuple[Token, Scalar]) -> Predicate:
        token, value = item
        if field.meta:
            return self.build(token, lambda: MetaCompare(field.name, op, value))
        if COLUMNS[field.name].kind == "time":
            return self.build(token, lambda: ColumnCompare(field.name, op, _timestamp(value)))
        return self.build(token, lambda: ColumnCompare(field.name, op, cast(str | float, value)))

    def build(self, token: Token, make: Callable[[], Predicate]) -> Predicate:
        """`make()`, its `UserError` (a bad value for the field) placed at `token`."""
        try:
            return make()
        except UserError as exc:
            raise _error(str(exc), token.pos) from None


def _timestamp(value: Scalar) -> datetime:
    if not isinstance(value, str):
        raise UserError('expected an ISO 8601 date in quotes, like "2026-01-01"')
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        shown = value[:40]
        raise UserError(f'expected an ISO 8601 date like "2026-01-01", got {shown!r}') from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
