"""What a run prints and keeps: the load and search tables (markdown, as in
docs/benchmarks.md), the JSON of every sweep point, and a recall-vs-QPS plot per scenario."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bench.search.data import PER_RECORD
from bench.search.measure import Row
from bench.search.scenarios import SCENARIOS, TARGET, K

OUT = Path(__file__).resolve().parents[1] / "out"
IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@dataclass
class Run:
    """Everything a run found, for the tables and the JSON."""

    n: int
    dim: int
    queries: int
    loads: dict[str, dict[str, float]]
    rows: list[Row]
    versions: dict[str, str]
    settings: dict[str, Any]
    args: dict[str, Any]
    wall_s: float


def fmt(value: float, spec: str) -> str:
    return "" if math.isnan(value) else format(value, spec)


def print_tables(run: Run) -> None:
    print(
        f"\n{run.n:,} segments ({run.n // PER_RECORD:,} records), {run.dim}-d,"
        f" {run.queries} queries per scenario, k={K}\n"
    )
    print("| system | ingest rows/s | ingest s | index build s | index MB | total MB |")
    print("|---|---|---|---|---|---|")
    for system, load in run.loads.items():
        reused = " (kept from an earlier run)" if load.get("reused") else ""
        print(
            f"| {system}{reused} | {load['ingest_per_s']:,.0f} | {load['ingest_s']:.1f} |"
            f" {load['index_build_s']:.1f} | {fmt(load['index_mb'], '.0f')} |"
            f" {load['total_mb']:.0f} |"
        )
    print(
        "\n| scenario | system | setting | path | recall@10 | p50 ms | p95 ms | QPS ×1 |"
        " QPS ×4 | p50 / hand-written |"
    )
    print("|" + "---|" * 10)
    for row in run.rows:
        if row.note.startswith("cannot"):
            print(f"| {row.scenario} | {row.system} | {row.note} | | | | | | | |")
            continue
        mark = (" †" if "below target" in row.note else "") + (" ‡" if "budget" in row.note else "")
        print(
            f"| {row.scenario} | {row.system} | {row.setting} | {row.path} |"
            f" {fmt(row.recall_at_10, '.3f')}{mark} | {row.p50_ms:.1f} | {row.p95_ms:.1f} |"
            f" {row.qps_1:.0f} | {row.qps_4:.0f} | {fmt(row.p50_ratio, '.2f')} |"
        )
    if any("below target" in row.note for row in run.rows):
        print(f"\n† no setting swept reached recall@10 {TARGET}: the best one")
    if any("budget" in row.note for row in run.rows):
        print("‡ stopped after the time budget of one setting: fewer queries, no sweep on")
    print(f"\nwall time {run.wall_s:.0f} s")


def write_json(run: Run) -> Path:
    suffix = "" if run.dim == 384 else f"-{run.dim}d"
    OUT.mkdir(exist_ok=True)
    out = OUT / f"search-{run.n}{suffix}.json"
    payload = {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "args": run.args,
        "k": K,
        "dim": run.dim,
        "target_recall": TARGET,
        "versions": run.versions,
        "settings": run.settings,
        "load": run.loads,
        "rows": [asdict(row) for row in run.rows],
        "wall_s": run.wall_s,
    }
    out.write_text(json.dumps(payload, indent=2))
    return out


def plot(run: Run) -> list[Path]:
    """One recall-vs-QPS PNG per vector scenario, a line per system's sweep."""
    from bench.search.plots import recall_vs_qps

    suffix = "" if run.dim == 384 else f"-{run.dim}d"
    written = []
    for scenario in SCENARIOS:
        lines = {
            row.system: [
                (p.recall_at_10, p.qps_1, "default" if p.knob is None else str(p.knob))
                for p in row.sweep
            ]
            for row in run.rows
            if row.scenario == scenario.name and row.sweep and not math.isnan(row.recall_at_10)
        }
        if lines:
            target = IMG / f"search-{run.n}{suffix}-{scenario.key}.png"
            recall_vs_qps(lines, f"{scenario.name}, {run.n:,} segments", target)
            written.append(target)
    return written
