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
    from mmsearch.db.logins import apply_limits

    with Client.connect() as client:
        apply_limits(client.db.dsn)
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
    """The database: its URL, TCP access, and stopping the embedded server."""


@db_group.command("url")
@click.option(
    "--role",
    type=click.Choice(["owner", "app", "analyst", "bi"]),
    default="owner",
    help="owner (the default), or app: the application's service login (RLS applies).",
)
def url_command(role: str) -> None:
    """Print a DSN, password included, for psql or an ORM (starts the embedded server)."""
    from mmsearch.db.credentials import CredentialStore
    from mmsearch.db.engine import resolve_dsn
    from mmsearch.db.logins import app_logins

    if role in ("analyst", "bi"):
        raise click.ClickException(
            f"analysts and BI tools get their own logins: mmsearch user add NAME --role {role}"
        )
    settings = Settings.load()
    dsn = resolve_dsn(settings)
    if role == "app":
        dsn = app_logins(dsn, CredentialStore.in_home(settings.home)).service
    click.echo(dsn)


@db_group.command("listen")
@click.option("--port", type=click.IntRange(1, 65535), help="TCP port to listen on.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (e.g. 0.0.0.0 for every interface: put TLS in front of it).",
)
@click.option("--off", is_flag=True, help="Stop listening on TCP (the socket stays).")
def listen_command(port: int | None, host: str, off: bool) -> None:
    """Let BI tools connect to the embedded server over TCP (scram-sha-256 logins only).

    The server restarts; the setting survives later restarts. Each tool gets its own
    login: `mmsearch user add NAME --role bi`.
    """
    from mmsearch.db import embedded

    settings = Settings.load()
    if settings.database_url:
        raise click.ClickException("MMSEARCH_DATABASE_URL is set: that server is not ours")
    if off == (port is not None):
        raise click.ClickException("give either --port N or --off")
    embedded.listen(settings.pgdata, None if off else host, port)
    address = embedded.tcp_address(settings.pgdata)
    click.echo("listening on the socket only" if address is None else
               f"listening on {host}:{port} (scram-sha-256 only)")  # fmt: skip


@db_group.command("stop")
def stop_command() -> None:
    """Stop the embedded server (no effect with MMSEARCH_DATABASE_URL)."""
    from mmsearch.db import embedded

    settings = Settings.load()
    if settings.database_url:
        raise click.ClickException("MMSEARCH_DATABASE_URL is set: that server is not ours to stop")
    stopped = embedded.stop(settings.pgdata)
    click.echo("stopped" if stopped else "not running")


def _shown_url(dsn: str) -> str:
    from mmsearch.db.engine import redact

    return redact(dsn)


def _plain(value: object) -> object:
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value
