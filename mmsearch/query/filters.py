"""Structured filters, composed into SQL conditions on `record r` and `segment s`.

Every value and every metadata key is a bound parameter; column names come from this
module's own tables. Nothing a user typed is ever pasted into SQL text.

Beyond the fixed fields of `Filters`, `Filters.where` holds a predicate tree (the target of
the CLI's filter expressions, `mmsearch.query.expression`). Every predicate in it is
two-valued: a missing metadata key or a NULL column makes a comparison false, never NULL,
so `Not` means exactly "the other rows".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from psycopg import sql
from psycopg.types.json import Jsonb

from mmsearch.errors import UserError

MEDIA_TYPES = frozenset({"text", "image", "audio", "video"})
SEGMENT_KINDS = frozenset({"chunk", "image", "window", "shot", "transcript", "ocr"})

Comparison = Literal["=", "!=", "<", "<=", ">", ">="]
OPERATORS: dict[str, sql.SQL] = {op: sql.SQL(op) for op in ("=", "!=", "<", "<=", ">", ">=")}
Scalar = str | int | float | bool | None
#: binds one value as a fresh placeholder
Bind = Callable[[Any], sql.Placeholder]


@dataclass(frozen=True)
class Column:
    """A record/segment column that predicates may compare; `sql` is ours, never user text."""

    sql: str
    kind: Literal["text", "number", "time"]
    nullable: bool = False
    allowed: frozenset[str] | None = None


COLUMNS: dict[str, Column] = {
    "collection": Column("r.collection_id", "text"),
    "media_type": Column("r.media_type", "text", allowed=MEDIA_TYPES),
    "mime": Column("r.mime", "text"),
    "kind": Column("s.kind", "text", allowed=SEGMENT_KINDS),
    "start_s": Column("s.start_s", "number", nullable=True),
    "end_s": Column("s.end_s", "number", nullable=True),
    "duration_s": Column("r.duration_s", "number", nullable=True),
    "width": Column("r.width", "number", nullable=True),
    "height": Column("r.height", "number", nullable=True),
    "ingested_at": Column("r.ingested_at", "time"),
    "created_at": Column("r.created_at", "time"),
}


@dataclass(frozen=True)
class MetaCompare:
    """`metadata[key] <op> value` on the record's metadata.

    `=`/`!=` use jsonb containment (the GIN index answers it; types must match: 2020 is not
    "2020"). Ordering compares numbers with JSON numbers and strings with JSON strings
    (codepoint order); any other pair, and a missing key, is false rather than an error.
    """

    key: str
    op: Comparison
    value: Scalar

    def __post_init__(self) -> None:
        _check_op(self.op)
        _check_text(self.key, "a metadata key")
        _check_scalar(self.value)
        if self.op not in ("=", "!=") and (self.value is None or isinstance(self.value, bool)):
            raise UserError(f"{self.op} needs a number or a string, not {_show(self.value)}")

    def to_sql(self, bind: Bind) -> sql.Composable:
        if self.op in ("=", "!="):
            test = sql.SQL("r.metadata @> {}").format(bind(Jsonb({self.key: self.value})))
            return test if self.op == "=" else sql.SQL("NOT ({})").format(test)
        key = bind(self.key)
        if isinstance(self.value, str):
            typed, value = sql.SQL('(r.metadata ->> {}::text) COLLATE "C"'), bind(self.value)
            json_type = "string"
        else:
            typed, value = sql.SQL("(r.metadata ->> {}::text)::numeric"), bind(_decimal(self.value))
            json_type = "number"
        # CASE, not AND: only CASE guarantees the cast never sees a non-number
        return sql.SQL(
            "CASE WHEN jsonb_typeof(r.metadata -> {key}::text) = {json_type}"
            " THEN {typed} {op} {value} ELSE false END"
        ).format(
            key=key,
            json_type=sql.Literal(json_type),
            typed=typed.format(key),
            op=OPERATORS[self.op],
            value=value,
        )


@dataclass(frozen=True)
class MetaExists:
    """The record's metadata has `key` (with any value, JSON null included)."""

    key: str

    def __post_init__(self) -> None:
        _check_text(self.key, "a metadata key")

    def to_sql(self, bind: Bind) -> sql.Composable:
        return sql.SQL("r.metadata ? {}::text").format(bind(self.key))


