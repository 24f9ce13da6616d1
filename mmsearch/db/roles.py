"""The PostgreSQL roles of one mmsearch database, namespaced so two databases never share one.

Roles are cluster-wide, so each database gets its own, named `<prefix>.<kind>` where the
prefix is fixed when the schema is created (`mmsearch.install.role_prefix`: the database name
when it is a plain lower-case identifier of at most 32 characters, else a cleaned, shortened
name plus a hash of it). The prefix holds no `.`, so `<prefix>.` cannot name another
database's role, and a person's login `<prefix>.<name>` cannot collide with one either.

Group roles (NOLOGIN): `app` (searches; RLS applies), `ingest` (writes), `analyst`
(read-only SQL; RLS applies), `bi` (metadata views only), `views` (owns the metadata views,
RLS applies to it) and `search` (may own SECURITY DEFINER search functions: it reads every
row, so such a function must apply the ACL itself). Logins: `service` (the application's, the
only one whose per-request principals count), `writer` (ingestion) and one per person.

The idempotent SQL files name these roles as psql variables, `:"role_app"` (an identifier)
or `:'role_app'` (a literal); `substitute` fills them in, as `psql -v role_app=…` would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmsearch.errors import SchemaMissing, UserError

if TYPE_CHECKING:
    import psycopg

GROUPS = ("app", "ingest", "analyst", "bi", "views", "search")
LOGINS = ("service", "writer")
PERSON_ROLES = ("analyst", "bi")
#: names a person may not take: they are (or may become) the database's own roles
RESERVED = frozenset({*GROUPS, *LOGINS, "owner", "admin", "api", "public", "postgres"})
PERSON_NAME = re.compile(r"[a-z][a-z0-9_]{0,29}")
_VARIABLE = re.compile(r""":(["'])role_([a-z]+)\1""")


@dataclass(frozen=True)
class Roles:
    """Role names of one database, from its prefix."""

    prefix: str

    def name(self, kind: str) -> str:
        return f"{self.prefix}.{kind}"

    @property
    def app(self) -> str:
        return self.name("app")

    @property
    def ingest(self) -> str:
        return self.name("ingest")

    @property
    def analyst(self) -> str:
        return self.name("analyst")

    @property
    def bi(self) -> str:
        return self.name("bi")

    @property
    def service(self) -> str:
        return self.name("service")

    @property
    def writer(self) -> str:
        return self.name("writer")

    def person(self, name: str) -> str:
        """The login of a person, after checking the name."""
        if not isinstance(name, str) or not PERSON_NAME.fullmatch(name) or name in RESERVED:
            raise UserError(
                f"invalid user name {name!r}: use 1-30 lower-case letters, digits and '_',"
                f" starting with a letter, and none of {', '.join(sorted(RESERVED))}"
            )
        return self.name(name)

    def substitute(self, text: str) -> str:
        """Fill in `:"role_x"` (identifier) and `:'role_x'` (literal) in an SQL file."""

        def replace(match: re.Match[str]) -> str:
            quote, kind = match.groups()
            if kind not in GROUPS + LOGINS:
                raise ValueError(f"unknown role variable role_{kind}")
            return f"{quote}{self.name(kind)}{quote}"

        return _VARIABLE.sub(replace, text)


def read_roles(conn: psycopg.Connection) -> Roles:
    """The roles of the database `conn` is connected to (its schema must be installed)."""
    import psycopg

    try:
        row = conn.execute("SELECT role_prefix FROM mmsearch.install").fetchone()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        raise SchemaMissing("the database has no mmsearch schema: run `mmsearch init`") from None
    if row is None:
        raise SchemaMissing("mmsearch.install is empty: run `mmsearch init`")
    return Roles(row[0])
