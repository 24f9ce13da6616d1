"""The evaluation report: a printed table, a JSON file, and a comparison with an earlier one.

The JSON keeps every query's ranked answer, so a later run can show not only that a number
moved but which queries moved it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmsearch.eval.harness import MEASURES, MOMENT_MEASURES, SetResult

MOMENTS = (*MOMENT_MEASURES, *(f"moment {m}" for m in MOMENT_MEASURES))
COLUMNS = (*MEASURES, "time@1", "time@10", *MOMENTS, "start error s", "moment start error s")


def to_json(
    results: list[SetResult],
    *,
    quick: bool,
    spaces: dict[str, str],
    unavailable: dict[str, str],
    lee: dict[str, Any] | None,
    seconds: float,
) -> dict[str, Any]:
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "quick": quick,
        "seconds": round(seconds, 1),
        "spaces": spaces,
        "unavailable": unavailable,
        "sets": [asdict(r) for r in results],
        "lee": lee,
    }


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def rows(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """(set, mode) → every number of the table, from a report's JSON."""
    out = {}
    for result in report["sets"]:
        for mode in result["modes"]:
            values = dict(mode["metrics"])
            values.update({k: v for k, v in (mode["timestamp"] or {}).items() if k in COLUMNS})
            values["ms/query"] = mode["p50_ms"]
            out[(result["name"], mode["mode"])] = values
    return out


def table(report: dict[str, Any]) -> str:
    """A Markdown table, one row per set and mode (blank where a measure does not apply)."""
    sizes = {r["name"]: (r["documents"], r["queries"]) for r in report["sets"]}
    header = ["set", "mode", "docs", "queries", *COLUMNS, "ms/query"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (name, mode), values in rows(report).items():
        cells = [name, mode, *map(str, sizes[name])]
        cells += [_cell(values.get(c), c) for c in (*COLUMNS, "ms/query")]
        lines.append("| " + " | ".join(cells) + " |")
    for group, reason in report["unavailable"].items():
        lines.append(f"| {group} | not run: {reason} |" + " |" * (len(header) - 2))
    if report.get("lee"):
        lines += ["", lee_table(report["lee"])]
    return "\n".join(lines)


def lee_table(lee: dict[str, Any]) -> str:
    lines = ["| Lee corpus: document vectors | Pearson r | Spearman ρ |", "|---|---|---|"]
    for name, values in lee.items():
        if isinstance(values, dict) and "pearson" in values:
            lines.append(f"| {name} | {values['pearson']:.3f} | {values['spearman']:.3f} |")
    return "\n".join(lines)


def compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Per set and mode, each measure now, before, and the change; sets in only one side say so."""
    before, after = rows(old), rows(new)
    measures = (*COLUMNS, "ms/query")
    lines = [
        f"compared with {old.get('commit') or '?'} of {old.get('created', '?')}",
        "| set | mode | " + " | ".join(measures) + " |",
        "|" + "---|" * (len(measures) + 2),
    ]
    for key in sorted(before.keys() | after.keys()):
        if key not in before or key not in after:
            side = "new" if key not in before else "gone"
            lines.append(f"| {key[0]} | {key[1]} | {side} |" + " |" * (len(measures) - 1))
            continue
        cells = [_delta(after[key].get(m), before[key].get(m), m) for m in measures]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None, column: str) -> str:
    """Scores (shares) with three decimals; seconds and milliseconds with one."""
    if value is None:
        return ""
    share = column in MEASURES or column in MOMENTS or column.startswith("time@")
    return f"{value:.3f}" if share else f"{value:.1f}"


def _delta(now: float | None, then: float | None, column: str) -> str:
    if now is None or then is None:
        return _cell(now, column)
    change = now - then
    return _cell(now, column) if abs(change) < 1e-9 else f"{_cell(now, column)} ({change:+.3f})"
