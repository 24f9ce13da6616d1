"""`mmsearch eval QUERIES --collection C`: score search on your own judged queries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from mmsearch.errors import UserError


@click.command("eval")
@click.argument("queries", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-c", "--collection", required=True, help="The ingested collection to search.")
@click.option("--principal", "principals", multiple=True, help="Search as this principal.")
@click.option(
    "--space",
    "spaces",
    multiple=True,
    help="Only these spaces' vector legs (repeatable): score a new model against the old one.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report (every query's ranking included) as JSON here.",
)
@click.option(
    "--compare",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier report: print the change of every measure.",
)
@click.option(
    "--rerank",
    "rerankers",
    multiple=True,
    help="Also score hybrid search reranked by this reranker (evidence, cross-encoder).",
)
def eval_command(
    queries: Path,
    collection: str,
    principals: tuple[str, ...],
    spaces: tuple[str, ...],
    out: Path | None,
    compare: Path | None,
    rerankers: tuple[str, ...],
) -> None:
    """Search a collection with judged QUERIES (JSON lines) in every mode and score it.

    Each line: {"query": "glass breaking", "relevant": ["/data/a.wav", {"uri": "/data/b.mp4",
    "grade": 2, "start_s": 12, "end_s": 15}]} (or "like": FILE for query by example). Prints
    recall@1/5/10, MRR and nDCG@10 (ir-measures) per mode and, for timed media, whether the
    hit starts at the judged moment.
    """
    try:
        from mmsearch.eval.harness import evaluate
        from mmsearch.eval.judged import load_queries
        from mmsearch.eval.report import compare as compare_reports
        from mmsearch.eval.report import table, to_json
    except ModuleNotFoundError as exc:
        raise UserError(f"mmsearch eval needs {exc.name}: pip install 'mmsearch[eval]'") from exc
    from mmsearch.client import Client
    from mmsearch.rerank import load

    try:
        chosen = {name: load({"name": name}) for name in rerankers}
    except ValueError as exc:
        raise UserError(str(exc)) from None
    judged = load_queries(queries, collection)
    started = time.perf_counter()
    with Client.connect() as client:
        result = evaluate(
            client,
            judged,
            principals=list(principals),
            spaces=list(spaces) or None,
            rerankers={n: r for n, r in chosen.items() if r is not None},
        )
        models = {s.name: s.model_id for s in client.spaces() if not spaces or s.name in spaces}
    report = to_json(
        [result],
        quick=False,
        spaces=models,
        unavailable={},
        lee=None,
        seconds=time.perf_counter() - started,
    )
    click.echo(table(report))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
        click.echo(f"wrote {out}", err=True)
    if compare is not None:
        click.echo()
        click.echo(compare_reports(json.loads(compare.read_text()), report))