@dataclass(frozen=True)
class HasTags:
    """The record carries any (or, with `every`, all) of `tags`."""

    tags: tuple[str, ...]
    every: bool = False

    def __post_init__(self) -> None:
        if not self.tags:
            raise UserError("a tag test needs at least one tag")
        for tag in self.tags:
            _check_text(tag, "a tag")

    def to_sql(self, bind: Bind) -> sql.Composable:
        op = sql.SQL("@>" if self.every else "&&")
        return sql.SQL("r.tags {} {}::text[]").format(op, bind(list(self.tags)))


@dataclass(frozen=True)
class ColumnCompare:
    """`<column> <op> value` for a column of `COLUMNS` (text: = and != only)."""

    column: str
    op: Comparison
    value: str | float | datetime

    def __post_init__(self) -> None:
        _check_op(self.op)
        spec = COLUMNS.get(self.column)
        if spec is None:
            raise UserError(f"unknown field {self.column!r}: use meta.KEY, tags or {_names()}")
        if spec.kind == "text":
            if not isinstance(self.value, str):
                raise UserError(f"{self.column} compares with a string, not {_show(self.value)}")
            _check_text(self.value, self.column)
            if self.op not in ("=", "!="):
                raise UserError(f"{self.column} supports = and != only, not {self.op}")
            if spec.allowed is not None and self.value not in spec.allowed:
                raise UserError(
                    f"unknown {self.column} {self.value!r}: use {', '.join(sorted(spec.allowed))}"
                )
        elif spec.kind == "number":
            if isinstance(self.value, bool) or not isinstance(self.value, int | float):
                raise UserError(f"{self.column} compares with a number, not {_show(self.value)}")
            _check_scalar(self.value)
        elif not isinstance(self.value, datetime) or self.value.tzinfo is None:
            raise UserError(f"{self.column} compares with a timezone-aware datetime")

    def to_sql(self, bind: Bind) -> sql.Composable:
        if self.column == "collection":  # by name, through the collection table
            test = sql.SQL(
                "r.collection_id IN (SELECT id FROM mmsearch.collection WHERE name = {}::text)"
            ).format(bind(self.value))
            return test if self.op == "=" else sql.SQL("NOT ({})").format(test)
        spec = COLUMNS[self.column]
        column = sql.SQL(spec.sql)
        value = bind(float(self.value) if isinstance(self.value, int | float) else self.value)
        test = sql.SQL("{} {} {}").format(column, OPERATORS[self.op], value)
        if spec.nullable:  # NULL compares false, never NULL, so that Not stays exact
            return sql.SQL("({} IS NOT NULL AND {})").format(column, test)
        return test


@dataclass(frozen=True)
class And:
    items: tuple[Predicate, ...]

    def to_sql(self, bind: Bind) -> sql.Composable:
        return _join(self.items, " AND ", "true", bind)


@dataclass(frozen=True)
class Or:
    items: tuple[Predicate, ...]

    def to_sql(self, bind: Bind) -> sql.Composable:
        return _join(self.items, " OR ", "false", bind)


@dataclass(frozen=True)
class Not:
    item: Predicate

    def to_sql(self, bind: Bind) -> sql.Composable:
        return sql.SQL("NOT ({})").format(self.item.to_sql(bind))


Predicate = MetaCompare | MetaExists | HasTags | ColumnCompare | And | Or | Not


