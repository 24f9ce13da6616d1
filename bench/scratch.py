"""A scratch database for an evaluation or a benchmark, gone when the run ends.

Runs must not touch the user's data or leave collections behind: with no DSN a throwaway
embedded server starts under a temporary directory; with a DSN a scratch database is
created on that server and dropped afterwards.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from mmsearch.db import embedded


@contextmanager
def server(dsn: str | None) -> Iterator[str]:
    """A maintenance DSN: the given server, or a throwaway embedded one."""
    if dsn:
        yield dsn
        return
    with tempfile.TemporaryDirectory(prefix="mmsearch-scratch-", dir="/tmp") as tmp:
        pgdata = Path(tmp) / "pg"
        try:
            yield embedded.ensure_running(pgdata)
        finally:
            embedded.remove(pgdata)  # as root the data lives outside tmp


@contextmanager
def scratch_database(maintenance: str, prefix: str = "mmsearch_scratch") -> Iterator[str]:
    """Create a uniquely named database on the server; drop it (forcibly) at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(maintenance)
    params["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**params)
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def scratch_dsn(dsn: str | None, prefix: str = "mmsearch_scratch") -> Iterator[str]:
    """Both at once: a DSN of an empty database that disappears with the block."""
    with server(dsn) as maintenance, scratch_database(maintenance, prefix) as scratch:
        yield scratch
