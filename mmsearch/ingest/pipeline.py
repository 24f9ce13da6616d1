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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from psycopg.types.json import Jsonb

from mmsearch.errors import DatabaseUnavailable, UserError, one_line
from mmsearch.ingest import limits
from mmsearch.ingest.embedding import embed_segments
from mmsearch.ingest.extract import Extractors
from mmsearch.ingest.files import Candidate, sha256_of, snapshot, walk
from mmsearch.ingest.lifecycle import prune_vanished
from mmsearch.ingest.progress import progress_bar
from mmsearch.ingest.store import Target, write_record
from mmsearch.ingest.types import Extracted, ExtractError
from mmsearch.spaces import register_configured

if TYPE_CHECKING:
    from mmsearch.config import Settings
    from mmsearch.db.engine import Database
    from mmsearch.embed.registry import Embedders
    from mmsearch.spaces import Space

Outcome = Literal["ingested", "updated", "unchanged", "skipped", "failed"]
GROUP_SIZE = 16
#: tries of one record's write transaction when a lock wait times out
WRITE_ATTEMPTS = 3
DOCUMENT_MIMES = frozenset(
    {"application/pdf", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
)


@dataclass
class IngestReport:
    """Counts per outcome plus the failures' reasons; `ok` is False only if nothing worked."""

    ingested: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    #: records of vanished files removed by `prune`
    removed: int = 0
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
        return (
            self.failed == 0 or (self.ingested + self.updated + self.unchanged + self.removed) > 0
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ingested": self.ingested,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "removed": self.removed,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


@dataclass
class _Job:
    """One file on its way through the stages."""

    path: Path
    #: when its work began (`time.monotonic()`): its time budget covers every stage
    started: float = field(default_factory=time.monotonic)
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


class Pipeline:
    """Ingest files into one database with the configured spaces' embedders."""

    def __init__(self, db: Database, embedders: Embedders, settings: Settings) -> None:
        self.db = db
        self.embedders = embedders
        self.settings = settings
        self._extractors: Extractors | None = None

    def run(
        self,
        paths: list[Path],
        *,
        collection: str,
        tags: list[str] | None,
        metadata: dict[str, Any],
        acl: list[str] | None,
        recursive: bool,
        progress: bool,
        prune: bool = False,
        follow_symlinks: bool = False,
        within: Sequence[Path] = (),
    ) -> IngestReport:
        """Ingest `paths`; `tags`/`acl` None keep what each record already has. With `prune`,
        also remove the collection's records under them whose files are gone (a path that is
        gone altogether is pruned, not reported as failed). Paths inside a folder of `within`
        keep that folder's symlink rule (see `walk`)."""
        from mmsearch.db.engine import validate_principals

        started = time.perf_counter()
        report = IngestReport()
        refuse_nul({"tags": tags, "metadata": metadata})
        checked_acl = None if acl is None else validate_principals(acl)
        target = Target(self._collection_id(collection), tags, metadata, checked_acl)
        walked = [p for p in paths if os.path.lexists(p)] if prune else paths
        candidates = list(
            walk(walked, recursive=recursive, follow_symlinks=follow_symlinks, within=within)
        )
        spaces = register_configured(self.db, self.embedders)
        self._extractors = Extractors(self.settings, self.embedders)
        bar = progress_bar(len(candidates), unit="file", enabled=progress)
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
        if prune:
            report.removed = prune_vanished(self.db, self.settings, target.collection_id, paths)
        report.seconds = time.perf_counter() - started
        return report

    # -- stage 1+2: prepare and extract (background thread) ---------------------------

    def _prepare_group(
        self, group: list[Candidate], target: Target, report: IngestReport
    ) -> list[_Job]:
        started = time.perf_counter()
        jobs = [self._prepare(candidate, target) for candidate in group]
        report.timed("extract", started)
        return jobs

    def _prepare(self, candidate: Candidate, target: Target) -> _Job:
        """Hash; unless unchanged, extract from a private copy hashed as it was made."""
        job = _Job(candidate.path)
        if candidate.problem:
            job.fail("read", candidate.problem)
            return job
        settings = self.settings
        try:
            job.sha256, job.size = sha256_of(job.path, candidate.root, settings.max_file_bytes)
            if self._unchanged(job, target):
                return job
            with snapshot(
                job.path, candidate.root, settings.home / "tmp", settings.max_file_bytes
            ) as copy:
                job.sha256, job.size = copy.sha256, copy.size
                self._extract(job, copy.path)
        except ExtractError as exc:
            job.fail(exc.stage, str(exc))
        except OSError as exc:
            job.fail("read", exc.strerror or str(exc))
        except Exception as exc:  # a decoder bug must not stop the batch
            raise_if_connection_lost(exc)
            job.fail("decode", f"{type(exc).__name__}: {exc}")
        return job

    def _extract(self, job: _Job, path: Path) -> None:
        """Detect and extract `path` (the private copy) within the file's budget."""
        from mmsearch.ingest.detect import detect

        detected = detect(path)
        if detected is None:
            claimed = claimed_media_type(path)
            if claimed is None:
                job.outcome = "skipped"  # an unknown file type: not ours to judge
            else:  # named like media we ingest, so a user expects it in: say why not
                job.fail("detect", f"content is not a readable {claimed} file")
            return
        assert self._extractors is not None
        with self._budget(job.started):
            job.extracted = self._extractors.extract(path, detected, job.sha256)
            limits.check_segments(len(job.extracted.segments))

    def _budget(self, started: float) -> AbstractContextManager[None]:
        """The per-file limits, counted from `started` (extraction and embedding)."""
        settings = self.settings
        caps = limits.Caps(
            text_chars=settings.max_text_chars,
            segments=settings.max_segments,
            archive_bytes=settings.max_archive_bytes,
            archive_ratio=settings.max_archive_ratio,
        )
        return limits.file_budget(
            settings.max_file_seconds, settings.max_memory_mb * 2**20, caps, started=started
        )

    def _unchanged(self, job: _Job, target: Target) -> bool:
        """Same bytes already stored: apply the tags/acl/metadata given, else a no-op."""
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
            tags, acl = target.tags_for(row[2]), target.acl_for(row[3])
            if (row[2], row[3], stored_metadata) == (tags, acl, wanted):
                job.outcome = "unchanged"
            else:
                conn.execute(
                    "UPDATE mmsearch.record SET tags = %s, acl = %s, metadata = %s WHERE id = %s",
                    (tags, acl, Jsonb(wanted), row[0]),
                )
                job.outcome = "updated"
        return True

    # -- stage 3: embed (batched across the group) ------------------------------------

    def _embed_group(self, jobs: list[_Job], spaces: dict[str, Space]) -> None:
        """Embed a group's segments in shared batches; if that fails (or runs over even the
        newest file's budget), file by file, each within its own budget."""
        if not jobs:
            return
        try:
            with self._budget(max(job.started for job in jobs)):
                self._embed(jobs, spaces)
        except Exception:
            if len(jobs) == 1:
                raise_into(jobs[0], "embed")
                return
            for job in jobs:  # isolate the file that breaks the model or its budget
                try:
                    with self._budget(job.started):
                        self._embed([job], spaces)
                except Exception:
                    raise_into(job, "embed")

    def _embed(self, jobs: list[_Job], spaces: dict[str, Space]) -> None:
        segments = [(job, i, seg) for job in jobs for i, seg in enumerate(job.extracted.segments)]
        for name in spaces:
            embedder = self.embedders.get(name)
            vectors: list[np.ndarray | None] = [None] * len(segments)
            for index, vector in embed_segments(embedder, [s for _, _, s in segments]):
                vectors[index] = vector
            for job in jobs:
                job.vectors[name] = [None] * len(job.extracted.segments)
            for (job, i, _), vector in zip(segments, vectors, strict=True):
                job.vectors[name][i] = vector

    # -- stage 4: write (one transaction per record) -----------------------------------

    def _write(self, job: _Job, target: Target, spaces: dict[str, Space]) -> None:
        """One transaction per record; a lock wait that times out (the writer login's
        lock_timeout) is tried again a few times before the file fails."""
        import psycopg

        assert job.extracted is not None
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.db.writer() as conn:
                    job.outcome = write_record(
                        conn,
                        target,
                        uri=job.uri,
                        sha256=job.sha256,
                        size=job.size,
                        extracted=job.extracted,
                        vectors=job.vectors,
                        spaces=spaces,
                    )
                return
            except psycopg.errors.LockNotAvailable as exc:
                if attempt + 1 == WRITE_ATTEMPTS:
                    job.fail("write", f"gave up waiting for a lock: {exc}")
            except Exception as exc:
                raise_if_connection_lost(exc)
                job.fail("write", f"{type(exc).__name__}: {exc}")
                return

    def _record_error(self, job: _Job, target: Target) -> None:
        """One row per failing file (its latest reason), as private as the record it would
        have made: the acl given, else the stored record's (or the last error's), else the
        default."""
        assert job.error is not None
        key = (target.collection_id, job.uri)
        with self.db.writer() as conn:
            stored = conn.execute(
                "SELECT coalesce("
                " (SELECT acl FROM mmsearch.record WHERE collection_id = %s AND uri = %s),"
                " (SELECT acl FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s"
                "  ORDER BY at DESC LIMIT 1))",
                (*key, *key),
            ).fetchone()[0]
            conn.execute(
                "DELETE FROM mmsearch.ingest_error WHERE collection_id = %s AND uri = %s", key
            )
            conn.execute(
                "INSERT INTO mmsearch.ingest_error (collection_id, uri, stage, message, acl)"
                " VALUES (%s, %s, %s, %s, %s)",
                (*key, *job.error, target.acl_for(stored)),
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
        except (psycopg.errors.CheckViolation, psycopg.DataError):  # DataError: a NUL byte
            raise UserError(
                f"invalid collection name {name!r}: use letters, digits, '_', '.', '-'"
            ) from None
        assert row is not None
        return int(row[0])


def refuse_nul(value: Any, where: str = "") -> None:
    """PostgreSQL text and jsonb cannot hold NUL: refuse it once, before any file is read."""
    if isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, where)
            refuse_nul(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            refuse_nul(item, where)
    elif isinstance(value, str) and "\x00" in value:
        raise UserError(f"{where or 'a value'} contains a NUL character")


def claimed_media_type(path: Path) -> str | None:
    """What the extension says a file is (e.g. "image/jpeg"), if it is a kind we ingest."""
    import mimetypes

    mime, _ = mimetypes.guess_type(path.name)
    if mime and (mime.split("/")[0] in {"image", "audio", "video"} or mime in DOCUMENT_MIMES):
        return mime
    return None


def raise_if_connection_lost(exc: Exception) -> None:
    """A lost server is not a bad file: stop the batch with one line instead of failing (and
    trying to record) every remaining file, each after the pool's 30 s wait."""
    import psycopg

    if isinstance(exc, psycopg.OperationalError) and (
        exc.sqlstate is None or exc.sqlstate.startswith(("08", "57P"))
    ):
        raise DatabaseUnavailable(
            f"lost the connection to the database: {one_line(str(exc))}"
        ) from exc


def raise_into(job: _Job, stage: str) -> None:
    """Record the exception being handled as the job's failure at `stage` (a limit's own)."""
    exc = sys.exc_info()[1]
    if isinstance(exc, ExtractError):
        job.fail(exc.stage, str(exc))
    else:
        job.fail(stage, f"{type(exc).__name__}: {exc}")


def _postfix(report: IngestReport) -> str:
    return (
        f"new={report.ingested} same={report.unchanged} skip={report.skipped} fail={report.failed}"
    )
