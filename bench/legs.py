"""Each leg alone and together, with and without the approximate legs, on the judged sets.

    python -m bench.legs [--set speech]... [--dsn DSN] [--out FILE]

Per set with typed queries: vector alone, keyword alone (with and without `sounds_like`),
hybrid (with and without), in MRR, R@1 and R@10 — what docs/benchmarks.md reports as
"hybrid against its best leg". Sets already ingested in the database (a `--dsn` kept from
an earlier run) are not ingested again.
"""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import platformdirs

from bench import evalsets as sets
from bench.scratch import scratch_dsn
from mmsearch.client import Client
from mmsearch.eval.harness import K, score
from mmsearch.eval.judged import JudgedSet
from mmsearch.eval.tune import run_changed
from mmsearch.query.request import SearchOptions

#: request changes of each configuration (None drops a field)
CONFIGS: dict[str, dict[str, Any]] = {
    "vector": {"query": None},
    "keyword-off": {"vectors": None, "sounds_like": "off"},
    "keyword": {"vectors": None},
    "hybrid-off": {"sounds_like": "off"},
    "hybrid": {},
}
GROUPS = ("images", "speech", "words", "video")


def measure(client: Client, judged: JudgedSet) -> dict[str, dict[str, float]]:
    """MRR, R@1 and R@10 of every configuration; each typed query planned once."""
    typed = [q for q in judged.queries if q.example is None]
    base = SearchOptions(collection=judged.collection, k=K)
    planned = {q.qid: client.plan(q.text or "", base) for q in typed}
    row = {}
    for name, changes in CONFIGS.items():
        ranked = [run_changed(client, judged, q, planned[q.qid], changes) for q in typed]
        measures = score(typed, ranked)
        row[name] = {m: round(measures[m], 3) for m in ("MRR", "R@1", "R@10")}
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.legs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--set", dest="groups", action="append", choices=GROUPS)
    parser.add_argument("--dsn", help="a database to use and keep (default: a scratch one)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/legs.json"))
    parser.add_argument(
        "--cache", type=Path, default=Path(platformdirs.user_cache_dir("mmsearch")) / "eval"
    )
    args = parser.parse_args(argv)
    table = {}
    database = nullcontext(args.dsn) if args.dsn else scratch_dsn(None, "mmsearch_legs")
    with database as url, Client.connect(url) as client:
        present = {c.name for c in client.collections()}
        for group in args.groups or GROUPS:
            for judged in sets.build(group, args.cache, quick=False):
                if "hybrid" not in judged.modes:
                    continue
                if judged.collection not in present:
                    client.ingest(sorted(judged.documents.values()), collection=judged.collection)
                table[judged.name] = measure(client, judged)
                print(judged.name, json.dumps(table[judged.name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
