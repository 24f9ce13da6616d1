"""The ingestion pipeline shared by every modality.

Files go through four stages: prepare (hash, skip unchanged, detect type), extract (decode
and segment, one module per modality), embed (every configured space, batched across the
files of a group) and write (one transaction per record: the record and all its segments
land together or not at all). Extraction of the next group runs in a background thread
while the current group is in the models. A file that fails at any stage is written to
`ingest_error` with a one-line reason and the batch goes on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

from mmsearch.embed.base import normalize
from mmsearch.errors import UserError
from mmsearch.ingest.files import Candidate, sha256_of, walk
from mmsearch.ingest.types import Extracted, ExtractError, one_line

if TYPE_CHECKING:
    import psycopg

    from mmsearch.client import Client
    from mmsearch.embed.base import Embedder
    from mmsearch.ingest.detect import Detected
    from mmsearch.spaces import Space

Outcome = Literal["ingested", "updated", "unchanged", "skipped", "failed"]
GROUP_SIZE = 16
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


@dataclass
class IngestReport:
    """Counts per outcome plus the failures' reasons; `ok` is False only if nothing worked."""

    ingested: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    #: wall seconds per stage; "extract" overlaps the others (it runs in a thread)
    stage_seconds: dict[str, float] = field(
        default_factory=lambda: {"extract": 0.0, "embed": 0.0, "write": 0.0}
    )

    def timed(self, stage: str, started: float) -> None:
        self.stage_seconds[stage] += time.perf_counter() - started

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def ok(self) -> bool:
        return self.failed == 0 or (self.ingested + self.updated + self.unchanged) > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ingested": self.ingested,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


@dataclass
class _Job:
    """One file on its way through the stages."""

    path: Path
    sha256: str = ""
    size: int = 0
    extracted: Extracted | None = None
    vectors: dict[str, list[np.ndarray | None]] = field(default_factory=dict)
    outcome: Outcome | None = None
    error: tuple[str, str] | None = None  # (stage, message)

    @property
    def uri(self) -> str:
        return str(self.path)

    def fail(self, stage: str, message: str) -> None:
        self.outcome, self.error = "failed", (stage, one_line(message) or "unknown error")


@dataclass(frozen=True)
class _Target:
    """Where the records of this run go and what they carry."""

    collection_id: int
    tags: list[str]
    metadata: dict[str, Any]
    acl: list[str]


