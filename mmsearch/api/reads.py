"""Reads of one record or segment by id, as the caller: row-level security decides.

Each read runs through `Database.reader(principals)`, so a row the caller may not see is
simply not there, exactly like a missing one; no Python code looks at an ACL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import dict_row

from mmsearch.db.engine import Database


def record(db: Database, principals: Sequence[str], record_id: int) -> dict[str, Any] | None:
    """The record with this id if the caller may see it, with its segment count."""
    with db.reader(principals) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT r.id AS record_id, c.name AS collection, r.uri, r.sha256, r.media_type,"
            " r.mime, r.title, r.bytes, r.duration_s, r.width, r.height, r.metadata, r.tags,"
            " r.created_at, r.ingested_at,"
            " (SELECT count(*) FROM mmsearch.segment AS s WHERE s.record_id = r.id) AS segments"
            " FROM mmsearch.record AS r JOIN mmsearch.collection AS c ON c.id = r.collection_id"
            " WHERE r.id = %s",
            (record_id,),
        )
        return cur.fetchone()


def segment(db: Database, principals: Sequence[str], segment_id: int) -> dict[str, Any] | None:
    """The segment with this id (and its record's media fields) if the caller may see both."""
    with db.reader(principals) as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT s.id AS segment_id, s.record_id, s.ordinal, s.kind, s.start_s, s.end_s,"
            " s.char_start, s.char_end, s.content, s.metadata,"
            " r.media_type, r.mime, r.sha256, r.uri, r.title"
            " FROM mmsearch.segment AS s JOIN mmsearch.record AS r ON r.id = s.record_id"
            " WHERE s.id = %s",
            (segment_id,),
        )
        return cur.fetchone()


def shot_thumbnail(
    db: Database, principals: Sequence[str], record_id: int, at_s: float
) -> str | None:
    """The keyframe path of the visible shot of a video that covers `at_s` (or is nearest)."""
    with db.reader(principals) as conn:
        row = conn.execute(
            "SELECT s.metadata ->> 'thumbnail' FROM mmsearch.segment AS s"
            " WHERE s.record_id = %s AND s.kind = 'shot' AND s.metadata ? 'thumbnail'"
            " ORDER BY (s.start_s <= %s AND %s < s.end_s) DESC, abs(s.start_s - %s), s.ordinal"
            " LIMIT 1",
            (record_id, at_s, at_s, at_s),
        ).fetchone()
    return None if row is None else row[0]
