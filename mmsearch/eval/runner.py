"""One evaluation run: build the chosen sets, score them in a scratch database, report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmsearch.client import Client
from mmsearch.eval import sets
from mmsearch.eval.harness import SetResult, evaluate
from mmsearch.eval.judged import DataUnavailable
from mmsearch.eval.report import to_json
from mmsearch.eval.scratch import scratch_dsn
from mmsearch.eval.sets import LEE


def run(
    groups: Sequence[str],
    *,
    cache: Path,
    quick: bool = False,
    dsn: str | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate `groups` (`sets.CHOICES`) and return the report as JSON-ready data.

    A group whose sources cannot be fetched here is reported as not run, with the reason;
    the others still run.
    """
    started = time.perf_counter()
    results: list[SetResult] = []
    unavailable: dict[str, str] = {}
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
                results.append(evaluate(client, judged))
        spaces = {s.name: s.model_id for s in client.spaces()}
    return to_json(
        results,
        quick=quick,
        spaces=spaces,
        unavailable=unavailable,
        lee=lee,
        seconds=time.perf_counter() - started,
    )


def _lee(client: Client, cache: Path, unavailable: dict[str, str]) -> dict[str, Any] | None:
    from mmsearch.eval.sets import lee

    try:
        corpus = lee.load(cache)
    except DataUnavailable as exc:
        unavailable[LEE] = str(exc)
        return None
    return lee.evaluate(corpus, client.embedder("text"))
