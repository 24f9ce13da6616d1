"""`mmsearch search QUERY` and `mmsearch search --like FILE|SEGMENT_ID`"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mmsearch.cli.output import printable
from mmsearch.errors import UserError
from mmsearch.query.request import parse_weights

if TYPE_CHECKING:
    from mmsearch.query.request import Mode


@click.command("search")
@click.argument("query", required=False)
@click.option("-c", "--collection", "collections", multiple=True, help="Repeatable.")
@click.option(
    "--media-type",
    "media_types",
    multiple=True,
    type=click.Choice(["text", "image", "audio", "video"]),
    help="Repeatable.",
)
@click.option("--tag", "tags", multiple=True, help="Records with any of these tags.")
@click.option(
    "--filter",
    "filter_expr",
    metavar="EXPR",
    help='A filter expression, e.g. \'meta.camera = "north" and tags has "kitchen"\'.',
)
@click.option(
    "--like",
    metavar="FILE|SEGMENT_ID",
    help="Search by example: a file (image, sound, video, text) or an ingested segment id.",
)
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "vector", "keyword"]),
    default="hybrid",
    show_default=True,
)
@click.option("--principal", "principals", multiple=True, help="Search as this principal.")
@click.option(
    "--space",
    "spaces",
    multiple=True,
    help="Only this space's vector leg (repeatable; default: every configured space).",
)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--segments", is_flag=True, help="Show every matching segment, not one per record.")
@click.option(
    "--weight",
    "weights",
    multiple=True,
    help="LEG=W: weight of a leg in the fusion (text, image, visual, sound, keyword,"
    " sounds_like, spelled_like, …).",
)
@click.option(
    "--fusion",
    type=click.Choice(["relative", "rrf"]),
    help="How legs combine: scores on a 0..1 scale, or reciprocal ranks"
    " (default: the collection's own, else relative).",
)
@click.option(
    "--sounds-like",
    type=click.Choice(["speech", "all", "off"]),
    help="Where words that sound like the query's count: transcripts (default), every"
    " segment's text, or nowhere.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="Also print the SQL it runs, ready for psql (stderr); its hits are not reranked.",
)
@click.option("--analyze", is_flag=True, help="With --explain: also the plan, as run (owner).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, best first.")
def search_command(
    query: str | None,
    collections: tuple[str, ...],
    media_types: tuple[str, ...],
    tags: tuple[str, ...],
    filter_expr: str | None,
    like: str | None,
    mode: Mode,
    principals: tuple[str, ...],
    spaces: tuple[str, ...],
    k: int,
    segments: bool,
    weights: tuple[str, ...],
    fusion: str | None,
    sounds_like: str | None,
    explain: bool,
    analyze: bool,
    as_json: bool,
) -> None:
    """Search by text (QUERY); with --like, by an example file or "more like" a segment id.

    A running `mmsearch serve` for the same database answers it (models already loaded);
    `--explain`, `--space` and a machine with no server search in-process.
    """
    subject = _subject(query, like)
    options: dict[str, Any] = {
        "collection": list(collections),
        "media_types": list(media_types),
        "tags": list(tags),
        "filter": filter_expr,
        "mode": mode,
        "principals": list(principals),
        "k": k,
        "segments": segments,
        "weights": parse_weights(weights),
        "fusion": fusion,
        "sounds_like": sounds_like,
        "spaces": list(spaces) or None,
    }
    in_process = explain or analyze
    hits = None if in_process else _search_through_server(subject, options)
    if hits is None:
        from mmsearch.client import Client
        from mmsearch.query.request import SearchOptions

        with Client.connect() as client:
            if explain or analyze:  # the database's stage, as it runs: no rerank
                planned = client.plan(subject, SearchOptions(**options))
                click.echo(client.explain(planned, analyze=analyze), err=True)
                found = client.run(planned)
            else:
                found = client.search(subject, **options)
            hits = [hit.as_dict() for hit in found]
    _print_hits(hits, as_json)


def _subject(query: str | None, like: str | None) -> str | Path | int:
    """The text, the example file or the segment id searched for (exactly one is given)."""
    if (query is None) == (like is None):
        raise UserError("give a QUERY to search for, or --like FILE|SEGMENT_ID, not both")
    if query is not None:
        return query
    assert like is not None  # one of the two, checked above
    if like.isdigit():
        return int(like)
    if not Path(like).is_file():
        raise UserError(f"--like: no such file {like!r}")
    return Path(like)


def _print_hits(hits: list[dict[str, Any]], as_json: bool) -> None:
    """One JSON object a line, or two or three readable lines a hit."""
    for rank, hit in enumerate(hits, 1):
        if as_json:
            click.echo(json.dumps(hit))
            continue
        start, end = hit["start_s"], hit["end_s"]
        where = f" @ {start:.1f}-{end:.1f}s" if start is not None else ""
        moment = hit.get("moment_start_s"), hit.get("moment_end_s")
        if moment[0] is not None and (moment[0] < start or moment[1] > end):
            where += f" (moment {moment[0]:.1f}-{moment[1]:.1f}s)"
        title, uri = printable(hit["title"]), printable(hit["uri"])
        click.echo(f"{rank:>2}. {hit['score']:.4f} [{hit['media_type']}] {title}{where}")
        click.echo(f"    {uri}")
        if hit["snippet"]:
            click.echo("    " + printable(" ".join(hit["snippet"].split())[:200]))
    if not hits and not as_json:
        click.echo("no results", err=True)


def _search_through_server(
    subject: str | Path | int, options: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """Hits from a running `mmsearch serve` (models already loaded), or None if none runs."""
    from mmsearch.api.remote import ServerUnreachable, server_for_cli
    from mmsearch.config import Settings

    remote = server_for_cli(Settings.load())
    if remote is None:
        return None
    try:
        return remote.search(subject, options)
    except ServerUnreachable:
        return None
