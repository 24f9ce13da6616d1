"""`mmsearch acl set|add|remove` and `mmsearch tag set|add|remove`: no re-ingest needed."""

from __future__ import annotations

import click

from mmsearch.ingest.labels import Change, Column

HELP: dict[Change, str] = {
    "set": "Replace the {noun}s of records (the whole collection unless --uri) with {metavar}.",
    "add": "Add {metavar} to the {noun}s of records (the whole collection unless --uri).",
    "remove": "Remove {metavar} from the {noun}s of records (the whole collection unless --uri).",
}


def label_command(column: Column, change: Change, noun: str, metavar: str) -> click.Command:
    """One of the six commands; they differ only in the column and the change."""

    @click.command(change, help=HELP[change].format(noun=noun, metavar=metavar))
    @click.option("-c", "--collection", required=True)
    @click.option("--uri", "uris", multiple=True, help="Only this record (repeatable).")
    @click.argument(
        "values", nargs=-1, required=column == "acl" or change != "set", metavar=metavar
    )
    def command(collection: str, uris: tuple[str, ...], values: tuple[str, ...]) -> None:
        from mmsearch.client import Client

        with Client.connect() as client:
            changed = client.change_labels(column, change, values, collection, list(uris) or None)
        click.echo(f"changed {changed}")

    return command


def label_group(column: Column, name: str, noun: str, metavar: str) -> click.Group:
    group = click.Group(name, help=f"Change the {noun}s of ingested records in place.")
    for change in ("set", "add", "remove"):
        group.add_command(label_command(column, change, noun, metavar))
    return group


acl_group = label_group("acl", "acl", "access principal", "PRINCIPAL...")
tag_group = label_group("tags", "tag", "tag", "TAG...")
