"""Connections: which server (DSN), a pool, and transactions that run as a role.

Every read for a user runs inside a transaction that has `SET LOCAL ROLE mmsearch_app`
and the caller's principals in `mmsearch.principals`, so PostgreSQL's row-level security,
not Python, decides what the caller sees.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Literal, TypeVar

from psycopg import sql

from mmsearch.config import Settings
from mmsearch.errors import DatabaseUnavailable, InvalidPrincipal, UserError

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
Role = Literal["mmsearch_app", "mmsearch_ingest"]
#: how long schema work waits for a lock before it backs off and lets queued queries run
DDL_LOCK_TIMEOUT_MS = 1000
DDL_ATTEMPTS = 30
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

    def retrying(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run schema work as the owner, waiting at most a second at a time for its locks.

        DDL (dropping a space's column) needs ACCESS EXCLUSIVE on `segment`; while it waits
        behind a long transaction every new query queues behind it. So it gives up after
        `DDL_LOCK_TIMEOUT_MS`, lets the queue drain, and tries again.
        """
        import psycopg

        for attempt in range(DDL_ATTEMPTS):
            try:
                with self.transaction() as conn:
                    conn.execute(
                        "SELECT set_config('lock_timeout', %s, true)", (f"{DDL_LOCK_TIMEOUT_MS}ms",)
                    )
                    return work(conn)
            except psycopg.errors.LockNotAvailable:
                time.sleep(min(0.05 * 2**attempt, 2.0))
        raise UserError(
            "schema change gave up: a long transaction keeps a lock on the tables"
            " (see pg_stat_activity); try again when it ends"
        )


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]+@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))
