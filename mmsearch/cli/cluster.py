"""`mmsearch db cluster up|down|status`: a local Citus cluster for development and tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mmsearch.config import Settings

if TYPE_CHECKING:
    from mmsearch.cluster.local import LocalCluster


def _cluster(root: str | None, workers: int = 2) -> LocalCluster:
    from mmsearch.cluster.local import LocalCluster  # psycopg and friends only when used

    return LocalCluster(Path(root) if root else default_root(), workers)


def default_root() -> Path:
    """$MMSEARCH_HOME/cluster; as root, /var/tmp/mmsearch-cluster.

    As root the servers run as another user, who must be able to reach the folder, and a
    home folder is (rightly) closed to other users.
    """
    if os.geteuid() == 0:
        return Path("/var/tmp/mmsearch-cluster")
    return Settings.load().home / "cluster"


_dir_option = click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False),
    help="Folder of the cluster's nodes (default: $MMSEARCH_HOME/cluster; as root,"
    " /var/tmp/mmsearch-cluster).",
)


@click.group("cluster")
def cluster_group() -> None:
    """A local Citus cluster (coordinator + workers on 127.0.0.1) built from vendored source."""


@cluster_group.command("up")
@_dir_option
@click.option("--workers", type=click.IntRange(1, 8), default=2, show_default=True)
def up_command(root: str | None, workers: int) -> None:
    """Build Citus if needed, start the nodes; the last line is the coordinator's DSN."""
    cluster = _cluster(root, workers)
    dsn = cluster.up()
    for node in cluster.nodes():
        click.echo(f"{node.name:<12} 127.0.0.1:{node.port}  {node.datadir}")
    click.echo(f"credentials  {cluster.credentials_file} (0600)")
    click.echo(dsn)


@cluster_group.command("down")
@_dir_option
@click.option("--purge", is_flag=True, help="Also delete the nodes' data.")
def down_command(root: str | None, purge: bool) -> None:
    """Stop the nodes (and with --purge delete them)."""
    stopped = _cluster(root).down(purge=purge)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else "not running")


@cluster_group.command("status")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status_command(root: str | None, as_json: bool) -> None:
    """Which nodes run, on which ports, and the workers the coordinator has registered."""
    status = _cluster(root).status()
    if as_json:
        click.echo(json.dumps(status))
        return
    if not status["nodes"]:
        click.echo(f"no cluster in {status['root']}")
        return
    for node in status["nodes"]:
        state = "running" if node["running"] else "stopped"
        click.echo(f"{node['name']:<12} 127.0.0.1:{node['port']}  {state}")
    if "active_workers" in status:
        click.echo(f"workers      {', '.join(status['active_workers']) or 'none'}")
