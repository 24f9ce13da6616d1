"""Connections: which server (DSN), and one pool per login.

Reads for a user run as the application's service login (a member of the app role, never a
superuser, nothing to `RESET ROLE` back to) in a transaction that carries the caller's
principals in the transaction-local setting `mmsearch.principals`, so PostgreSQL's row-level
security, not Python, decides what the caller sees. Writes run as the ingest login; schema
work runs as the owner, the DSN given (`mmsearch.db.logins`).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from psycopg import sql

from mmsearch.config import Settings
from mmsearch.db.credentials import CredentialStore
from mmsearch.errors import DatabaseUnavailable, InvalidPrincipal, UserError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

T = TypeVar("T")
PRINCIPAL = re.compile(r"(public|(user|group):[A-Za-z0-9][A-Za-z0-9._@+\-]{0,199})")
#: how long schema work waits for a lock before it backs off and lets queued queries run
DDL_LOCK_TIMEOUT_MS = 1000
DDL_ATTEMPTS = 30


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
    """Pools on one database: reads as the service login, writes as the ingest login, schema
    work as the owner. Given another login's DSN (e.g. the service login's own, or a
    person's), it reads as that login and cannot write."""

    def __init__(
        self, dsn: str, *, max_size: int = 8, credentials: CredentialStore | None = None
    ) -> None:
        import psycopg

        from mmsearch.db.logins import app_logins

        self.dsn = dsn
        self._max_size = max_size
        store = credentials or CredentialStore.in_home(Settings.load().home)
        try:
            logins = app_logins(dsn, store)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to {redact(dsn)}: {exc}") from exc
        self.roles = logins.roles
        #: the service login's DSN: for an ORM or raw SQL with the app's rights (RLS applies)
        self.reader_dsn = logins.service
        self.writer_dsn = logins.writer
        self._pools: dict[str, ConnectionPool] = {}
        self._lock = threading.Lock()
        self.reader_pool = self._pool("reader", self.reader_dsn, min_size=1)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A transaction as the owner, for schema work (RLS does not apply to a superuser)."""
        with self._owner_pool().connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def reader(self, principals: Iterable[str] = ()) -> Iterator[psycopg.Connection]:
        """Read as the service login with the caller's principals (RLS applies)."""
        checked = validate_principals(principals)
        with self.reader_pool.connection() as conn, conn.transaction():
            # SET LOCAL rather than set_config(): Citus forwards SET LOCAL to the shards
            # (citus.propagate_set_commands), never set_config
            conn.execute(
                sql.SQL("SET LOCAL mmsearch.principals = {}").format(
                    sql.Literal(json.dumps(checked))
                )
            )
            yield conn

    @contextmanager
    def writer(self) -> Iterator[psycopg.Connection]:
        """Write as the ingest login (sees and writes every row)."""
        if self.writer_dsn is None:
            raise UserError("this login may not write: connect with the owner's DSN")
        pool = self._pool("writer", self.writer_dsn, min_size=0)
        with pool.connection() as conn, conn.transaction():
            yield conn

    def retrying(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run schema work as the owner, waiting at most a second at a time for its locks.

        DDL (a space's column and index, added or dropped) needs ACCESS EXCLUSIVE on
        `segment`; while it waits behind a long transaction every new query queues behind
        it. So it gives up after `DDL_LOCK_TIMEOUT_MS`, lets the queue drain, and tries again.
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

    def _owner_pool(self) -> ConnectionPool:
        if self.writer_dsn is None:
            raise UserError("this login may not change the schema: connect with the owner's DSN")
        return self._pool("owner", self.dsn, min_size=0, max_size=2)

    def _pool(
        self, name: str, dsn: str, *, min_size: int, max_size: int | None = None
    ) -> ConnectionPool:
        import psycopg
        from psycopg_pool import ConnectionPool

        with self._lock:
            if name not in self._pools:
                pool = ConnectionPool(
                    dsn, min_size=min_size, max_size=max_size or self._max_size,
                    configure=configure_connection, open=True, timeout=30,
                )  # fmt: skip
                try:
                    if min_size:
                        pool.wait(timeout=30)
                except (psycopg.OperationalError, TimeoutError) as exc:
                    pool.close()
                    raise DatabaseUnavailable(f"cannot connect to {redact(dsn)}: {exc}") from exc
                self._pools[name] = pool
            return self._pools[name]


def redact(dsn: str) -> str:
    """The DSN without its password, for messages: in a URL's user part or query, and as a
    libpq keyword (`password = 'two words'` is valid there, quotes and spaces included)."""
    keyword = re.sub(r"password\s*=\s*(?:'(?:[^'\\]|\\.)*'|\S+)", "password=***", dsn)
    return re.sub(r"(://[^:/@]*:)[^@]+@", r"\1***@", keyword)
