"""Choose how much the evidence reranker counts: tune on half of each set's queries, check
on the other half.

    python -m bench.rerank_tune [--set images|speech|words|video]... [--quick] [--out FILE]

Each set is ingested into a scratch database; every typed query is searched once (hybrid,
the reranker's depth) and the evidence of every candidate computed once, so the fusion
settings (`weight` of the reranker's order against the search's, and the RRF `k`) are scored
from the same candidates. Queries are split by `image_queries.split_of` (a hash of the query
text, fixed before any tuning): settings are ranked by mean MRR over the sets' tune halves,
and the held-out halves are reported for the chosen one and for no reranking.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import platformdirs

from bench import evalsets as sets
from bench.evalsets.image_queries import split_of
from bench.scratch import scratch_dsn
from mmsearch.client import Client
from mmsearch.eval.harness import K, RankedQuery, score
from mmsearch.eval.judged import JudgedSet, Query
from mmsearch.rerank import RerankContext, fuse_orders
from mmsearch.rerank.evidence import EvidenceReranker, _Judge

WEIGHTS = (0.5, 1.0, 2.0, 4.0, 1000.0)
RRF_KS = (1.0, 5.0, 10.0, 60.0)
SHOWN = ("hit@1", "MRR", "R@10")


def candidates(client: Client, judged: JudgedSet, depth: int) -> list[dict[str, Any]]:
    """Per typed query: its candidates (doc ids, in search order) and their evidence."""
    client.ingest(sorted(judged.documents.values()), collection=judged.name)
    reranker = EvidenceReranker(depth=depth)
    context = RerankContext(client.db, client.embedders)
    found = []
    for query in judged.queries:
        if query.text is None:
            continue
        hits = client.search(
            query.text, collection=judged.name, mode="hybrid", k=depth, rerank=False
        )
        started = time.perf_counter()
        judge = _Judge(reranker, query.text, context)
        evidence = [judge.evidence(hit) for hit in hits]
        found.append(
            {
                "query": query,
                "docs": [judged.doc_id(h.uri) for h in hits],
                "evidence": evidence,
                "seconds": time.perf_counter() - started,
            }
        )
    return found


def scores(found: list[dict[str, Any]], weight: float | None, k: float) -> dict[str, dict]:
    """Measures per split for one setting (`weight` None: the search's own order)."""
    out = {}
    for split in ("tune", "heldout"):
        part = [f for f in found if split_of(f["query"].text) == split]
        ranked = []
        for f in part:
            order = (
                range(len(f["docs"])) if weight is None else fuse_orders(f["evidence"], k, weight)
            )
            docs = [f["docs"][i] for i in order][:K]
            ranked.append(RankedQuery(f["query"].qid, f["query"].text, docs, [], [], 0.0))
        queries: list[Query] = [f["query"] for f in part]
        out[split] = score(queries, ranked) if part else {}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rerank_tune", description=__doc__)
    parser.add_argument("--set", dest="groups", action="append", choices=sets.GROUPS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/out/rerank_tune.json"))
    args = parser.parse_args(argv)
    cache = Path(platformdirs.user_cache_dir("mmsearch")) / "eval"
    results: dict[str, Any] = {}
    with scratch_dsn(None, "mmsearch_tune") as url, Client.connect(url) as client:
        for group in args.groups or ["images", "words", "video"]:
            for judged in sets.build(group, cache, quick=args.quick):
                if judged.reuses is not None or all(q.text is None for q in judged.queries):
                    continue
                print(f"{judged.name}: ingest and candidates", file=sys.stderr, flush=True)
                found = candidates(client, judged, args.depth)
                grid = {"search": scores(found, None, 0.0)}
                for weight in WEIGHTS:
                    for k in RRF_KS:
                        grid[f"w={weight:g} k={k:g}"] = scores(found, weight, k)
                ms = 1000 * statistics.median(f["seconds"] for f in found)
                results[judged.name] = {"grid": grid, "rerank_ms_p50": round(ms, 1)}
    settings = list(next(iter(results.values()))["grid"])  # "search": no reranking
    tune_mrr = {
        s: statistics.mean(r["grid"][s]["tune"]["MRR"] for r in results.values()) for s in settings
    }
    best = max(settings, key=lambda s: tune_mrr[s])
    print(f"| set | split | setting | {' | '.join(SHOWN)} | rerank ms/query |")
    print("|---|---|---|" + "---|" * (len(SHOWN) + 1))
    for name, r in results.items():
        for split in ("tune", "heldout"):
            for setting in ("search", best):
                values = r["grid"][setting][split]
                cells = " | ".join(f"{values.get(m, 0):.3f}" for m in SHOWN)
                print(f"| {name} | {split} | {setting} | {cells} | {r['rerank_ms_p50']} |")
    print(f"\nchosen on the tune halves (mean MRR {tune_mrr[best]:.3f}): {best}")
    ranked = sorted(settings, key=lambda s: -tune_mrr[s])
    print("tune mean MRR by setting: " + ", ".join(f"{s}: {tune_mrr[s]:.3f}" for s in ranked))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "chosen": best, "tune_mrr": tune_mrr}))


if __name__ == "__main__":
    main()
