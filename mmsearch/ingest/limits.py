"""Per-file limits on time and memory, checked at every decode step.

A file may not take longer than `seconds` or push the process's memory past `max_rss`.
Python cannot interrupt a thread, so the extractors call `check()` between steps (a
decoded packet, a PDF page, an OCR call): a file over its budget fails with a clear reason
at the next step, and the batch goes on. One long model call is not cut short.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from mmsearch.ingest.types import ExtractError

#: how often (seconds) the memory is read: reading it costs ~20 µs, a decode step less
MEMORY_EVERY_S = 0.25


@dataclass
class Budget:
    seconds: float | None
    max_rss: int | None
    started: float
    memory_read_at: float = 0.0


_budget: ContextVar[Budget | None] = ContextVar("mmsearch_file_budget", default=None)


@contextmanager
def file_budget(seconds: float | None, max_rss: int | None) -> Iterator[None]:
    """Limit the file processed inside the block (in this thread or task)."""
    token = _budget.set(Budget(seconds, max_rss, time.monotonic()))
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
