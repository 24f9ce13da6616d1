"""Recall@10 against QPS, one line per system, one PNG per scenario (`bench.search`).

Kept apart so that the benchmark imports matplotlib only when it draws (and runs without
it with `--no-plots`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

TARGET = 0.95


def recall_vs_qps(
    lines: Mapping[str, Sequence[tuple[float, float, str]]], title: str, path: Path
) -> None:
    """`lines`: system → (recall@10, QPS with one client, knob label) per sweep point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for system, points in lines.items():
        ordered = sorted(points, key=lambda p: p[0])
        ax.plot([p[0] for p in ordered], [p[1] for p in ordered], "o-", label=system, ms=4)
        for recall, qps, label in ordered:
            ax.annotate(label, (recall, qps), fontsize=6, xytext=(2, 2), textcoords="offset points")
    ax.axvline(TARGET, color="grey", lw=0.8, ls="--")
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 (against exact numpy search)")
    ax.set_ylabel("QPS, 1 client (log)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