@dataclass(frozen=True)
class Filters:
    collections: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    #: jsonb containment: {"camera": "north"} matches records whose metadata has that pair
    metadata: dict[str, Any] = field(default_factory=dict)
    #: segments overlapping [start_s, end_s] within their media
    start_s: float | None = None
    end_s: float | None = None
    ingested_after: datetime | None = None
    ingested_before: datetime | None = None
    #: any further condition, e.g. a parsed `--filter` expression
    where: Predicate | None = None

    def __post_init__(self) -> None:
        unknown = set(self.media_types) - MEDIA_TYPES
        if unknown:
            raise UserError(f"unknown media type {sorted(unknown)[0]!r}: use {sorted(MEDIA_TYPES)}")
        for text in (*self.collections, *self.tags_any, *self.tags_all):
            _check_text(text, "a filter")
        _check_json(self.metadata)

    def also(self, predicate: Predicate) -> Filters:
        """These filters and `predicate` too."""
        where = predicate if self.where is None else And((self.where, predicate))
        return replace(self, where=where)

    def conditions(self) -> tuple[sql.Composable, dict[str, Any]]:
        """An SQL boolean expression over `r` (record) and `s` (segment), and its params."""
        parts: list[sql.Composable] = [sql.SQL("true")]
        params: dict[str, Any] = {}

        def add(condition: str, name: str, value: Any) -> None:
            parts.append(sql.SQL(condition).format(sql.Placeholder(name)))
            params[name] = value

        if self.collections:
            add(
                "r.collection_id IN (SELECT id FROM mmsearch.collection WHERE name = ANY({}))",
                "f_collections",
                list(self.collections),
            )
        if self.media_types:
            add("r.media_type = ANY({})", "f_media_types", list(self.media_types))
        if self.tags_any:
            add("r.tags && {}::text[]", "f_tags_any", list(self.tags_any))
        if self.tags_all:
            add("r.tags @> {}::text[]", "f_tags_all", list(self.tags_all))
        if self.metadata:
            add("r.metadata @> {}", "f_metadata", Jsonb(self.metadata))
        if self.start_s is not None:
            add("coalesce(s.end_s, s.start_s) >= {}", "f_start_s", self.start_s)
        if self.end_s is not None:
            add("s.start_s <= {}", "f_end_s", self.end_s)
        if self.ingested_after is not None:
            add("r.ingested_at >= {}", "f_after", self.ingested_after)
        if self.ingested_before is not None:
            add("r.ingested_at < {}", "f_before", self.ingested_before)
        if self.where is not None:

            def bind(value: Any) -> sql.Placeholder:
                name = f"f_w{len(params)}"
                params[name] = value
                return sql.Placeholder(name)

            parts.append(sql.SQL("({})").format(self.where.to_sql(bind)))
        return sql.SQL(" AND ").join(parts), params


def _join(items: tuple[Predicate, ...], glue: str, empty: str, bind: Bind) -> sql.Composable:
    if not items:
        return sql.SQL(empty)
    return sql.SQL("({})").format(
        sql.SQL(glue).join(sql.SQL("({})").format(item.to_sql(bind)) for item in items)
    )


def _check_op(op: str) -> None:
    if op not in OPERATORS:
        raise UserError(f"unknown comparison {op!r}: use {', '.join(OPERATORS)}")


def _check_text(text: str, what: str) -> None:
    """PostgreSQL text and jsonb cannot hold NUL; such a filter could never match anyway."""
    if not isinstance(text, str):
        raise UserError(f"{what} must be a string, not {_show(text)}")
    if "\x00" in text:
        raise UserError(f"{what} contains a NUL character")


def _check_scalar(value: Any) -> None:
    if isinstance(value, str):
        _check_text(value, "a metadata key or value")
    elif isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{value} is not a number JSON can hold")
    elif value is not None and not isinstance(value, bool | int | float):
        raise UserError(f"metadata values are strings, numbers, true, false or null: {value!r}")


def _check_json(value: Any) -> None:
    """Metadata filters hold JSON: strings and keys without NUL, finite numbers."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, "a metadata key")
            _check_json(item)
    elif isinstance(value, list):
        for item in value:
            _check_json(item)
    else:
        _check_scalar(value)


def _decimal(value: int | float) -> Decimal:
    """The number as PostgreSQL `numeric` sees its JSON text (exact for ints, repr for floats)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def _show(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return type(value).__name__ if not isinstance(value, str) else repr(value)


def _names() -> str:
    return ", ".join(COLUMNS)
