"""docker/citus: the compose file read as data, and its cluster-init.sh run for real.

No Docker engine runs here, so the script that sets the containers' cluster up runs
against the local cluster's nodes instead (plain databases on each node, nothing registered
yet), with the embedded PostgreSQL's psql.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from mmsearch.cluster import build
from mmsearch.cluster.local import HOST, OWNER, LocalCluster

pytestmark = pytest.mark.citus

CITUS_DIR = Path(__file__).resolve().parents[2] / "docker" / "citus"


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    return yaml.safe_load((CITUS_DIR / "compose.yaml").read_text())


def test_compose_nodes_preload_citus_with_scram(compose: dict) -> None:
    nodes = {name: compose["services"][name] for name in ("coordinator", "worker1", "worker2")}
    for node in nodes.values():
        assert node["build"] == {"context": ".", "dockerfile": "Dockerfile"}
        assert "shared_preload_libraries=citus" in node["command"]
        assert node["environment"]["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    volumes = [v.split(":")[0] for node in nodes.values() for v in node["volumes"]]
    assert len(set(volumes)) == 3  # one data volume per node
    assert [p.startswith("127.0.0.1:") for p in nodes["coordinator"]["ports"]] == [True]
    assert "ports" not in nodes["worker1"] and "ports" not in nodes["worker2"]


def test_compose_app_waits_for_the_registered_cluster(compose: dict) -> None:
    services = compose["services"]
    init, app = services["cluster-init"], services["app"]
    assert set(init["depends_on"]) == {"coordinator", "worker1", "worker2"}
    assert {d["condition"] for d in init["depends_on"].values()} == {"service_healthy"}
    assert app["depends_on"]["cluster-init"]["condition"] == "service_completed_successfully"
    assert "@coordinator:5432/mmsearch" in app["environment"]["MMSEARCH_DATABASE_URL"]
    workers = init["environment"]["MMSEARCH_WORKERS"].split()
    assert workers == ["worker1:5432", "worker2:5432"]


@pytest.fixture
def bare_database(citus_cluster: LocalCluster) -> Iterator[str]:
    """A database on every node with nothing in it: what a fresh container holds."""
    name = f"mmst_bare_{uuid.uuid4().hex[:8]}"
    for node in citus_cluster.nodes():
        with psycopg.connect(citus_cluster.dsn(node, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    citus_cluster.drop_database(name)


def run_cluster_init(cluster: LocalCluster, database: str) -> subprocess.CompletedProcess:
    coordinator, *workers = cluster.nodes()
    env = {
        **os.environ,
        "PATH": f"{build.embedded_pg().bindir}:{os.environ['PATH']}",
        "PGUSER": OWNER,
        "PGPASSWORD": cluster.password(),
        "PGDATABASE": database,
        "MMSEARCH_COORDINATOR": f"{HOST}:{coordinator.port}",
        "MMSEARCH_WORKERS": " ".join(f"{HOST}:{w.port}" for w in workers),
    }
    return subprocess.run(
        ["sh", str(CITUS_DIR / "cluster-init.sh")], env=env, capture_output=True, text=True
    )


def test_cluster_init_registers_the_workers_and_is_idempotent(
    citus_cluster: LocalCluster, bare_database: str
) -> None:
    for _ in range(2):
        result = run_cluster_init(citus_cluster, bare_database)
        assert result.returncode == 0, result.stderr
    with psycopg.connect(citus_cluster.dsn(database=bare_database)) as conn:
        workers = conn.execute(
            "SELECT nodeport FROM pg_dist_node WHERE shouldhaveshards ORDER BY nodeport"
        ).fetchall()
        health = conn.execute(
            "SELECT bool_and(result), count(*) FROM citus_check_cluster_node_health()"
        ).fetchone()
    assert sorted(port for (port,) in workers) == sorted(n.port for n in citus_cluster.nodes()[1:])
    assert health == (True, 9)  # every node reaches every node, scram included
