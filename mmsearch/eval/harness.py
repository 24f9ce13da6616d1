"""Run judged query sets through mmsearch end to end and score them with ir-measures.

Each set is ingested into its own collection of a scratch database by the real pipeline,
then every query is searched through `Client.search` in each of the set's modes (keyword,
vector, hybrid), exactly as a user would. Scores come from `ir-measures`, not from
formulas of our own; timestamp accuracy (is the hit's `start_s` inside the judged span)
has no library measure, so it is computed here from the same ranked lists.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ir_measures
from ir_measures import RR, R, Success, nDCG

from mmsearch.eval.judged import JudgedSet, Mode, Query

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mmsearch.client import Client
    from mmsearch.query.search import Hit
    from mmsearch.rerank import Reranker

K = 10
MEASURES = {
    "hit@1": Success @ 1,
    "R@1": R @ 1,
    "R@5": R @ 5,
    "R@10": R @ 10,
    "MRR": RR,
    "nDCG@10": nDCG @ 10,
}
#: the IoU thresholds of the moment measures R1@0.5 / R1@0.7 (see `timestamp_accuracy`)
IOU_LEVELS = (0.5, 0.7)
#: a stand-in document for a query that returned nothing, so ir-measures still counts it
#: (it averages over the queries present in the run)
NOTHING = "__no_result__"
#: the names of the moment measures
MOMENT_MEASURES = tuple(f"R1@{level}" for level in IOU_LEVELS)


@dataclass
class RankedQuery:
    """What one query returned in one mode: doc ids best first, each hit's time span."""

    qid: str
    query: str
    docs: list[str]
    starts: list[float | None]
    ends: list[float | None]
    seconds: float
    #: each hit's moment (`Hit.moment_start_s`/`moment_end_s`), None outside time-coded media
    moments: list[tuple[float, float] | None] = field(default_factory=list)

    def first_relevant(self, query: Query) -> int | None:
        """0-based rank of the first relevant doc, or None."""
        judged = {j.doc for j in query.relevant}
        return next((i for i, doc in enumerate(self.docs) if doc in judged), None)


@dataclass
class ModeResult:
    #: a search mode, or "hybrid+NAME": hybrid search reranked by reranker NAME
    mode: Mode | str
    metrics: dict[str, float]
    #: share of timed queries whose top hit is relevant and starts inside the judged span
    #: (time@1), and whose first relevant hit in the top k does (time@10)
    timestamp: dict[str, float | int] | None
    p50_ms: float
    ranked: list[RankedQuery] = field(default_factory=list)


@dataclass
class SetResult:
    name: str
    description: str
    documents: int
    queries: int
    ingest: dict[str, Any]
    modes: list[ModeResult]


def evaluate(
    client: Client,
    judged: JudgedSet,
    *,
    principals: list[str] | None = None,
    spaces: list[str] | None = None,
    rerankers: Mapping[str, Reranker] | None = None,
) -> SetResult:
    """Ingest the set's documents (unless it reuses a collection), then run every query.

    Searches run as `principals`, so judged queries see what that caller may see, and with
    the vector legs of `spaces` only when given (a new model's space against the old one's).
    Each of `rerankers` adds a mode "hybrid+NAME" for typed queries: hybrid search for the
    reranker's `depth` candidates, reranked, cut to k (its ms/query counts both stages).
    """
    ingest: dict[str, Any] = {"reuses": judged.reuses}
    if judged.reuses is None:
        report = client.ingest(sorted(judged.documents.values()), collection=judged.name)
        ingest = {
            "seconds": round(report.seconds, 2),
            "ingested": report.ingested + report.updated + report.unchanged,
            "failed": report.failed,
            "errors": report.errors,
        }
    who = principals or []
    modes = [_run_mode(client, judged, mode, who, spaces) for mode in judged.modes]
    if "hybrid" in judged.modes:
        for name, reranker in (rerankers or {}).items():
            modes.append(_run_mode(client, judged, "hybrid", who, spaces, (name, reranker)))
    return SetResult(
        judged.name, judged.description, len(judged.documents), len(judged.queries), ingest, modes
    )


def _run_mode(
    client: Client,
    judged: JudgedSet,
    mode: Mode,
    principals: list[str],
    spaces: list[str] | None,
    reranked: tuple[str, Reranker] | None = None,
) -> ModeResult:
    ranked = []
    for query in judged.queries:
        subject: str | Path = query.example if query.example is not None else query.text or ""
        depth = max(K, reranked[1].depth) if reranked else K
        started = time.perf_counter()
        hits = client.search(
            subject,
            collection=judged.collection,
            mode=mode,
            k=depth,
            principals=principals,
            spaces=spaces,
            rerank=False,  # the configured reranker is scored as its own mode
        )
        if reranked and isinstance(subject, str):
            from mmsearch.rerank import RerankContext

            context = RerankContext(client.db, client.embedders, tuple(principals))
            hits = reranked[1].rerank(subject, hits, context)
        ranked.append(rank_hits(judged, query, hits[:K], time.perf_counter() - started))
    return ModeResult(
        f"{mode}+{reranked[0]}" if reranked else mode,
        score(judged.queries, ranked),
        timestamps(judged, ranked),
        round(1000 * statistics.median(r.seconds for r in ranked), 1),
        ranked,
    )


