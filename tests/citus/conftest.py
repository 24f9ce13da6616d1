"""Fixtures of the `citus` tests: a local cluster (coordinator + 2 workers) per session.

The cluster runs the Citus build installed into this venv's embedded PostgreSQL (`make citus`
builds it from the vendored source, once, cached). Without it the tests skip on a developer
machine and fail under CI=1, where the build is part of the job.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch.cluster import build
from mmsearch.cluster.local import LocalCluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each module here is one scenario on one cluster database and its tests are its steps
    (ingest, then re-ingest, then acl changes...): random ordering (pytest-randomly, which
    reorders before this hook runs) may move the modules, but the steps keep file order."""
    here = Path(__file__).parent
    slots: dict[Path, list[int]] = {}
    for index, item in enumerate(items):
        if item.path.is_relative_to(here):
            slots.setdefault(item.path, []).append(index)
    for positions in slots.values():
        steps = sorted((items[i] for i in positions), key=lambda item: item.location[1] or 0)
        for index, step in zip(positions, steps, strict=True):
            items[index] = step


@pytest.fixture(scope="session")
def citus_built() -> None:
    """Citus is installed in this venv's PostgreSQL (skip without it; under CI a skip fails)."""
    if not build.is_installed():
        pytest.skip("Citus is not built for this venv's PostgreSQL: run `make citus`")


@pytest.fixture(scope="session")
def citus_cluster(citus_built: None) -> Iterator[LocalCluster]:
    root = Path(tempfile.mkdtemp(prefix="mmst-citus-", dir="/tmp"))
    cluster = LocalCluster(root, workers=2)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def citus_dsn(citus_cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """The owner's DSN on the coordinator, in a fresh database private to the test module."""
    label = request.module.__name__.rsplit(".", 1)[-1]
    database = f"mmst_{label}_{uuid.uuid4().hex[:8]}".lower()[:60]
    dsn = citus_cluster.add_database(database)
    yield dsn
    citus_cluster.drop_database(database)
