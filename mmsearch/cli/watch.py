"""`mmsearch watch FOLDER...`"""

from __future__ import annotations

import click

from mmsearch.cli.ingest import ingest_options, parse_meta, print_report


@click.command("watch")
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=str))
@ingest_options
def watch_command(
    folders: tuple[str, ...],
    collection: str,
    tags: tuple[str, ...],
    meta: tuple[str, ...],
    acl: tuple[str, ...],
    recursive: bool,
    follow_symlinks: bool,
    as_json: bool,
) -> None:
    """Keep a collection in step with folders: sync them once (ingest with --prune), then
    ingest what changes and remove what goes, until interrupted. One summary per pass."""
    from mmsearch.client import Client

    metadata = parse_meta(meta)
    with Client.connect() as client:
        passes = client.watch(
            list(folders),
            collection=collection,
            tags=list(tags) or None,
            metadata=metadata,
            acl=list(acl) or None,
            recursive=recursive,
            follow_symlinks=follow_symlinks,
        )
        try:
            for report in passes:
                print_report(report, as_json)
        except KeyboardInterrupt:
            passes.close()
