"""`mmsearch user add|list|remove|principals|password`: one login per person.

A person's login reads as `analyst` (SQL over tables, views and search functions) or `bi`
(metadata views only) and sees the rows its principals may see; the principals are the
owner's to set, here, and nothing the person runs can widen them.
"""

from __future__ import annotations

import json

import click

from mmsearch.config import Settings
from mmsearch.db.roles import PERSON_ROLES


def _owner_dsn() -> str:
    """The owner's DSN; for the embedded server listening on TCP, its TCP address."""
    from mmsearch.db import embedded
    from mmsearch.db.engine import resolve_dsn

    settings = Settings.load()
    dsn = resolve_dsn(settings)
    if not settings.database_url and (address := embedded.tcp_address(settings.pgdata)):
        from psycopg.conninfo import conninfo_to_dict

        from mmsearch.db.logins import as_uri

        dsn = as_uri({**conninfo_to_dict(dsn), "host": address[0], "port": str(address[1])})
    return dsn


@click.group("user")
def user_group() -> None:
    """Logins for people and BI tools, each bound to its principals."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(PERSON_ROLES), required=True)
@click.option("--principal", "principals", multiple=True, help="user:ID, group:ID (repeatable).")
def add_command(name: str, role: str, principals: tuple[str, ...]) -> None:
    """Create a login with a generated password; its DSN is the last line printed."""
    from mmsearch.db.logins import add_person

    dsn = add_person(_owner_dsn(), name, role, principals)
    shown = ", ".join(["public", *principals])
    click.echo(f"user {name}: {role}, sees as {shown}; the password is shown once:")
    click.echo(dsn)


@user_group.command("password")
@click.argument("name")
def password_command(name: str) -> None:
    """Give a login a new generated password; its DSN is the last line printed."""
    from mmsearch.db.logins import reset_password

    click.echo(reset_password(_owner_dsn(), name))


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_command(as_json: bool) -> None:
    """The people's logins, roles and principals."""
    from mmsearch.db.logins import list_people

    for person in list_people(_owner_dsn()):
        if as_json:
            click.echo(json.dumps(person.__dict__))
        else:
            shown = " ".join(person.principals) or "(public only)"
            click.echo(f"{person.name}\t{person.role}\t{person.login}\t{shown}")


@user_group.command("remove")
@click.argument("name")
def remove_command(name: str) -> None:
    """Drop a login and end its sessions."""
    from mmsearch.db.logins import remove_person

    remove_person(_owner_dsn(), name)
    click.echo(f"removed {name}")


@user_group.command("principals")
@click.argument("name")
@click.argument("principals", nargs=-1)
def principals_command(name: str, principals: tuple[str, ...]) -> None:
    """Replace a login's principals (none: `public` only); effective at its next query."""
    from mmsearch.db.logins import set_principals

    now = set_principals(_owner_dsn(), name, principals)
    click.echo(f"user {name} sees as {' '.join(['public', *now])}")
