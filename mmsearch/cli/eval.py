"""`mmsearch eval QUERIES --collection C`: score search on your own judged queries, or
choose its fusion from them (`--tune`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mmsearch.errors import UserError

if TYPE_CHECKING:
    from mmsearch.eval.judged import JudgedSet


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
@click.option(
    "--tune",
    is_flag=True,
    help="Instead: choose the fusion (relative or rrf, keyword weight) on half the typed"
    " queries, check it on the other half, and print the flags to search with.",
)
@click.option(
    "--apply",
    is_flag=True,
    help="With --tune: keep the chosen fusion as the collection's own, for every search of"
    " it that sets no fusion or weights.",
)
def eval_command(
    queries: Path,
    collection: str,
    principals: tuple[str, ...],
    spaces: tuple[str, ...],
    out: Path | None,
    compare: Path | None,
    rerankers: tuple[str, ...],
    tune: bool,
    apply: bool,
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
    if apply and not tune:
        raise UserError("--apply keeps what --tune chooses: give both")
    if tune:
        _tune(judged, list(principals), out, apply=apply)
        return
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


def _tune(judged: JudgedSet, principals: list[str], out: Path | None, *, apply: bool) -> None:
    from mmsearch.client import Client
    from mmsearch.eval.tune import report, tune, write

    with Client.connect() as client:
        try:
            tuning = tune(client, judged, principals=principals)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        chosen = tuning.chosen
        if apply:
            client.set_search_defaults(
                judged.collection, fusion=chosen.fusion, weights={"keyword": chosen.keyword}
            )
    click.echo(report(tuning))
    if apply:
        click.echo(f"kept as collection {judged.collection!r}'s own: {chosen.flags}")
    if out is not None:
        write(tuning, out)
        click.echo(f"wrote {out}", err=True)
