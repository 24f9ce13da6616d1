"""Test fixtures: a real PostgreSQL per session, a fresh database per test module.

The server is the embedded one by default (in a temporary home, never the user's), any
server given by MMSEARCH_TEST_DSN, or a throwaway pgvector container when
MMSEARCH_TEST_BACKEND=docker and a Docker engine answers.

Under CI (`CI` set, as `.ci/run` and CI runners do) a skipped test is a failure: a runner
without espeak-ng, Chromium, Citus or a Debian media package must not stay green by
skipping what it cannot run. The few skips that are legitimate there carry
`@pytest.mark.ci_may_skip` (no Docker engine on CI's machine, say).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from mmsearch.client import Client
from mmsearch.config import Settings
from mmsearch.db import schema
from mmsearch.db.engine import Database

pytest_plugins = ["tests.apiserver"]  # the `api_server` fixture: a real `mmsearch serve`

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def in_ci() -> bool:
    """True on a CI runner (`CI=true`, `CI=1`), where a skip would hide a missing tool."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Under CI, turn a skip into a failure unless the test is marked `ci_may_skip`."""
    report = yield
    excused = hasattr(report, "wasxfail") or item.get_closest_marker("ci_may_skip") is not None
    if report.skipped and in_ci() and not excused:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where that is a failure: {reason}"
    return report


@pytest.fixture(scope="session")
def test_home() -> Iterator[Path]:
    """A throwaway MMSEARCH_HOME for the session; CLI subprocesses inherit it."""
    home = Path(tempfile.mkdtemp(prefix="mmst-", dir="/tmp"))
    previous = os.environ.get("MMSEARCH_HOME")
    os.environ["MMSEARCH_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("MMSEARCH_HOME", None)
    else:
        os.environ["MMSEARCH_HOME"] = previous


@pytest.fixture(scope="session")
def server_dsn(test_home: Path) -> Iterator[str]:
    """Maintenance DSN of the session's server (a database we may CREATE DATABASE from)."""
    backend = os.environ.get("MMSEARCH_TEST_BACKEND", "embedded")
    external = os.environ.get("MMSEARCH_TEST_DSN")
    if external:
        yield external
    elif backend == "docker":
        yield from _docker_server()
    else:
        from mmsearch.db import embedded

        pgdata = test_home / "pg"
        url = embedded.ensure_running(pgdata)
        yield url
        embedded.remove(pgdata)
        shutil.rmtree(test_home, ignore_errors=True)


def _docker_server() -> Iterator[str]:
    if (
        shutil.which("docker") is None
        or subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0
    ):
        pytest.skip("MMSEARCH_TEST_BACKEND=docker but no Docker engine answers here")
    postgres = pytest.importorskip(
        "testcontainers.postgres", reason="pip install '.[docker]' for the docker backend"
    )
    PostgresContainer = postgres.PostgresContainer

    with PostgresContainer("pgvector/pgvector:pg17", driver=None) as container:
        yield container.get_connection_url()


def new_database(server_dsn: str, label: str) -> str:
    """Create an empty database on the session's server and return its DSN."""
    name = f"mmst_{label}_{uuid.uuid4().hex[:8]}".lower()[:60]
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(server_dsn)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**params)


def drop_database(server_dsn: str, dsn: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def empty_dsn(server_dsn: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no schema, private to the test module."""
    dsn = new_database(server_dsn, request.module.__name__.rsplit(".", 1)[-1])
    yield dsn
    drop_database(server_dsn, dsn)


@pytest.fixture(scope="module")
def dsn(empty_dsn: str) -> str:
    """A database at schema head, private to the test module."""
    schema.upgrade(empty_dsn)
    return empty_dsn


@pytest.fixture(scope="module")
def db(dsn: str) -> Iterator[Database]:
    database = Database(dsn)
    yield database
    database.close()


@pytest.fixture(scope="module")
def client(db: Database, test_home: Path) -> Client:
    """A client on the module's database; models load once per process, whatever the client."""
    return Client(db, Settings.load(home=test_home, database_url=db.dsn))
