"""Per-file limits on time, memory and output, checked at every decode and embedding step.

A file may not take longer than `seconds` (extraction and embedding together) or push the
process's memory past `max_rss`. Python cannot interrupt a thread, so the extractors and the
embedding loop call `check()` between steps (a decoded packet, a PDF page, a paragraph, a
model batch): a file over its budget fails with a clear reason at the next step, and the
batch goes on. One long model call is not cut short.

What a file may expand into is capped too, before the work it would cause: the uncompressed
size and compression ratio of a zip-based document (a 74 KB .docx can hold 20 MB of text),
the characters extracted and the segments made (each one is embedded by every space).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from mmsearch.ingest.types import ExtractError

#: how often (seconds) the memory is read: reading it costs ~20 µs, a decode step less
MEMORY_EVERY_S = 0.25


@dataclass(frozen=True)
class Caps:
    """How much one file may expand into (None: no cap)."""

    text_chars: int | None = None
    segments: int | None = None
    archive_bytes: int | None = None
    archive_ratio: float | None = None


@dataclass
class Budget:
    seconds: float | None
    max_rss: int | None
    started: float
    caps: Caps = Caps()
    memory_read_at: float = 0.0


_budget: ContextVar[Budget | None] = ContextVar("mmsearch_file_budget", default=None)


@contextmanager
def file_budget(
    seconds: float | None,
    max_rss: int | None,
    caps: Caps | None = None,
    *,
    started: float | None = None,
) -> Iterator[None]:
    """Limit the file processed inside the block (in this thread or task); `started` (a
    `time.monotonic()`) carries the time a file already spent into a later stage."""
    begun = time.monotonic() if started is None else started
    token = _budget.set(Budget(seconds, max_rss, begun, caps or Caps()))
    try:
        yield
    finally:
        _budget.reset(token)


def check() -> None:
    """Raise `ExtractError` (stage "limit") if the current file is over its budget."""
    budget = _budget.get()
    if budget is None:
        return
    now = time.monotonic()
    if budget.seconds is not None and now - budget.started > budget.seconds:
        raise ExtractError(
            f"took longer than the {budget.seconds:g} s per-file limit", stage="limit"
        )
    if budget.max_rss is not None and now - budget.memory_read_at >= MEMORY_EVERY_S:
        budget.memory_read_at = now
        import psutil

        rss = psutil.Process().memory_info().rss
        if rss > budget.max_rss:
            raise ExtractError(
                f"needed more than the {budget.max_rss // 2**20} MiB memory limit"
                f" ({rss // 2**20} MiB in use)",
                stage="limit",
            )


def check_text(chars: int) -> None:
    """Refuse a file once the text extracted from it exceeds the cap."""
    cap = _caps().text_chars
    if cap is not None and chars > cap:
        raise ExtractError(
            f"holds more than {cap:,} characters of text (MMSEARCH_MAX_TEXT_CHARS)", stage="limit"
        )


def check_segments(count: int) -> None:
    """Refuse a file once it makes more segments than the cap."""
    cap = _caps().segments
    if cap is not None and count > cap:
        raise ExtractError(
            f"makes more than {cap:,} segments (MMSEARCH_MAX_SEGMENTS)", stage="limit"
        )


def check_archive(path: Path) -> None:
    """Refuse a zip-based document (.docx) whose members would expand too far, from the
    sizes its directory declares (a reader stops at the declared size: it cannot lie)."""
    import zipfile

    caps = _caps()
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ExtractError(f"not a readable zip archive: {exc}") from exc
    expanded = sum(m.file_size for m in members)
    if caps.archive_bytes is not None and expanded > caps.archive_bytes:
        raise ExtractError(
            f"expands to {expanded:,} bytes, over the {caps.archive_bytes:,}-byte limit"
            " (MMSEARCH_MAX_ARCHIVE_BYTES)",
            stage="limit",
        )
    ratio_cap = caps.archive_ratio
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if ratio_cap is not None and member.file_size > 1 << 20 and ratio > ratio_cap:
            raise ExtractError(
                f"{member.filename!r} expands {ratio:.0f} times, over the {ratio_cap:g}x limit"
                " (MMSEARCH_MAX_ARCHIVE_RATIO)",
                stage="limit",
            )


def _caps() -> Caps:
    budget = _budget.get()
    return budget.caps if budget is not None else Caps()
