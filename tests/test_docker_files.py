"""The container files, checked without a Docker engine where possible.

compose.yaml and the Dockerfile are read as data; the entrypoint script runs for real
against a throwaway PostgreSQL, with a stub `mmsearch` first on PATH that records its
arguments, so its control flow (wait, init, exec) is what is under test.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

DOCKER = Path(__file__).resolve().parents[1] / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
STUB = """#!/bin/sh
echo "$*" >> "$MMSEARCH_STUB_LOG"
if [ "$1" = init ] && [ -n "$MMSEARCH_STUB_FAIL_INIT" ]; then exit 3; fi
"""


# --- compose.yaml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_db_is_pgvector_with_healthcheck(compose: dict) -> None:
    db = compose["services"]["db"]

    assert db["image"] == "pgvector/pgvector:pg17"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])


def test_compose_app_points_at_db_once_healthy(compose: dict) -> None:
    app, db = compose["services"]["app"], compose["services"]["db"]

    assert (DOCKER / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == (
        DOCKER / "Dockerfile"
    )
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    url = app["environment"]["MMSEARCH_DATABASE_URL"]
    parts = urlsplit(url)
    # The URL must name what the db service creates, or init fails at first start.
    assert parts.username == db["environment"]["POSTGRES_USER"]
    assert parts.path.lstrip("/") == db["environment"]["POSTGRES_DB"]
    assert (parts.hostname, parts.port) == ("db", 5432)


def test_compose_has_no_password_and_every_login_authenticates(compose: dict) -> None:
    """Finding 13: the owner's password was `mmsearch`, in the file, and the docs handed
    that superuser DSN to BI tools. Now it comes from the environment (required), every
    connection uses scram-sha-256, and BI tools get logins of their own."""
    app, db = compose["services"]["app"], compose["services"]["db"]
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${MMSEARCH_DB_PASSWORD:?")
    assert urlsplit(app["environment"]["MMSEARCH_DATABASE_URL"]).password == (
        "${MMSEARCH_DB_PASSWORD}"
    )
    assert "--auth-host=scram-sha-256" in db["environment"]["POSTGRES_INITDB_ARGS"]
    assert "--auth-local=scram-sha-256" in db["environment"]["POSTGRES_INITDB_ARGS"]
    assert "POSTGRES_HOST_AUTH_METHOD" not in db["environment"]  # never trust
    readme = (DOCKER / "README.md").read_text()
    assert "mmsearch:mmsearch@" not in readme
    assert "user add" in readme and "--role bi" in readme
    assert app["environment"]["MMSEARCH_HOME"] == "/data/home"  # the logins' passwords persist


def test_compose_volumes_for_pg_data_media_and_home(compose: dict) -> None:
    mounts = [v.split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])]
    assert set(compose["volumes"]) == {"pgdata", "media", "home"}
    assert set(mounts) == {"pgdata", "media", "home"}
    assert "media:/data/media" in compose["services"]["app"]["volumes"]
    assert "home:/data/home" in compose["services"]["app"]["volumes"]


# --- Dockerfile ---------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        logical.append(current)
        current = ""
    return [(i.upper(), args.strip()) for i, _, args in (x.partition(" ") for x in logical)]


def test_dockerfile_base_image() -> None:
    assert instructions()[0] == ("FROM", "python:3.11-slim")


def test_dockerfile_installs_cpu_torch_before_the_package() -> None:
    runs = [args for op, args in instructions() if op == "RUN"]
    torch = [
        i
        for i, a in enumerate(runs)
        if "pip install torch==2.13.0" in a
        and "--index-url https://download.pytorch.org/whl/cpu" in a
    ]
    package = [i for i, a in enumerate(runs) if "pip install -e ." in a]
    assert torch and package
    assert torch[0] < package[0]


def test_dockerfile_entrypoint_is_the_script() -> None:
    ops = instructions()
    entrypoint = json.loads(next(args for op, args in ops if op == "ENTRYPOINT"))
    copies = [shlex.split(args) for op, args in ops if op == "COPY"]
    copied_to = {c[-1] for c in copies if "docker/entrypoint.sh" in c[:-1]}
    assert entrypoint[0] in copied_to
    assert os.access(ENTRYPOINT, os.X_OK)


# --- entrypoint.sh ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    """A PostgreSQL that answers: MMSEARCH_TEST_DSN, else a throwaway embedded server."""
    if os.environ.get("MMSEARCH_TEST_DSN"):
        yield os.environ["MMSEARCH_TEST_DSN"]
        return
    from mmsearch.db import embedded

    root = Path(tempfile.mkdtemp(prefix="mmpg-"))
    try:
        yield embedded.ensure_running(root / "pg")
    finally:
        embedded.remove(root / "pg")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    """A directory holding the stub `mmsearch`; its calls go to `<dir>/calls`."""
    (tmp_path / "mmsearch").write_text(STUB)
    (tmp_path / "mmsearch").chmod(0o755)
    return tmp_path


def entrypoint_env(stub: Path, **extra: str) -> dict[str, str]:
    """A clean environment: the stub first, then this interpreter (it has psycopg)."""
    path = os.pathsep.join([str(stub), str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    return {"PATH": path, "MMSEARCH_STUB_LOG": str(stub / "calls"), **extra}


def calls(stub: Path) -> list[str]:
    log = stub / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_entrypoint_inits_then_execs_the_command(stub: Path, dsn: str) -> None:
    command = ["sh", "-c", 'echo command >> "$MMSEARCH_STUB_LOG"; echo $$']
    proc = subprocess.Popen(
        ["bash", str(ENTRYPOINT), *command],
        env=entrypoint_env(stub, MMSEARCH_DATABASE_URL=dsn),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 0, err
    assert calls(stub) == ["init", "command"]
    # exec: the command took over the script's process instead of running as its child
    assert int(out) == proc.pid


def test_entrypoint_default_command_is_help(stub: Path, dsn: str) -> None:
    result = subprocess.run(
        ["bash", str(ENTRYPOINT)],
        env=entrypoint_env(stub, MMSEARCH_DATABASE_URL=dsn),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert calls(stub) == ["init", "--help"]


def test_entrypoint_stops_when_init_fails(stub: Path, dsn: str) -> None:
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "sh", "-c", 'echo command >> "$MMSEARCH_STUB_LOG"'],
        env=entrypoint_env(stub, MMSEARCH_DATABASE_URL=dsn, MMSEARCH_STUB_FAIL_INIT="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 3
    assert calls(stub) == ["init"]


def test_entrypoint_gives_up_on_a_silent_database(stub: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://mmsearch:s3cret-pw@127.0.0.1:{port}/mmsearch"

    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "true"],
        env=entrypoint_env(stub, MMSEARCH_DATABASE_URL=url, MMSEARCH_DB_WAIT_S="2"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert time.monotonic() - started < 20
    assert f"127.0.0.1:{port}/mmsearch did not accept connections within 2 s" in result.stderr
    assert "s3cret-pw" not in result.stderr
    assert calls(stub) == []


def test_entrypoint_requires_the_database_url(stub: Path) -> None:
    result = subprocess.run(
        ["bash", str(ENTRYPOINT), "true"],
        env=entrypoint_env(stub),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "MMSEARCH_DATABASE_URL is not set" in result.stderr
    assert calls(stub) == []


# --- with a Docker engine -----------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.ci_may_skip  # CI's machine runs no Docker engine
def test_compose_config_with_docker_engine() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on PATH")
    try:
        info = subprocess.run([docker, "info"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.skip("`docker info` did not answer within 30 s: no Docker engine reachable")
    if info.returncode != 0:
        pytest.skip(f"no Docker engine answers (`docker info` exited {info.returncode})")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the Docker Compose plugin (`docker compose`) is not installed")

    result = subprocess.run(
        [docker, "compose", "-f", str(DOCKER / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "MMSEARCH_DATABASE_URL" in result.stdout
