"""`mmsearch init`, `mmsearch status` and `mmsearch db url|stop`."""

from __future__ import annotations

import json

import click

from mmsearch.config import Settings


@click.command("init")
@click.option("--no-spaces", is_flag=True, help="Create the schema only; skip loading models.")
def init_command(no_spaces: bool) -> None:
    """Create or upgrade the database and register the configured spaces."""
    from mmsearch.client import Client

    with Client.connect() as client:
        spaces = [] if no_spaces else client.register_spaces()
        click.echo(f"database ready: {_shown_url(client.db.dsn)}")
        for space in spaces:
            modalities = ",".join(space.modalities)
            click.echo(
                f"space {space.name}: {space.model_id} ({space.dim}-d {space.distance}, "
                f"{modalities}) -> segment.{space.column_name}"
            )


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_command(as_json: bool) -> None:
    """Show the database, the spaces and per-collection counts."""
    from psycopg.rows import dict_row

    from mmsearch.client import Client

    with Client.connect() as client, client.db.transaction() as conn:
        version = conn.execute(
            "SELECT current_setting('server_version'),"
            " (SELECT extversion FROM pg_extension WHERE extname = 'vector')"
        ).fetchone()
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT * FROM mmsearch.collection_stats ORDER BY collection")
            stats = cur.fetchall()
        spaces = [s.__dict__ for s in client.spaces()]
        status = {
            "database": _shown_url(client.db.dsn),
            "postgres": version[0],
            "pgvector": version[1],
            "spaces": spaces,
            "collections": [{k: _plain(v) for k, v in row.items()} for row in stats],
        }
    if as_json:
        click.echo(json.dumps(status))
        return
    click.echo(f"database  {status['database']}")
    click.echo(f"postgres  {status['postgres']}, pgvector {status['pgvector']}")
    for space in spaces:
        click.echo(f"space     {space['name']}: {space['model_id']} ({space['dim']}-d)")
    for row in status["collections"]:
        click.echo(
            f"collection {row['collection']}: {row['records']} records "
            f"(text {row['text_records']}, image {row['image_records']}, "
            f"audio {row['audio_records']}, video {row['video_records']}), "
            f"{row['ingest_errors']} ingest errors"
        )


@click.group("db")
def db_group() -> None:
    """The database: its URL, and stopping the embedded server."""


@db_group.command("url")
@click.option(
    "--role",
    type=click.Choice(["owner", "analyst", "bi"]),
    default="owner",
    help="Connect as the owner, the read-only analyst role or the BI role.",
)
def url_command(role: str) -> None:
    """Print a DSN that psql and BI tools accept (starts the embedded server if needed)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from mmsearch.db.engine import resolve_dsn

    dsn = resolve_dsn()
    if role != "owner":
        params = conninfo_to_dict(dsn)
        params["user"] = f"mmsearch_{role}"
        params.pop("password", None)
        dsn = _as_uri(params) if dsn.startswith("postgres") else make_conninfo(**params)
    click.echo(dsn)


@db_group.command("stop")
def stop_command() -> None:
    """Stop the embedded server (no effect with MMSEARCH_DATABASE_URL)."""
    from mmsearch.db import embedded

    settings = Settings.load()
    if settings.database_url:
        raise click.ClickException("MMSEARCH_DATABASE_URL is set: that server is not ours to stop")
    stopped = embedded.stop(settings.pgdata)
    click.echo("stopped" if stopped else "not running")


def _as_uri(params: dict[str, str]) -> str:
    from urllib.parse import quote, urlencode

    host = params.pop("host", "")
    port = params.pop("port", "")
    user = quote(params.pop("user", ""))
    dbname = quote(params.pop("dbname", ""))
    netloc = f"{user}@" + ("" if host.startswith("/") else host) + (f":{port}" if port else "")
    query = {"host": host} if host.startswith("/") else {}
    query.update(params)
    return f"postgresql://{netloc}/{dbname}" + (f"?{urlencode(query)}" if query else "")


def _shown_url(dsn: str) -> str:
    from mmsearch.db.engine import redact

    return redact(dsn)


def _plain(value: object) -> object:
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value
