"""Structured filters, as the JSON request that the SQL search (`mmsearch.search`) takes.

The predicates are validated here, where a bad value can be reported with its place in a
filter expression; turning them into SQL is the database's job (`mmsearch.filter_sql` in
`sql/046_search_rules.sql`), one implementation for the API and for analysts.

Beyond the fixed fields of `Filters`, `Filters.where` holds a predicate tree (the target of
the CLI's filter expressions, `mmsearch.query.expression`). Every predicate in it is
two-valued: a missing metadata key or a NULL column makes a comparison false, never NULL,
so `Not` means exactly "the other rows".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from mmsearch.errors import UserError

MEDIA_TYPES = frozenset({"text", "image", "audio", "video"})
SEGMENT_KINDS = frozenset({"chunk", "image", "window", "shot", "transcript", "ocr"})

Comparison = Literal["=", "!=", "<", "<=", ">", ">="]
OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Column:
    """A record/segment column that predicates may compare, and what it compares with."""

    kind: Literal["text", "number", "time"]
    allowed: frozenset[str] | None = None


COLUMNS: dict[str, Column] = {
    "collection": Column("text"),
    "media_type": Column("text", allowed=MEDIA_TYPES),
    "mime": Column("text"),
    "kind": Column("text", allowed=SEGMENT_KINDS),
    "start_s": Column("number"),
    "end_s": Column("number"),
    "duration_s": Column("number"),
    "width": Column("number"),
    "height": Column("number"),
    "ingested_at": Column("time"),
    "created_at": Column("time"),
}


@dataclass(frozen=True)
class MetaCompare:
    """`metadata[key] <op> value` on the record's metadata.

    `=`/`!=` are JSON equality (jsonb containment, which the GIN index answers; types must
    match: 2020 is not "2020"). Ordering compares numbers with JSON numbers and strings with
    JSON strings (codepoint order); any other pair, and a missing key, is false.
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

    def to_json(self) -> dict[str, Any]:
        return {"meta": self.key, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class MetaExists:
    """The record's metadata has `key` (with any value, JSON null included)."""

    key: str

    def __post_init__(self) -> None:
        _check_text(self.key, "a metadata key")

    def to_json(self) -> dict[str, Any]:
        return {"has_meta": self.key}


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

    def to_json(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "all": self.every}


@dataclass(frozen=True)
class ColumnCompare:
    """`<column> <op> value` for a column of `COLUMNS` (text: = and != only; NULL is false)."""

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

    def to_json(self) -> dict[str, Any]:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        return {"column": self.column, "op": self.op, "value": value}


@dataclass(frozen=True)
class And:
    items: tuple[Predicate, ...]

    def to_json(self) -> dict[str, Any]:
        return {"and": [item.to_json() for item in self.items]}


@dataclass(frozen=True)
class Or:
    items: tuple[Predicate, ...]

    def to_json(self) -> dict[str, Any]:
        return {"or": [item.to_json() for item in self.items]}


@dataclass(frozen=True)
class Not:
    item: Predicate

    def to_json(self) -> dict[str, Any]:
        return {"not": self.item.to_json()}


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
        for bound in (self.start_s, self.end_s):
            if bound is not None:
                _check_scalar(bound)

    def also(self, predicate: Predicate) -> Filters:
        """These filters and `predicate` too."""
        where = predicate if self.where is None else And((self.where, predicate))
        return replace(self, where=where)

    def request(self) -> dict[str, Any]:
        """The filter fields of a search request (`mmsearch.search_request`), unset ones out."""
        fields: dict[str, Any] = {
            "collections": list(self.collections),
            "media_types": list(self.media_types),
            "tags": list(self.tags_any),
            "tags_all": list(self.tags_all),
            "metadata": self.metadata or None,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "ingested_after": _iso(self.ingested_after),
            "ingested_before": _iso(self.ingested_before),
            "filter": self.where.to_json() if self.where is not None else None,
        }
        return {key: value for key, value in fields.items() if value not in (None, [])}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


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


def _show(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return type(value).__name__ if not isinstance(value, str) else repr(value)


def _names() -> str:
    return ", ".join(COLUMNS)
