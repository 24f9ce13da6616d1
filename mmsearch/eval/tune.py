"""Choose a collection's fusion from judged queries: `mmsearch eval --tune`.

Every query is encoded once (`Client.plan`), then searched in hybrid mode under each
candidate fusion (`relative` or `rrf`, with a range of keyword weights) by the real SQL
search. The candidates are ranked on a tune split of the queries (every other query) and
the winner is checked on the held-out split, next to the defaults and the best single leg,
so a setting that only fits the queries it was chosen on shows up as such.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch.eval.harness import K, RankedQuery, rank_hits, score
from mmsearch.query.request import SearchOptions

if TYPE_CHECKING:
    from mmsearch.client import Client
    from mmsearch.eval.judged import JudgedSet, Query
    from mmsearch.query.search import SearchPlan

#: the keyword weights tried with each fusion (vector legs keep weight 1)
KEYWORD_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
FUSIONS = ("relative", "rrf")
DEFAULT = {"fusion": "relative", "keyword": 1.0}


@dataclass(frozen=True)
class Candidate:
    """One fusion setting and its scores on the tune and held-out splits."""

    fusion: str
    keyword: float
    tune: dict[str, float]
    held_out: dict[str, float]

    @property
    def flags(self) -> str:
        return f"--fusion {self.fusion} --weight keyword={self.keyword:g}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "fusion": self.fusion,
            "keyword_weight": self.keyword,
            "tune": self.tune,
            "held_out": self.held_out,
        }


@dataclass(frozen=True)
class Tuning:
    candidates: list[Candidate]  # best on the tune split first
    single_legs: dict[str, dict[str, float]]  # mode -> {"tune": MRR, "held_out": MRR}

    @property
    def chosen(self) -> Candidate:
        return self.candidates[0]

    @property
    def default(self) -> Candidate:
        return next(c for c in self.candidates if (c.fusion, c.keyword) == tuple(DEFAULT.values()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.as_dict(),
            "default": self.default.as_dict(),
            "single_legs": self.single_legs,
            "candidates": [c.as_dict() for c in self.candidates],
        }


def tune(client: Client, judged: JudgedSet, *, principals: list[str] | None = None) -> Tuning:
    """Score every candidate fusion on both splits; the best on the tune split comes first."""
    typed = [q for q in judged.queries if q.example is None]
    if len(typed) < 4:
        raise ValueError("tuning needs at least 4 typed queries (2 to tune on, 2 to check)")
    splits = {"tune": typed[0::2], "held_out": typed[1::2]}
    base = SearchOptions(collection=judged.collection, k=K, principals=principals or None)
    planned = {q.qid: client.plan(q.text or "", base) for q in typed}

    def measure(request: dict[str, Any]) -> dict[str, dict[str, float]]:
        ranked = {q.qid: run_changed(client, judged, q, planned[q.qid], request) for q in typed}
        return {
            name: score(queries, [ranked[q.qid] for q in queries])
            for name, queries in splits.items()
        }

    candidates = []
    for fusion in FUSIONS:
        for weight in KEYWORD_WEIGHTS:
            scores = measure({"fusion": fusion, "weights": {"keyword": weight}})
            candidates.append(Candidate(fusion, weight, scores["tune"], scores["held_out"]))
    # ties go to the setting nearest the defaults
    candidates.sort(
        key=lambda c: (
            -c.tune["MRR"],
            -c.tune["R@10"],
            c.fusion != DEFAULT["fusion"],
            abs(c.keyword - DEFAULT["keyword"]),
            c.keyword,
        )
    )
    legs = {}
    for mode, drop in (("vector", "query"), ("keyword", "vectors")):
        scores = measure({drop: None, "fusion": "relative", "weights": {}})
        legs[mode] = {split: scores[split]["MRR"] for split in splits}
    return Tuning(candidates, legs)


def run_changed(
    client: Client, judged: JudgedSet, query: Query, planned: SearchPlan, changes: dict[str, Any]
) -> RankedQuery:
    """Run a planned query with `changes` to its request (None drops a field), ranked."""
    request = {k: v for k, v in {**planned.request, **changes}.items() if v is not None}
    started = time.perf_counter()
    hits = client.run(replace(planned, request=request))
    return rank_hits(judged, query, hits, time.perf_counter() - started)


def report(tuning: Tuning) -> str:
    """The candidates as a table, then the choice against the defaults and single legs."""
    lines = ["fusion    keyword  tune MRR  tune R@10  held-out MRR  held-out R@10"]
    for c in tuning.candidates:
        lines.append(
            f"{c.fusion:<9} {c.keyword:>7g}  {c.tune['MRR']:>8.3f}  {c.tune['R@10']:>9.3f}"
            f"  {c.held_out['MRR']:>12.3f}  {c.held_out['R@10']:>13.3f}"
        )
    chosen, default = tuning.chosen, tuning.default
    lines.append("")
    for mode, mrr in tuning.single_legs.items():
        tuned, held = mrr["tune"], mrr["held_out"]
        lines.append(f"{mode} alone: MRR {tuned:.3f} (tune), {held:.3f} (held out)")
    lines.append(
        f"defaults: held-out MRR {default.held_out['MRR']:.3f}; chosen ({chosen.flags}):"
        f" held-out MRR {chosen.held_out['MRR']:.3f}"
    )
    lines.append(f"search with: mmsearch search ... {chosen.flags}")
    return "\n".join(lines)


def write(tuning: Tuning, path: Path) -> None:
    import json

    path.write_text(json.dumps(tuning.as_dict(), indent=2) + "\n", encoding="utf-8")
