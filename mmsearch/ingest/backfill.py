"""Backfill: give the segments stored before a space existed their vectors in it.

Text comes from the stored content. Pictures (image and shot segments) and sound (window
segments) are decoded again from the source file, and only when its sha256 still matches
the record; otherwise the segment goes into `backfill_skip` with the reason, and a re-ingest
of the file (which embeds every configured space) is the way to fill it; the skip row of a
segment that is gone no longer counts, and the next backfill clears it.

The work is batched: a batch is read in one short transaction, embedded with no transaction
open, and written in another (an UPDATE per segment, only where the vector is still NULL).
No lock a search needs is held longer than a batch's write, and the NULL vectors are the
to-do list: a killed run continues where it stopped, and a run over a filled space reads
one empty batch and stops.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from psycopg import sql

from mmsearch.errors import reason
from mmsearch.ingest.embedding import embed_segments
from mmsearch.ingest.lifecycle import collection_id
from mmsearch.ingest.progress import progress_bar
from mmsearch.ingest.store import vector_type
from mmsearch.ingest.types import SegmentDraft
from mmsearch.spaces import register_configured

if TYPE_CHECKING:
    import numpy as np
    import psycopg

    from mmsearch.config import Settings
    from mmsearch.db.engine import Database
    from mmsearch.embed.registry import Embedders
    from mmsearch.spaces import Space

Source = Literal["text", "media"]
#: segment kinds whose vector, in a space of that modality, comes from the source file
MEDIA_KINDS = {"image": ("image", "shot"), "audio": ("window",)}
#: records whose media are decoded, embedded and written per round
MEDIA_ROUND = 8


@dataclass
class BackfillReport:
    """What a backfill did: vectors written, segments skipped (and why), where time went."""

    space: str
    embedded: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(
        default_factory=lambda: {"read": 0.0, "decode": 0.0, "embed": 0.0, "write": 0.0}
    )

    def timed(self, stage: str, started: float) -> None:
        self.stage_seconds[stage] += time.perf_counter() - started

    def as_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "embedded": self.embedded,
            "skipped": self.skipped,
            "reasons": self.reasons,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


@dataclass(frozen=True)
class Coverage:
    """How far a space reaches: segments with its vector, still without one, skipped."""

    vectors: int
    missing: int
    skipped: int


class _Record(NamedTuple):
    id: int
    uri: str
    sha256: str


class Pending:
    """Which segments still lack a space's vector, as SQL, per source of the vector."""

    def __init__(self, space: Space, cid: int | None = None) -> None:
        self.column = sql.Identifier(space.column_name)
        self.takes_text = "text" in space.modalities
        media = [kind for m in space.modalities for kind in MEDIA_KINDS.get(m, ())]
        self.params: dict[str, Any] = {"space": space.name, "cid": cid, "media": media}

    def where(self, source: Source) -> sql.Composed:
        if source == "media":
            payload = "s.kind = ANY(%(media)s::text[])"
        elif self.takes_text:
            payload = "s.content ~ '[^[:space:]]' AND NOT s.kind = ANY(%(media)s::text[])"
        else:
            payload = "false"
        # NOT IN an uncorrelated subquery (a hashed set), not a correlated NOT EXISTS on the
        # reference tables, which Citus does not plan inside a query on `segment`
        return sql.SQL(
            "s.{} IS NULL AND (%(cid)s::int IS NULL OR s.collection_id = %(cid)s) AND {}"
            " AND s.id NOT IN (SELECT k.segment_id FROM mmsearch.backfill_skip AS k"
            " JOIN mmsearch.space AS sp ON sp.id = k.space_id WHERE sp.name = %(space)s)"
        ).format(self.column, sql.SQL(payload))

    def count(self, conn: psycopg.Connection) -> int:
        query = sql.SQL("SELECT count(*) FROM mmsearch.segment AS s WHERE ({}) OR ({})").format(
            self.where("text"), self.where("media")
        )
        return int(conn.execute(query, self.params).fetchone()[0])


