"""Connections: which server (DSN), a pool, and transactions that run as a role.

Every read for a user runs inside a transaction that has `SET LOCAL ROLE mmsearch_app`
and the caller's principals in `mmsearch.principals`, so PostgreSQL's row-level security,
not Python, decides what the caller sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Literal

from psycopg import sql

from mmsearch.config import Settings
from mmsearch.errors import DatabaseUnavailable, InvalidPrincipal

if TYPE_CHECKING:
    import psycopg

Role = Literal["mmsearch_app", "mmsearch_ingest"]
PRINCIPAL = re.compile(r"(public|(user|group):[A-Za-z0-9][A-Za-z0-9._@+\-]{0,199})")


def resolve_dsn(settings: Settings | None = None) -> str:
    """`MMSEARCH_DATABASE_URL` (or the config file) if set, else the embedded server."""
    from mmsearch.db import embedded

    settings = settings or Settings.load()
    if settings.database_url:
        return settings.database_url
    return embedded.ensure_running(settings.pgdata)


def validate_principals(principals: Iterable[str]) -> list[str]:
    """Refuse anything but `public`, `user:<id>`, `group:<id>` (no lists, wildcards, SQL)."""
    checked = []
    for principal in principals:
        if not isinstance(principal, str) or not PRINCIPAL.fullmatch(principal):
            raise InvalidPrincipal(
                f"invalid principal {principal!r}: use public, user:<id> or group:<id>"
            )
        checked.append(principal)
    return checked


def configure_connection(conn: psycopg.Connection) -> None:
    """Teach psycopg the pgvector types (binary COPY and numpy parameters need them)."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.commit()


class Database:
    """A connection pool on one DSN, with role-scoped transactions."""

    def __init__(self, dsn: str, *, max_size: int = 8) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        try:
            self.pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=max_size,
                configure=configure_connection,
                open=True,
                timeout=30,
            )
            self.pool.wait(timeout=30)
        except (psycopg.OperationalError, TimeoutError) as exc:
            raise DatabaseUnavailable(f"cannot connect to {redact(dsn)}: {exc}") from exc

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def transaction(
        self, *, role: Role | None = None, principals: Iterable[str] = ()
    ) -> Iterator[psycopg.Connection]:
        """A transaction as `role` (None: the connecting owner, for schema work)."""
        checked = validate_principals(principals)
        with self.pool.connection() as conn, conn.transaction():
            if role is not None:
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            conn.execute(
                "SELECT set_config('mmsearch.principals', %s, true)", (json.dumps(checked),)
            )
            yield conn

    def reader(self, principals: Iterable[str] = ()) -> AbstractContextManager[psycopg.Connection]:
        """Read as the app role with the caller's principals (RLS applies)."""
        return self.transaction(role="mmsearch_app", principals=principals)

    def writer(self) -> AbstractContextManager[psycopg.Connection]:
        """Write as the ingest role (sees and writes every row)."""
        return self.transaction(role="mmsearch_ingest")


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]+@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))
