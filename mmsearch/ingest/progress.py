"""The progress bar of long runs (ingest, backfill): on a terminal only, never in CI."""

from __future__ import annotations

import os
import sys
from typing import Any


def progress_bar(total: int, *, unit: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        disable=not (enabled and sys.stderr.isatty()) or bool(os.environ.get("CI")),
        dynamic_ncols=True,
    )
