"""Structured filters, composed into SQL conditions on `record r` and `segment s`.

Every value is a bound parameter and every name an `Identifier`; nothing a user typed is
ever pasted into SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql

from mmsearch.errors import UserError

MEDIA_TYPES = frozenset({"text", "image", "audio", "video"})


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

    def __post_init__(self) -> None:
        unknown = set(self.media_types) - MEDIA_TYPES
        if unknown:
            raise UserError(f"unknown media type {sorted(unknown)[0]!r}: use {sorted(MEDIA_TYPES)}")

    def conditions(self) -> tuple[sql.Composable, dict[str, Any]]:
        """An SQL boolean expression over `r` (record) and `s` (segment), and its params."""
        from psycopg.types.json import Jsonb

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
        return sql.SQL(" AND ").join(parts), params
