"""`mmsearch eval`: score retrieval on judged query sets built from real, labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import click
import platformdirs

from mmsearch.errors import UserError
from mmsearch.eval.sets import CHOICES


@click.command("eval")
@click.option(
    "--set",
    "groups",
    multiple=True,
    type=click.Choice(CHOICES),
    help="Evaluate only these (repeatable; default: all).",
)
@click.option("--quick", is_flag=True, help="Small variants of each set (a few minutes).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("mmsearch-eval.json"),
    show_default=True,
    help="Write the report (every query's ranking included) here.",
)
@click.option(
    "--compare",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier report: print the change of every measure.",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(platformdirs.user_cache_dir("mmsearch")) / "eval",
    show_default=True,
    help="Where the downloaded sources and the built sets are kept.",
)
@click.option(
    "--dsn",
    envvar="MMSEARCH_DATABASE_URL",
    help="Evaluate in a scratch database on this server (default: a throwaway embedded one).",
)
def eval_command(
    groups: tuple[str, ...],
    quick: bool,
    out: Path,
    compare: Path | None,
    cache: Path,
    dsn: str | None,
) -> None:
    """Ingest each judged set into a scratch database, search it in every mode, score it.

    Prints a table (recall@k, MRR, nDCG@10 from ir-measures; for timed media, whether the
    hit starts inside the judged span) and writes it as JSON; your own data is untouched.
    """
    try:
        from mmsearch.eval.report import compare as compare_reports
        from mmsearch.eval.report import table
        from mmsearch.eval.runner import run
    except ModuleNotFoundError as exc:
        raise UserError(f"mmsearch eval needs {exc.name}: pip install 'mmsearch[eval]'") from exc

    report = run(
        groups or CHOICES, cache=cache, quick=quick, dsn=dsn, say=lambda s: click.echo(s, err=True)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    click.echo(table(report))
    if compare is not None:
        click.echo()
        click.echo(compare_reports(json.loads(compare.read_text()), report))
    click.echo(f"\nwrote {out}", err=True)
