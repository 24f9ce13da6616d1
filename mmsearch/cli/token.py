"""`mmsearch token add|list|remove`: API tokens of the HTTP service (owner only)."""

from __future__ import annotations

import json

import click


@click.group("token")
def token_group() -> None:
    """API tokens for `mmsearch serve`: each one searches as its principals."""


@token_group.command("add")
@click.argument("name")
@click.option(
    "--principal",
    "principals",
    multiple=True,
    required=True,
    help="Repeatable: public, user:<id> or group:<id>.",
)
def add_command(name: str, principals: tuple[str, ...]) -> None:
    """Create a token; it is printed once, as the last line (only its hash is stored)."""
    from mmsearch.api.tokens import add_token
    from mmsearch.client import Client

    with Client.connect() as client, client.db.transaction() as conn:
        token = add_token(conn, name, list(principals))
    click.echo(f"token {name} for {', '.join(sorted(set(principals)))} (shown once):")
    click.echo(token)


@token_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json: bool) -> None:
    """Names, principals, creation and last use (tokens themselves are not stored)."""
    from mmsearch.api.tokens import list_tokens
    from mmsearch.client import Client

    with Client.connect() as client, client.db.transaction() as conn:
        tokens = list_tokens(conn)
    for info in tokens:
        used = info.last_used_at.isoformat(timespec="seconds") if info.last_used_at else None
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "name": info.name,
                        "principals": info.principals,
                        "created_at": info.created_at.isoformat(timespec="seconds"),
                        "last_used_at": used,
                    }
                )
            )
        else:
            click.echo(
                f"{info.name}\t{','.join(info.principals)}\t"
                f"created {info.created_at:%Y-%m-%d %H:%M}\tlast used {used or 'never'}"
            )


@token_group.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Revoke a token at once (the next request with it gets 401)."""
    from mmsearch.api.tokens import remove_token
    from mmsearch.client import Client

    with Client.connect() as client, client.db.transaction() as conn:
        remove_token(conn, name)
    click.echo(f"removed {name}")
