"""Synthetic vector corpora written in bulk, for the search benchmark and the ANN tests.

Vectors are drawn around random centres (noise as strong as the centre): clustered, so
HNSW is neither trivially easy nor hopeless. Rows go in as ingestion writes them (binary
COPY into staging tables, as the ingest role, RLS and all), with the space's HNSW index
dropped first and rebuilt after, which is several times faster than inserting into a live
index. The index's name and definition are the space's own (`mmsearch.space_index`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

from mmsearch.db.roles import read_roles

if TYPE_CHECKING:
    import psycopg

    from mmsearch.spaces import Space


class Record(NamedTuple):
    metadata: dict[str, Any]
    acl: list[str]
    tags: Sequence[str] = ()


def clustered(
    rng: np.random.Generator, centres: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors around `centres`, and the index of each one's centre."""
    cluster = rng.integers(0, len(centres), n)
    v = centres[cluster] + rng.standard_normal((n, centres.shape[1]), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), cluster


def bulk_load(
    conn: psycopg.Connection,
    space: Space,
    collection: str,
    records: Sequence[Record],
    segments: Sequence[tuple[int, str | None, np.ndarray]],
) -> None:
    """Write `records` and `segments` (record index, content, vector) into a new collection,
    with the space's HNSW index dropped; `build_index` puts it back."""
    column = sql.Identifier(space.column_name)
    index_name = conn.execute("SELECT index_name FROM mmsearch.space_index(%s)", (space.name,))
    conn.execute(
        sql.SQL("DROP INDEX IF EXISTS mmsearch.{}").format(sql.Identifier(index_name.fetchone()[0]))
    )
    with conn.transaction():
        collection_id = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES (%s) RETURNING id", (collection,)
        ).fetchone()[0]
        ingest = read_roles(conn).ingest
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ingest)))
        conn.execute(
            "CREATE TEMP TABLE record_stage ON COMMIT DROP AS SELECT collection_id, uri, sha256,"
            " media_type, mime, bytes, metadata, tags, acl FROM mmsearch.record WITH NO DATA"
        )
        with conn.cursor().copy("COPY record_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(
                ["int4", "text", "text", "text", "text", "int8", "jsonb", "text[]", "text[]"]
            )
            for i, record in enumerate(records):
                copy.write_row(
                    [collection_id, f"/{collection}/{i}", f"{i:064x}", "text", "text/plain", 1,
                     Jsonb(record.metadata), list(record.tags), record.acl]
                )  # fmt: skip
        by_uri = dict(
            conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes,"
                " metadata, tags, acl) SELECT * FROM record_stage RETURNING uri, id"
            ).fetchall()
        )
        ids = [by_uri[f"/{collection}/{i}"] for i in range(len(records))]
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE segment_stage ON COMMIT DROP AS"
                " SELECT record_id, ordinal, kind, content, {} FROM mmsearch.segment WITH NO DATA"
            ).format(column)
        )
        ordinals: dict[int, int] = {}
        with conn.cursor().copy("COPY segment_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "text", "text", "vector"])
            for record, content, vector in segments:
                ordinal = ordinals.get(record, 0)
                ordinals[record] = ordinal + 1
                copy.write_row([ids[record], ordinal, "chunk", content, vector])
        conn.execute(
            sql.SQL(
                "INSERT INTO mmsearch.segment (record_id, ordinal, kind, content, {0})"
                " SELECT record_id, ordinal, kind, content, {0} FROM segment_stage"
            ).format(column)
        )
        conn.execute("RESET ROLE")


def build_index(conn: psycopg.Connection, space: Space, maintenance_work_mem: str) -> None:
    """(Re)create the space's HNSW index as `register_space` makes it (default m, ef)."""
    with conn.transaction():
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (maintenance_work_mem,))
        statement = conn.execute(
            "SELECT create_statement FROM mmsearch.space_index(%s)", (space.name,)
        ).fetchone()[0]
        conn.execute(sql.SQL(statement))  # composed by the database from its registry
