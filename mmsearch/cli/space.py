"""`mmsearch space list | space backfill NAME [--collection C] | space drop NAME`."""

from __future__ import annotations

import json

import click

from mmsearch.cli.remove import confirm


@click.group("space")
def space_group() -> None:
    """Named vector spaces: what fills them, backfilling a new one, dropping an old one."""


@space_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json: bool) -> None:
    """Registered spaces with their model, and how many segments have, lack or skipped a vector."""
    from mmsearch.client import Client

    with Client.connect() as client:
        configured = set(client.embedders.names())
        rows = [
            {**space.__dict__, "configured": space.name in configured}
            | client.coverage(space).__dict__
            for space in client.spaces()
        ]
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
            continue
        state = "" if row["configured"] else "  (not configured)"
        click.echo(
            f"{row['name']}\t{row['model_id']} ({row['dim']}-d {row['distance']},"
            f" {','.join(row['modalities'])})\tvectors {row['vectors']}\tmissing {row['missing']}"
            f"\tskipped {row['skipped']}{state}"
        )


@space_group.command("backfill")
@click.argument("name")
@click.option("-c", "--collection", help="Only this collection's segments.")
@click.option("--batch-size", type=click.IntRange(1, 100_000), help="Text segments per write.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def backfill_command(
    name: str, collection: str | None, batch_size: int | None, as_json: bool
) -> None:
    """Embed existing segments that lack a vector in space NAME (configured in config.toml).

    Resumable (run it again after an interruption), searches keep working meanwhile.
    """
    from mmsearch.client import Client

    with Client.connect() as client:
        report = client.backfill(
            name, collection=collection, batch_size=batch_size, progress=not as_json
        )
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(
        f"space {name}: embedded {report.embedded}, skipped {report.skipped}"
        f" in {report.seconds:.1f}s"
    )
    for why, count in sorted(report.reasons.items()):
        click.echo(f"  skipped {count}: {why}", err=True)


@space_group.command("drop")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def drop_command(name: str, yes: bool) -> None:
    """Drop space NAME: its vectors, segment column and HNSW index."""
    from mmsearch.client import Client

    with Client.connect() as client:
        space = next((s for s in client.spaces() if s.name == name), None)
        if space is None:
            raise click.ClickException(f"no space named {name!r}")
        vectors = client.coverage(space).vectors
        confirm(f"Drop space {name!r} ({space.model_id}) and its {vectors} vectors?", yes)
        client.drop_space(name)
        click.echo(f"dropped space {name} (segment.{space.column_name})")
        if name in client.embedders.names():
            click.echo(
                f"note: space {name} is still configured; the next ingest adds it back, empty"
                f" (disable it in config.toml: [spaces.{name}] enabled = false)",
                err=True,
            )
