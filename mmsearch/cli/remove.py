"""`mmsearch rm --collection C URI...` and `mmsearch collection list|rm`."""

from __future__ import annotations

import json
import sys

import click


def confirm(question: str, yes: bool) -> None:
    """Ask before destroying data unless `--yes`; without a terminal to ask, refuse."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError(f"{question} Refusing without --yes (no terminal to ask on).")
    click.confirm(question, abort=True)


@click.command("rm")
@click.option("-c", "--collection", required=True, help="The collection holding the records.")
@click.argument("uris", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def rm_command(collection: str, uris: tuple[str, ...], as_json: bool) -> None:
    """Remove records (their segments, errors and unused thumbnails) by uri.

    A path is made absolute, as ingest stores it; the file itself is not touched. Exits 1
    when some URI was not in the collection (the others are still removed).
    """
    from mmsearch.client import Client

    with Client.connect() as client:
        removal = client.remove(list(uris), collection=collection)
    if as_json:
        click.echo(json.dumps(removal.as_dict()))
    else:
        click.echo(f"removed {removal.removed}")
        for uri in removal.missing:
            click.echo(f"  not in collection {collection}: {uri!r}", err=True)
    if removal.missing:
        sys.exit(1)


@click.group("collection")
def collection_group() -> None:
    """Collections: list them, remove one with everything in it."""


@collection_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json: bool) -> None:
    """Every collection with its record and ingest-error counts."""
    from mmsearch.client import Client

    with Client.connect() as client:
        summaries = client.collections()
    for summary in summaries:
        if as_json:
            click.echo(json.dumps(summary.as_dict()))
        else:
            click.echo(
                f"{summary.name}\t{summary.records} records\t{summary.ingest_errors} ingest errors"
            )


@collection_group.command("rm")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def collection_rm_command(name: str, yes: bool) -> None:
    """Remove collection NAME and every record in it (one transaction per record)."""
    from mmsearch.client import Client

    with Client.connect() as client:
        if not any(c.name == name for c in client.collections()):
            raise click.ClickException(f"no collection named {name!r}")
        confirm(f"Remove collection {name!r} and every record in it?", yes)
        removed = client.remove_collection(name)
    click.echo(f"removed {removed}")