def rank_hits(judged: JudgedSet, query: Query, hits: list[Hit], seconds: float) -> RankedQuery:
    """One query's hits as the ranked document ids and spans the measures read."""
    label = query.text if query.text is not None else f"like {query.example.name}"  # type: ignore[union-attr]
    return RankedQuery(
        query.qid,
        label,
        [judged.doc_id(hit.uri) for hit in hits],
        [hit.start_s for hit in hits],
        [hit.end_s for hit in hits],
        seconds,
        [
            (hit.moment_start_s, hit.moment_end_s)
            if hit.moment_start_s is not None and hit.moment_end_s is not None
            else None
            for hit in hits
        ],
    )


def score(queries: list[Query], ranked: list[RankedQuery]) -> dict[str, float]:
    """The ir-measures aggregate of each measure over every query (empty answers count)."""
    qrels = {q.qid: {j.doc: j.grade for j in q.relevant} for q in queries}
    run: dict[str, dict[str, float]] = {}
    for r in ranked:
        # scores strictly decreasing with rank, so ir-measures keeps our order
        run[r.qid] = {doc: float(len(r.docs) - i) for i, doc in enumerate(r.docs)} or {NOTHING: 0.0}
    values = ir_measures.calc_aggregate(list(MEASURES.values()), qrels, run)
    return {name: round(float(values[m]), 4) for name, m in MEASURES.items()}


def timestamps(judged: JudgedSet, ranked: list[RankedQuery]) -> dict[str, float | int] | None:
    """`timestamp_accuracy` of the hits' own segments, and the moment measures of their
    moments (a hit's neighbouring segments that the search also found) as "moment ..."."""
    own = timestamp_accuracy(judged, ranked)
    if own is None:
        return None
    merged = timestamp_accuracy(judged, ranked, moments=True) or {}
    return own | {f"moment {k}": merged[k] for k in (*MOMENT_MEASURES, "start error s")}


def timestamp_accuracy(
    judged: JudgedSet, ranked: list[RankedQuery], *, moments: bool = False
) -> dict[str, float | int] | None:
    """Does the first relevant hit's segment cover the judged moment, and how tightly?

    A hit is at the right time when its [start_s, end_s] overlaps a judged span of its
    document, widened by the set's tolerance: the user who jumps to it hears or sees the
    answer. Segments are cut at their own boundaries, so `start error` (median seconds from
    the hit's start to the judged start, over hits at the right time) says how far from the
    answer playback begins. `R1@0.5` and `R1@0.7` are the moment-retrieval measures of
    Charades-STA and QVHighlights over a corpus: the share of timed queries whose top hit is
    a relevant document and whose span overlaps a judged span of it with an IoU of at least
    0.5 (0.7); they reward a moment that is as long as the answer, not just near it. With
    `moments`, each hit's moment stands in for its segment where it has one.
    """
    by_qid = {q.qid: q for q in judged.queries}
    at_1 = right = timed = 0
    errors: list[float] = []
    tight = dict.fromkeys(IOU_LEVELS, 0)
    for r in ranked:
        query = by_qid[r.qid]
        spans: dict[str, list[tuple[float, float]]] = {}
        for j in query.relevant:
            if j.span is not None:
                spans.setdefault(j.doc, []).append(j.span)
        if not spans:
            continue
        timed += 1
        rank = r.first_relevant(query)
        if rank is None or r.starts[rank] is None:
            continue
        moment = r.moments[rank] if moments and rank < len(r.moments) else None
        start, end = moment or (
            float(r.starts[rank]),  # type: ignore[arg-type]
            float(r.ends[rank] if r.ends[rank] is not None else r.starts[rank]),  # type: ignore[arg-type]
        )
        if rank == 0:
            best = max((iou((start, end), s) for s in spans.get(r.docs[0], [])), default=0.0)
            for level in IOU_LEVELS:
                tight[level] += best >= level
        tol = judged.span_tolerance_s
        covering = [
            s for s in spans.get(r.docs[rank], []) if start <= s[1] + tol and s[0] - tol <= end
        ]
        if covering:
            right += 1
            at_1 += rank == 0
            errors.append(min(abs(s[0] - start) for s in covering))
    if not timed:
        return None
    return {
        "timed_queries": timed,
        "time@1": round(at_1 / timed, 4),
        "time@10": round(right / timed, 4),
        "start error s": round(statistics.median(errors), 1) if errors else None,
        **{f"R1@{level}": round(tight[level] / timed, 4) for level in IOU_LEVELS},
    }


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Temporal intersection over union of two [start, end] spans (0 when disjoint; two
    equal instants count as a perfect match)."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return 1.0 if a == b else 0.0
    return max(inter, 0.0) / union
