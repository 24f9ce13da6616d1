"""Writing one record and its segments: replace-or-insert, binary COPY, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    import psycopg

    from mmsearch.ingest.types import Extracted
    from mmsearch.spaces import Space

SEGMENT_COLUMNS = (
    "record_id",
    "ordinal",
    "kind",
    "start_s",
    "end_s",
    "char_start",
    "char_end",
    "content",
    "metadata",
)
SEGMENT_TYPES = ("int8", "int4", "text", "float8", "float8", "int4", "int4", "text", "jsonb")


@dataclass(frozen=True)
class Target:
    """Where the records of this run go and what they carry."""

    collection_id: int
    tags: list[str]
    metadata: dict[str, Any]
    acl: list[str]


def write_record(
    conn: psycopg.Connection,
    target: Target,
    *,
    uri: str,
    sha256: str,
    size: int,
    extracted: Extracted,
    vectors: dict[str, list[np.ndarray | None]],
    spaces: dict[str, Space],
) -> Literal["ingested", "updated", "unchanged"]:
    """Replace-or-insert one record and COPY its segments, inside the caller's transaction.

    COPY goes through a temporary staging table: PostgreSQL refuses COPY FROM into a table
    with row-level security, and one INSERT … SELECT from the stage is still set-based.
    """
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"{target.collection_id}:{uri}",),
    )
    existing = conn.execute(
        "SELECT id, sha256, created_at FROM mmsearch.record"
        " WHERE collection_id = %s AND uri = %s FOR UPDATE",
        (target.collection_id, uri),
    ).fetchone()
    if existing and existing[1] == sha256:
        return "unchanged"  # a concurrent ingest stored the same bytes first
    if existing:
        conn.execute("DELETE FROM mmsearch.record WHERE id = %s", (existing[0],))
    record_id = conn.execute(
        "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, title, bytes,"
        " duration_s, width, height, metadata, tags, acl, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))"
        " RETURNING id",
        (
            target.collection_id,
            uri,
            sha256,
            extracted.media_type,
            extracted.mime,
            clean_text(extracted.title)[:1000],
            size,
            extracted.duration_s,
            extracted.width,
            extracted.height,
            Jsonb({**extracted.metadata, **target.metadata}),
            target.tags,
            target.acl,
            existing[2] if existing else None,
        ),
    ).fetchone()[0]
    columns = [*SEGMENT_COLUMNS, *(s.column_name for s in spaces.values())]
    types = [*SEGMENT_TYPES, *(vector_type(s) for s in spaces.values())]
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE segment_stage ON COMMIT DROP AS"
            " SELECT {} FROM mmsearch.segment WITH NO DATA"
        ).format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    )
    copy_sql = sql.SQL("COPY segment_stage ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        copy.set_types(types)
        for ordinal, seg in enumerate(extracted.segments):
            copy.write_row(
                [
                    record_id,
                    ordinal,
                    seg.kind,
                    seg.start_s,
                    seg.end_s,
                    seg.char_start,
                    seg.char_end,
                    clean_text(seg.content) if seg.content else None,
                    Jsonb(seg.metadata),
                    *(vectors[name][ordinal] for name in spaces),
                ]
            )
    conn.execute(
        sql.SQL("INSERT INTO mmsearch.segment ({0}) SELECT {0} FROM segment_stage").format(
            sql.SQL(", ").join(map(sql.Identifier, columns))
        )
    )
    conn.execute(
        "DELETE FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s",
        (target.collection_id, uri),
    )
    return "updated" if existing else "ingested"


def vector_type(space: Space) -> str:
    return "halfvec" if space.dim > 2000 else "vector"


def clean_text(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return text.replace("\x00", "")
