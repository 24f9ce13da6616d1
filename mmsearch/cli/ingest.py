"""`mmsearch ingest PATH...`"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from mmsearch.cli.output import printable
from mmsearch.errors import UserError

if TYPE_CHECKING:
    from mmsearch.ingest.pipeline import IngestReport


def parse_meta(pairs: tuple[str, ...]) -> dict[str, object]:
    """`K=V` pairs; V is parsed as JSON when it is JSON (numbers, true), else kept a string."""
    metadata: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--meta expects KEY=VALUE, got {pair!r}")
        try:
            metadata[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key.strip()] = value
    return metadata


def ingest_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `ingest` and `watch` share: where records go and what they carry."""
    options = [
        click.option("-c", "--collection", default="default", show_default=True),
        click.option(
            "-t", "--tag", "tags", multiple=True,
            help="Tag the records (repeatable; replaces their tags). None given: tags are kept.",
        ),
        click.option(
            "-m", "--meta", "meta", multiple=True, help="KEY=VALUE metadata (repeatable)."
        ),
        click.option(
            "--acl", multiple=True,
            help="Principal allowed to see the records (repeatable; replaces their ACL). None"
            " given: a record keeps its ACL, a new one is public.",
        ),
        click.option("--recursive/--no-recursive", default=True, show_default=True),
        click.option(
            "--follow-symlinks", is_flag=True,
            help="Follow symbolic links that lead out of the folders being ingested.",
        ),
        click.option(
            "--json", "as_json", is_flag=True, help="Print each summary as one JSON object."
        ),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


def print_report(report: IngestReport, as_json: bool) -> None:
    """The one-line summary (or its JSON) on stdout, each failure on stderr."""
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(
        f"ingested {report.ingested}, updated {report.updated}, unchanged {report.unchanged},"
        f" skipped {report.skipped}, failed {report.failed}, removed {report.removed}"
        f" in {report.seconds:.1f}s"
    )
    for error in report.errors:
        uri, message = printable(error["uri"]), printable(error["message"])
        click.echo(f"  failed {uri}: [{error['stage']}] {message}", err=True)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@ingest_options
@click.option(
    "--prune",
    is_flag=True,
    help="Also remove the collection's records under PATHS whose files are gone.",
)
def ingest_command(
    paths: tuple[str, ...],
    collection: str,
    tags: tuple[str, ...],
    meta: tuple[str, ...],
    acl: tuple[str, ...],
    recursive: bool,
    prune: bool,
    follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Ingest files and folders: unchanged files are skipped, bad ones recorded with a reason."""
    from mmsearch.client import Client

    metadata = parse_meta(meta)
    with Client.connect() as client:
        report = client.ingest(
            list(paths),
            collection=collection,
            tags=list(tags) or None,
            metadata=metadata,
            acl=list(acl) or None,
            recursive=recursive,
            progress=not as_json,
            prune=prune,
            follow_symlinks=follow_symlinks,
        )
    print_report(report, as_json)
    if not report.ok:
        sys.exit(1)