class Pipeline:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.db = client.db
        self.settings = client.settings
        self._extractors: Extractors | None = None

    def run(
        self,
        paths: list[Path],
        *,
        collection: str,
        tags: list[str],
        metadata: dict[str, Any],
        acl: list[str],
        recursive: bool,
        progress: bool,
    ) -> IngestReport:
        from mmsearch.db.engine import validate_principals

        started = time.perf_counter()
        report = IngestReport()
        target = _Target(self._collection_id(collection), tags, metadata, validate_principals(acl))
        candidates = list(walk(paths, recursive=recursive))
        spaces = {s.name: s for s in self.client.register_spaces()}
        self._extractors = Extractors(self.client)
        bar = _progress_bar(len(candidates), enabled=progress)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmsearch-extract") as pool:
            groups = [candidates[i : i + GROUP_SIZE] for i in range(len(candidates))[::GROUP_SIZE]]
            pending = (
                pool.submit(self._prepare_group, groups[0], target, report) if groups else None
            )
            for index in range(len(groups)):
                assert pending is not None
                jobs = pending.result()
                if index + 1 < len(groups):
                    pending = pool.submit(self._prepare_group, groups[index + 1], target, report)
                started_embed = time.perf_counter()
                self._embed_group([j for j in jobs if j.outcome is None], spaces)
                report.timed("embed", started_embed)
                for job in jobs:
                    if job.outcome is None:
                        started_write = time.perf_counter()
                        self._write(job, target, spaces)
                        report.timed("write", started_write)
                    if job.outcome == "failed":
                        self._record_error(job, target)
                        report.errors.append(
                            {"uri": job.uri, "stage": job.error[0], "message": job.error[1]}
                        )
                    report.count(job.outcome or "failed")
                    bar.update(1)
                    bar.set_postfix_str(_postfix(report), refresh=False)
        bar.close()
        report.seconds = time.perf_counter() - started
        return report

    # -- stage 1+2: prepare and extract (background thread) ---------------------------

    def _prepare_group(
        self, group: list[Candidate], target: _Target, report: IngestReport
    ) -> list[_Job]:
        started = time.perf_counter()
        jobs = [self._prepare(candidate, target) for candidate in group]
        report.timed("extract", started)
        return jobs

    def _prepare(self, candidate: Candidate, target: _Target) -> _Job:
        from mmsearch.ingest.detect import detect

        job = _Job(candidate.path)
        if candidate.problem:
            job.fail("read", candidate.problem)
            return job
        try:
            if job.path.stat().st_size > self.settings.max_file_bytes:
                limit = self.settings.max_file_bytes
                job.fail("read", f"file is larger than the {limit}-byte limit")
                return job
            job.sha256, job.size = sha256_of(job.path)
            if self._unchanged(job, target):
                return job
            detected = detect(job.path)
            if detected is None:
                job.outcome = "skipped"
                return job
            assert self._extractors is not None
            job.extracted = self._extractors.extract(job.path, detected, job.sha256)
        except ExtractError as exc:
            job.fail(exc.stage, str(exc))
        except OSError as exc:
            job.fail("read", exc.strerror or str(exc))
        except Exception as exc:  # a decoder bug must not stop the batch
            job.fail("decode", f"{type(exc).__name__}: {exc}")
        return job

    def _unchanged(self, job: _Job, target: _Target) -> bool:
        """Same bytes already stored: refresh tags/acl/metadata if they differ, else no-op."""
        with self.db.writer() as conn:
            row = conn.execute(
                "SELECT id, sha256, tags, acl, metadata FROM mmsearch.record"
                " WHERE collection_id = %s AND uri = %s",
                (target.collection_id, job.uri),
            ).fetchone()
            if row is None or row[1] != job.sha256:
                return False
            stored_metadata = row[4]
            wanted = {**stored_metadata, **target.metadata}  # extracted keys stay
            if (row[2], row[3], stored_metadata) == (target.tags, target.acl, wanted):
                job.outcome = "unchanged"
            else:
                conn.execute(
                    "UPDATE mmsearch.record SET tags = %s, acl = %s, metadata = %s WHERE id = %s",
                    (target.tags, target.acl, Jsonb(wanted), row[0]),
                )
                job.outcome = "updated"
        return True

    # -- stage 3: embed (batched across the group) ------------------------------------

    def _embed_group(self, jobs: list[_Job], spaces: dict[str, Space]) -> None:
        if not jobs:
            return
        try:
            self._embed(jobs, spaces)
        except Exception:
            if len(jobs) == 1:
                raise_into(jobs[0], "embed")
                return
            for job in jobs:  # isolate the file that breaks the model
                try:
                    self._embed([job], spaces)
                except Exception:
                    raise_into(job, "embed")

    def _embed(self, jobs: list[_Job], spaces: dict[str, Space]) -> None:
        segments = [(job, i, seg) for job in jobs for i, seg in enumerate(job.extracted.segments)]
        for name in spaces:
            embedder = self.client.embedder(name)
            vectors: list[np.ndarray | None] = [None] * len(segments)
            for index, vector in embed_segments(embedder, [s for _, _, s in segments]):
                vectors[index] = vector
            for job in jobs:
                job.vectors[name] = [None] * len(job.extracted.segments)
            for (job, i, _), vector in zip(segments, vectors, strict=True):
                job.vectors[name][i] = vector

    # -- stage 4: write (one transaction per record) -----------------------------------

    def _write(self, job: _Job, target: _Target, spaces: dict[str, Space]) -> None:
        try:
            with self.db.writer() as conn:
                job.outcome = write_record(conn, job, target, spaces)
        except Exception as exc:
            job.fail("write", f"{type(exc).__name__}: {exc}")

    def _record_error(self, job: _Job, target: _Target) -> None:
        assert job.error is not None
        with self.db.writer() as conn:  # one row per failing file: its latest reason
            conn.execute(
                "DELETE FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s",
                (target.collection_id, job.uri),
            )
            conn.execute(
                "INSERT INTO mmsearch.ingest_error (collection_id, uri, stage, message)"
                " VALUES (%s, %s, %s, %s)",
                (target.collection_id, job.uri, job.error[0], job.error[1]),
            )

    def _collection_id(self, name: str) -> int:
        import psycopg

        try:
            with self.db.writer() as conn:
                conn.execute(
                    "INSERT INTO mmsearch.collection (name) VALUES (%s)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name,),
                )
                row = conn.execute(
                    "SELECT id FROM mmsearch.collection WHERE name = %s", (name,)
                ).fetchone()
        except psycopg.errors.CheckViolation:
            raise UserError(
                f"invalid collection name {name!r}: use letters, digits, '_', '.', '-'"
            ) from None
        assert row is not None
        return int(row[0])


