"""`mmsearch db cluster up|status|down`: a cluster a developer can start, reach and stop.

Its own cluster (not the session's), in a temporary folder, through the real CLI.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

pytestmark = pytest.mark.citus


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmsearch", "db", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cluster_dir(citus_built: None) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="mmst-cli-cluster-", dir="/tmp"))
    yield root
    cli("down", "--dir", str(root), "--purge")
    shutil.rmtree(root, ignore_errors=True)


def test_up_prints_a_working_dsn_keeps_secrets_private_then_status_and_down(
    cluster_dir: Path,
) -> None:
    result = cli("up", "--dir", str(cluster_dir))
    assert result.returncode == 0, result.stderr
    dsn = result.stdout.strip().splitlines()[-1]
    with psycopg.connect(dsn) as conn:
        workers = conn.execute("SELECT count(*) FROM citus_get_active_worker_nodes()").fetchone()
        assert workers == (2,)
    assert stat.S_IMODE((cluster_dir / "credentials.json").stat().st_mode) == 0o600
    wrong = conninfo_to_dict(dsn) | {"password": "not-the-password"}
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(make_conninfo(**wrong))
    assert cli("up", "--dir", str(cluster_dir)).stdout.strip().splitlines()[-1] == dsn

    # then (in one test: a random order must not run `status` before `up`)
    status = json.loads(cli("status", "--dir", str(cluster_dir), "--json").stdout)
    assert [n["running"] for n in status["nodes"]] == [True, True, True]
    assert len(status["active_workers"]) == 2
    down = cli("down", "--dir", str(cluster_dir))
    assert down.returncode == 0 and down.stdout.startswith("stopped coordinator")
    status = json.loads(cli("status", "--dir", str(cluster_dir), "--json").stdout)
    assert [n["running"] for n in status["nodes"]] == [False, False, False]
