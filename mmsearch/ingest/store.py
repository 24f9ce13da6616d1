"""Writing one record and its segments: update-or-insert, in one transaction."""

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
#: segments per INSERT statement (PostgreSQL takes at most 65535 parameters)
INSERT_ROWS = 500


#: who sees a new record when the ingest names nobody
DEFAULT_ACL = ("public",)


@dataclass(frozen=True)
class Target:
    """Where the records of this run go and what they carry.

    `acl` and `tags` None mean "not given": a record keeps its own (a re-ingest never widens
    who may see it), and a new one gets `DEFAULT_ACL` and no tags.
    """

    collection_id: int
    tags: list[str] | None
    metadata: dict[str, Any]
    acl: list[str] | None

    def acl_for(self, stored: list[str] | None) -> list[str]:
        return self.acl if self.acl is not None else stored or list(DEFAULT_ACL)

    def tags_for(self, stored: list[str] | None) -> list[str]:
        return self.tags if self.tags is not None else stored or []


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
    """Insert a record, or update the stored one in place, and replace its segments; all
    inside the caller's transaction.

    A changed file keeps its `record_id` (and `created_at`): ids an application stored stay
    valid. Its old segments are deleted and the new ones copied in the same transaction, so a
    reader sees either version whole, never a mix.
    """
    lock_uri(conn, target.collection_id, uri)
    existing = locked_record(conn, target.collection_id, uri)
    if existing and existing[1] == sha256:
        return "unchanged"  # a concurrent ingest stored the same bytes first
    columns = {
        **record_columns(target, sha256=sha256, size=size, extracted=extracted),
        # not given: a changed file keeps the stored ones, a new one the defaults
        "acl": target.acl_for(existing[2] if existing else None),
        "tags": target.tags_for(existing[3] if existing else None),
    }
    if existing:
        record_id = existing[0]
        conn.execute("DELETE FROM mmsearch.segment WHERE record_id = %s", (record_id,))
        conn.execute(
            sql.SQL("UPDATE mmsearch.record SET {}, ingested_at = now() WHERE id = %s").format(
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
            ),
            (*columns.values(), record_id),
        )
    else:
        columns.update(collection_id=target.collection_id, uri=uri)
        record_id = conn.execute(
            sql.SQL("INSERT INTO mmsearch.record ({}) VALUES ({}) RETURNING id").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(columns)),
            ),
            tuple(columns.values()),
        ).fetchone()[0]
    insert_segments(conn, record_id, extracted, vectors, spaces)
    forget_error(conn, target.collection_id, uri)
    return "updated" if existing else "ingested"


def locked_record(conn: psycopg.Connection, collection_id: int, uri: str) -> tuple[Any, ...] | None:
    """(id, sha256, acl, tags) of the stored record, row-locked until the transaction ends.

    Found by (collection, uri), then locked by its id: Citus locks rows only in a query
    routed by the distribution column. The uri's `ingest_lock` row, held already, keeps
    the record from appearing or going in between; the row lock keeps a concurrent
    `acl`/`tags` change from being overwritten with the values read here.
    """
    found = conn.execute(
        "SELECT id FROM mmsearch.record WHERE collection_id = %s AND uri = %s",
        (collection_id, uri),
    ).fetchone()
    if found is None:
        return None
    return conn.execute(
        "SELECT id, sha256, acl, tags FROM mmsearch.record WHERE id = %s FOR UPDATE", found
    ).fetchone()


def forget_error(conn: psycopg.Connection, collection_id: int, uri: str) -> None:
    """Delete the uri's ingest error, if it has one: on Citus `ingest_error` is a reference
    table, whose every write is a two-phase commit on all nodes, while a read is local."""
    key = (collection_id, uri)
    if conn.execute(
        "SELECT EXISTS (SELECT FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s)",
        key,
    ).fetchone()[0]:
        conn.execute("DELETE FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s", key)


def lock_uri(conn: psycopg.Connection, collection_id: int, uri: str) -> None:
    """Serialise the writers of one uri (ingest, removal) until the transaction ends.

    A row lock in `ingest_lock`, which needs UPDATE rights only the ingest role has: an
    advisory lock on a key derived from the uri could be taken (and held) by any login.
    """
    conn.execute(
        "INSERT INTO mmsearch.ingest_lock (collection_id, uri) VALUES (%s, %s)"
        " ON CONFLICT (collection_id, uri) DO UPDATE SET uri = EXCLUDED.uri",
        (collection_id, uri),
    )


def record_columns(
    target: Target, *, sha256: str, size: int, extracted: Extracted
) -> dict[str, Any]:
    """The record's columns that an ingest rewrites from the file, by name (its acl and tags
    are the caller's: given, or kept)."""
    return {
        "sha256": sha256,
        "media_type": extracted.media_type,
        "mime": extracted.mime,
        "title": clean_text(extracted.title)[:1000],
        "bytes": size,
        "duration_s": extracted.duration_s,
        "width": extracted.width,
        "height": extracted.height,
        "metadata": Jsonb({**extracted.metadata, **target.metadata}),
    }


def insert_segments(
    conn: psycopg.Connection,
    record_id: int,
    extracted: Extracted,
    vectors: dict[str, list[np.ndarray | None]],
    spaces: dict[str, Space],
) -> None:
    """INSERT the segments of one record, `INSERT_ROWS` rows a statement, values bound as
    parameters (vectors in binary).

    Not COPY: PostgreSQL refuses COPY FROM into a table with row-level security, and on
    Citus an INSERT … SELECT from a staging table is turned into a COPY into the shards
    (refused there for the same reason). A multi-row INSERT goes as one statement to the
    record's shard.
    """
    columns = [*SEGMENT_COLUMNS, *(s.column_name for s in spaces.values())]
    types = [*SEGMENT_TYPES, *(vector_type(s) for s in spaces.values())]
    row = sql.SQL("({})").format(
        sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(kind)) for kind in types)
    )
    rows = [
        (
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
        )
        for ordinal, seg in enumerate(extracted.segments)
    ]
    for start in range(0, len(rows), INSERT_ROWS):
        chunk = rows[start : start + INSERT_ROWS]
        conn.execute(
            sql.SQL("INSERT INTO mmsearch.segment ({}) VALUES {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.SQL(", ").join([row] * len(chunk)),
            ),
            [value for values in chunk for value in values],
        )


def vector_type(space: Space) -> str:
    return "halfvec" if space.dim > 2000 else "vector"


def clean_text(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return text.replace("\x00", "")