class Extractors:
    """Dispatch to the modality extractors; OCR and the chunker are built once per run."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._ocr: Any = None
        self._chunker: Any = None
        self._transcriber: Any = None

    def extract(self, path: Path, detected: Detected, sha256: str = "") -> Extracted:
        settings = self.client.settings
        if detected.media_type == "text":
            from mmsearch.ingest.text import extract_text

            return extract_text(path, detected, self.chunker, ocr=self.ocr)
        if detected.media_type == "image":
            from mmsearch.ingest.image import extract_image

            return extract_image(path, detected, self.ocr, max_pixels=settings.max_image_pixels)
        if detected.media_type == "audio":
            from mmsearch.ingest.audio import extract_audio

            return extract_audio(path, detected, self.transcriber, window_s=self.window_s)
        from mmsearch.ingest.video import extract_video

        thumbs = settings.home / "thumbs" / sha256 if sha256 else None
        return extract_video(path, detected, self.transcriber, self.ocr, thumbs_dir=thumbs)

    @property
    def window_s(self) -> float | None:
        """Sound windows only pay off when some space embeds audio."""
        takes_audio = any(
            self.client.embedder(spec.name).supports("audio")
            for spec in self.client.settings.spaces
        )
        return 10.0 if takes_audio else None

    @property
    def transcriber(self) -> Any:
        if self._transcriber is None:
            from mmsearch.ingest.transcribe import Transcriber

            self._transcriber = Transcriber(**self.client.settings.transcriber)
        return self._transcriber

    @property
    def ocr(self) -> Any:
        if self._ocr is None:
            from mmsearch.ingest.ocr import OcrEngine

            self._ocr = OcrEngine()
        return self._ocr

    @property
    def chunker(self) -> Any:
        if self._chunker is None:
            from mmsearch.ingest.chunking import Chunker

            text = self.client.embedder("text")
            counter = getattr(text, "count_tokens", None) or (lambda s: len(s.split()))
            limit = min(getattr(text, "max_tokens", 256), 256)
            self._chunker = Chunker(counter, max_tokens=limit - 16, overlap_tokens=32)
        return self._chunker


def embed_segments(embedder: Embedder, segments: list[Any]) -> Iterator[tuple[int, np.ndarray]]:
    """(segment index, vector) for every segment with a payload this embedder takes.

    Several images of one segment (a shot's keyframes) are mean-pooled, then normalised.
    """
    if embedder.supports("text"):
        texts = [(i, s.content) for i, s in enumerate(segments) if s.content and s.content.strip()]
        for start in range(0, len(texts), embedder.batch_size):
            batch = texts[start : start + embedder.batch_size]
            vectors = embedder.encode_texts([t for _, t in batch])
            yield from ((i, v) for (i, _), v in zip(batch, vectors, strict=True))
    if embedder.supports("image"):
        owners = [(i, img) for i, s in enumerate(segments) for img in s.images]
        pooled: dict[int, list[np.ndarray]] = {}
        for start in range(0, len(owners), embedder.batch_size):
            batch = owners[start : start + embedder.batch_size]
            vectors = embedder.encode_images([img for _, img in batch])
            for (i, _), v in zip(batch, vectors, strict=True):
                pooled.setdefault(i, []).append(v)
        for i, vs in pooled.items():
            yield i, normalize(np.mean(vs, axis=0, keepdims=True))[0]
    if embedder.supports("audio"):
        clips = [(i, s) for i, s in enumerate(segments) if s.audio is not None]
        for start in range(0, len(clips), embedder.batch_size):
            batch = clips[start : start + embedder.batch_size]
            for rate in {s.sample_rate for _, s in batch}:
                same = [(i, s) for i, s in batch if s.sample_rate == rate]
                vectors = embedder.encode_audio([s.audio for _, s in same], rate)
                yield from ((i, v) for (i, _), v in zip(same, vectors, strict=True))


def write_record(
    conn: psycopg.Connection, job: _Job, target: _Target, spaces: dict[str, Space]
) -> Outcome:
    """Replace-or-insert one record and COPY its segments, inside the caller's transaction.

    COPY goes through a temporary staging table: PostgreSQL refuses COPY FROM into a table
    with row-level security, and one INSERT … SELECT from the stage is still set-based.
    """
    extracted = job.extracted
    assert extracted is not None
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"{target.collection_id}:{job.uri}",),
    )
    existing = conn.execute(
        "SELECT id, sha256, created_at FROM mmsearch.record"
        " WHERE collection_id = %s AND uri = %s FOR UPDATE",
        (target.collection_id, job.uri),
    ).fetchone()
    if existing and existing[1] == job.sha256:
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
            job.uri,
            job.sha256,
            extracted.media_type,
            extracted.mime,
            clean_text(extracted.title)[:1000],
            job.size,
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
                    *(job.vectors[name][ordinal] for name in spaces),
                ]
            )
    conn.execute(
        sql.SQL("INSERT INTO mmsearch.segment ({0}) SELECT {0} FROM segment_stage").format(
            sql.SQL(", ").join(map(sql.Identifier, columns))
        )
    )
    conn.execute(
        "DELETE FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s",
        (target.collection_id, job.uri),
    )
    return "updated" if existing else "ingested"


def vector_type(space: Space) -> str:
    return "halfvec" if space.dim > 2000 else "vector"


def clean_text(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return text.replace("\x00", "")


def raise_into(job: _Job, stage: str) -> None:
    """Record the exception being handled as the job's failure at `stage`."""
    exc = sys.exc_info()[1]
    job.fail(stage, f"{type(exc).__name__}: {exc}")


def _postfix(report: IngestReport) -> str:
    return (
        f"new={report.ingested} same={report.unchanged} skip={report.skipped} fail={report.failed}"
    )


def _progress_bar(total: int, *, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="file",
        disable=not (enabled and sys.stderr.isatty()) or bool(os.environ.get("CI")),
        dynamic_ncols=True,
    )