class Backfill:
    """One backfill run of one space, optionally over one collection."""

    def __init__(
        self,
        db: Database,
        embedders: Embedders,
        settings: Settings,
        name: str,
        *,
        collection: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        from mmsearch.ingest.extract import Extractors

        self.db = db
        self.embedders = embedders
        self.settings = settings
        self.name = name
        self.collection = collection
        self.batch_size = batch_size
        self.extractors = Extractors(settings, embedders)
        self.report = BackfillReport(name)

    def run(self, *, progress: bool = False) -> BackfillReport:
        """Register the space if it is new (adding its column), then fill it."""
        started = time.perf_counter()
        with self.db.writer() as conn:  # an unknown collection fails before the schema changes
            cid = collection_id(conn, self.collection) if self.collection else None
        self.space = register_configured(self.db, self.embedders, [self.name])[self.name]
        self.embedder = self.embedders.get(self.name)
        batch = self.batch_size or 4 * self.embedder.batch_size
        with self.db.writer() as conn:
            self.pending = Pending(self.space, cid)
            forget_vanished_skips(conn, self.name)
            total = self.pending.count(conn)
        bar = progress_bar(total, unit="segment", enabled=progress)
        for rows in self._batches("text", batch):
            bar.update(self._fill_text(rows))
        for records in self._batches("media", MEDIA_ROUND):
            bar.update(self._fill_media([_Record(*record) for record in records]))
        bar.close()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _batches(self, source: Source, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """Pending text segments (id, content), or records with pending media (id, uri,
        sha256), in id order from where the last batch ended."""
        if source == "text":
            query = sql.SQL(
                "SELECT s.id, s.content FROM mmsearch.segment AS s"
                " WHERE s.id > %(after)s AND {} ORDER BY s.id LIMIT %(size)s"
            ).format(self.pending.where("text"))
        else:
            query = sql.SQL(
                "SELECT r.id, r.uri, r.sha256 FROM mmsearch.record AS r WHERE r.id > %(after)s"
                " AND EXISTS (SELECT 1 FROM mmsearch.segment AS s WHERE s.record_id = r.id"
                " AND {}) ORDER BY r.id LIMIT %(size)s"
            ).format(self.pending.where("media"))
        after = 0
        while True:
            started = time.perf_counter()
            with self.db.writer() as conn:
                params = {**self.pending.params, "after": after, "size": size}
                rows = conn.execute(query, params).fetchall()
            self.report.timed("read", started)
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def _fill_text(self, rows: list[tuple[Any, ...]]) -> int:
        drafts = [SegmentDraft(kind="chunk", content=content) for _, content in rows]
        vectors = self._embed(drafts)
        self._write(
            {rows[i][0]: v for i, v in vectors.items()},
            {sid: "no text to embed" for i, (sid, _) in enumerate(rows) if i not in vectors},
        )
        return len(rows)

    def _fill_media(self, records: list[_Record]) -> int:
        """Decode a round of records' sources again, match their pending segments, embed the
        matches in one batch (as ingest batches across files), write them."""
        with self.db.writer() as conn:
            pending = conn.execute(
                sql.SQL(
                    "SELECT s.id, s.record_id, s.kind, s.start_s, s.end_s FROM mmsearch.segment"
                    " AS s WHERE s.record_id = ANY(%(records)s) AND {} ORDER BY s.id"
                ).format(self.pending.where("media")),
                {**self.pending.params, "records": [r.id for r in records]},
            ).fetchall()
        found: dict[int, SegmentDraft] = {}
        problems: dict[int, str] = {}
        for record in records:
            drafts, problem = self._decode(record)
            if problem:
                problems[record.id] = problem
            by_key = {(d.kind, d.start_s, d.end_s): d for d in drafts}
            for sid, rid, *key in pending:
                if rid == record.id and tuple(key) in by_key:
                    found[sid] = by_key[tuple(key)]
        filled, failed = self._embed_isolated(found)
        lost = "the source no longer decodes to this segment; re-ingest it"
        self._write(
            filled,
            {
                sid: failed.get(sid)
                or problems.get(rid)
                or ("nothing to embed" if sid in found else lost)
                for sid, rid, *_ in pending
                if sid not in filled
            },
        )
        return len(pending)

    def _embed_isolated(
        self, drafts: dict[int, SegmentDraft]
    ) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        """Vectors by segment id, in one batch; if the batch fails, one at a time, so a payload
        that breaks the model skips its segment (with the reason), not the round."""
        try:
            vectors = self._embed(list(drafts.values()))
        except Exception:
            filled, failed = {}, {}
            for sid, draft in drafts.items():
                try:
                    filled.update((sid, v) for v in self._embed([draft]).values())
                except Exception as exc:
                    failed[sid] = f"embedding failed: {reason(exc)}"
            return filled, failed
        ids = list(drafts)
        return {ids[i]: vector for i, vector in vectors.items()}, {}

    def _decode(self, record: _Record) -> tuple[list[SegmentDraft], str | None]:
        """The record's picture and sound segments, or why they cannot be had any more."""
        from mmsearch.ingest import limits
        from mmsearch.ingest.detect import detect
        from mmsearch.ingest.files import sha256_of

        started = time.perf_counter()
        path = Path(record.uri)
        try:
            if not path.is_file():
                return [], "source file is gone"
            if sha256_of(path)[0] != record.sha256:
                return [], "source file changed since ingest; re-ingest it"
            detected = detect(path)
            if detected is None:
                return [], "source file is no longer readable media"
            budget = (self.settings.max_file_seconds, self.settings.max_memory_mb * 2**20)
            with limits.file_budget(*budget):
                return self.extractors.extract_media(path, detected).segments, None
        except Exception as exc:  # a decoder failure skips this record, not the run
            return [], f"cannot decode the source again: {reason(exc)}"
        finally:
            self.report.timed("decode", started)

    def _embed(self, drafts: list[SegmentDraft]) -> dict[int, np.ndarray]:
        started = time.perf_counter()
        try:
            return dict(embed_segments(self.embedder, drafts))
        finally:
            self.report.timed("embed", started)

    def _write(self, vectors: dict[int, np.ndarray], skips: dict[int, str]) -> None:
        """One short transaction: the vectors (where still NULL) and the skipped segments."""
        started = time.perf_counter()
        update = sql.SQL("UPDATE mmsearch.segment SET {0} = %s::{1} WHERE id = %s AND {0} IS NULL")
        update = update.format(self.pending.column, sql.SQL(vector_type(self.space)))
        with self.db.writer() as conn, conn.cursor() as cur:
            cur.executemany(update, [(vector, sid) for sid, vector in vectors.items()])
            cur.executemany(
                "INSERT INTO mmsearch.backfill_skip (space_id, segment_id, reason)"
                " SELECT sp.id, %s, %s FROM mmsearch.space AS sp WHERE sp.name = %s"
                " ON CONFLICT DO NOTHING",
                [(sid, why, self.name) for sid, why in skips.items()],
            )
        self.report.embedded += len(vectors)
        self.report.skipped += len(skips)
        for why in skips.values():
            self.report.reasons[why] = self.report.reasons.get(why, 0) + 1
        self.report.timed("write", started)


def coverage(db: Database, space: Space) -> Coverage:
    """Counts for `space list`: one scan of `segment` per space."""
    pending = Pending(space)
    query = sql.SQL(
        "SELECT count(s.{}), count(*) FILTER (WHERE ({}) OR ({})) FROM mmsearch.segment AS s"
    ).format(pending.column, pending.where("text"), pending.where("media"))
    # a join, not a correlated subquery on `segment`, which Citus does not plan
    skips = (
        "SELECT count(*) FROM mmsearch.backfill_skip AS k"
        " JOIN mmsearch.space AS sp ON sp.id = k.space_id"
        " JOIN mmsearch.segment AS g ON g.id = k.segment_id WHERE sp.name = %(space)s"
    )
    with db.writer() as conn:
        vectors, missing = conn.execute(query, pending.params).fetchone()
        (skipped,) = conn.execute(skips, pending.params).fetchone()
    return Coverage(vectors, missing, skipped)


def forget_vanished_skips(conn: psycopg.Connection, space: str) -> None:
    """Delete the space's skip rows whose segments are gone (removed, or replaced by a
    re-ingest). In separate statements: Citus modifies a reference table only without a
    subquery on a distributed one, and plans no subquery on `segment` correlated with one."""
    skipped = [
        sid
        for (sid,) in conn.execute(
            "SELECT k.segment_id FROM mmsearch.backfill_skip AS k"
            " JOIN mmsearch.space AS sp ON sp.id = k.space_id WHERE sp.name = %s",
            (space,),
        )
    ]
    if not skipped:
        return
    present = {
        sid
        for (sid,) in conn.execute("SELECT id FROM mmsearch.segment WHERE id = ANY(%s)", (skipped,))
    }
    vanished = [sid for sid in skipped if sid not in present]
    if vanished:
        conn.execute(
            "DELETE FROM mmsearch.backfill_skip WHERE segment_id = ANY(%s)"
            " AND space_id = (SELECT id FROM mmsearch.space WHERE name = %s)",
            (vanished, space),
        )
