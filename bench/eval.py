"""Score the built-in judged sets: build them, ingest each into a scratch database, report.

    python -m bench.eval [--set images|speech|words|sounds|video|lee]... [--quick]
                         [--out FILE] [--compare OLD.json] [--cache DIR] [--dsn DSN]
                         [--rerank evidence|cross-encoder]... [--tune]

The sets are built from data other people made and labelled (Debian and PyPI packages,
cached); the scoring is `mmsearch.eval`, the same harness `mmsearch eval` uses on a user's
own judged queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import platformdirs

from bench import evalsets as sets
from bench.evalsets import CHOICES, LEE
from bench.evalsets.fetch import DataUnavailable
from bench.scratch import scratch_dsn
from mmsearch.client import Client
from mmsearch.eval.harness import SetResult, evaluate
from mmsearch.eval.report import compare, table, to_json


def run(
    groups: Sequence[str],
    *,
    cache: Path,
    quick: bool = False,
    dsn: str | None = None,
    rerank: list[str] | None = None,
    tune: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate `groups` (`sets.CHOICES`) and return the report as JSON-ready data.

    A group whose sources cannot be fetched here is reported as not run, with the reason;
    the others still run. Each reranker named in `rerank` (with its default options) adds
    a "hybrid+NAME" row to every set with typed queries. With `tune`, each set with hybrid
    mode is also tuned (`mmsearch.eval.tune`), under the report's "tuning".
    """
    from mmsearch.eval import tune as tuning
    from mmsearch.rerank import load

    rerankers = {name: load({"name": name}) for name in rerank or []}
    started = time.perf_counter()
    results: list[SetResult] = []
    unavailable: dict[str, str] = {}
    tuned: dict[str, Any] = {}
    lee = None
    with scratch_dsn(dsn, "mmsearch_eval") as url, Client.connect(url) as client:
        for group in groups:
            if group == LEE:
                lee = _lee(client, cache, unavailable)
                continue
            try:
                judged_sets = sets.build(group, cache, quick=quick)
            except DataUnavailable as exc:
                unavailable[group] = str(exc)
                say(f"{group}: not run: {exc}")
                continue
            for judged in judged_sets:
                size = f"{len(judged.documents)} documents, {len(judged.queries)} queries"
                say(f"{judged.name}: {size}")
                results.append(evaluate(client, judged, rerankers=rerankers))  # type: ignore[arg-type]
                if tune and "hybrid" in judged.modes:
                    found = tuning.tune(client, judged)
                    say(tuning.report(found))
                    tuned[judged.name] = found.as_dict()
        spaces = {s.name: s.model_id for s in client.spaces()}
    report = to_json(
        results,
        quick=quick,
        spaces=spaces,
        unavailable=unavailable,
        lee=lee,
        seconds=time.perf_counter() - started,
    )
    return {**report, "tuning": tuned} if tune else report


def _lee(client: Client, cache: Path, unavailable: dict[str, str]) -> dict[str, Any] | None:
    from bench.evalsets import lee

    try:
        corpus = lee.load(cache)
    except DataUnavailable as exc:
        unavailable[LEE] = str(exc)
        return None
    return lee.evaluate(corpus, client.embedder("text"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.eval", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--set", dest="groups", action="append", choices=CHOICES)
    parser.add_argument("--quick", action="store_true", help="small variants (a few minutes)")
    parser.add_argument("--out", type=Path, default=Path("bench/out/eval.json"))
    parser.add_argument("--compare", type=Path, help="an earlier report: show every change")
    parser.add_argument(
        "--cache", type=Path, default=Path(platformdirs.user_cache_dir("mmsearch")) / "eval"
    )
    parser.add_argument("--dsn", help="a server for the scratch database (default: embedded)")
    parser.add_argument(
        "--rerank", action="append", help="also score hybrid search reranked by this reranker"
    )
    parser.add_argument(
        "--tune", action="store_true", help="also choose each set's fusion (mmsearch eval --tune)"
    )
    args = parser.parse_args(argv)
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    report = run(
        args.groups or CHOICES,
        cache=args.cache,
        quick=args.quick,
        dsn=args.dsn,
        rerank=args.rerank,
        tune=args.tune,
        say=say,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(table(report))
    if args.compare is not None:
        print()
        print(compare(json.loads(args.compare.read_text()), report))
    say(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
