"""Every search mode through a Citus coordinator, against one server holding the same rows.

The permissions test's synthetic world (records with random ACLs, tags and metadata in three
collections, segments of made-up words with vectors near real phrase embeddings) is written
to a database on the local cluster and to one on the embedded single server. In exact mode
(`vector_path="exact"`) every search must return the same hits, scores included, on both;
HNSW mode's recall@10 against exact is measured per shard merge; and the permission oracle's
random loop (the Python API, analysts' SQL functions, the service login's raw SQL, BI's
views) must find no row outside any caller's ACL through the coordinator.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.db import schema
from mmsearch.errors import UserError
from tests.citus.clients import text_client
from tests.test_permissions_random import (
    FILTERS,
    PHRASES,
    VOCAB,
    World,
    populate,
    random_principals,
    run_loop,
)

pytestmark = [pytest.mark.citus, pytest.mark.model]

RECORDS, SEED = 600, 1616


@pytest.fixture(scope="module")
def pair(dsn: str, citus_dsn: str, test_home: Path) -> Iterator[list[tuple[Client, World]]]:
    """(client, world) on the single server, then on the cluster: the same rows in the
    same order."""
    schema.upgrade(citus_dsn)
    clients = [text_client(dsn, test_home), text_client(citus_dsn, test_home)]
    phrases = np.asarray(clients[0].embedder("text").encode_texts(PHRASES, query=True))
    yield [(c, populate(c.db, phrases, n_records=RECORDS, seed=SEED)) for c in clients]
    for client in clients:
        client.close()


def hits(client: Client, query: str | int, **options: Any) -> list[tuple[str, str, float]]:
    return [(h.uri, h.kind, round(h.score, 6)) for h in client.search(query, **options)]


def random_request(rng: random.Random) -> tuple[str, dict[str, Any]]:
    mode = rng.choice(["hybrid", "vector", "keyword"])
    query = rng.choice(PHRASES) if mode == "vector" else rng.choice(VOCAB)
    if mode == "hybrid":
        query = f"{query} {rng.choice(PHRASES)}"
    options: dict[str, Any] = {
        "mode": mode,
        "principals": random_principals(rng),
        "k": rng.choice([5, 10, 30]),
        "segments": rng.random() < 0.3,
    }
    if rng.random() < 0.6:
        options["filter"] = rng.choice(FILTERS)[0]
    return query, options


def test_exact_searches_equal_one_server(pair: list[tuple[Client, World]]) -> None:
    (single, world), (citus, citus_world) = pair
    assert len(citus_world.records) == len(world.records) == RECORDS
    rng = random.Random(SEED)
    for _ in range(40):
        query, options = random_request(rng)
        want = hits(single, query, vector_path="exact", **options)
        assert hits(citus, query, vector_path="exact", **options) == want, (query, options)


def test_more_like_a_segment_equals_one_server(pair: list[tuple[Client, World]]) -> None:
    (single, world), (citus, citus_world) = pair
    by_order = [sorted(w.segment_record) for w in (world, citus_world)]
    for i in random.Random(5).sample(range(len(by_order[0])), 8):
        options = {"principals": ["public", "group:g01", "user:u03"], "k": 10,
                   "vector_path": "exact"}  # fmt: skip
        try:
            want = hits(single, by_order[0][i], **options)
        except UserError:  # not visible to these principals: "not found" on both
            with pytest.raises(UserError, match="not found"):
                hits(citus, by_order[1][i], **options)
            continue
        assert hits(citus, by_order[1][i], **options) == want


def test_hnsw_recall_through_the_coordinator(pair: list[tuple[Client, World]]) -> None:
    """Per-shard HNSW walks merged on the coordinator find what exact ranking finds."""
    citus = pair[1][0]
    rng = random.Random(3)
    recalls = []
    for phrase in PHRASES:
        principals = random_principals(rng)
        options = {"mode": "vector", "principals": principals, "k": 10, "segments": True}
        exact = {h[0] for h in hits(citus, phrase, vector_path="exact", **options)}
        walked = {h[0] for h in hits(citus, phrase, vector_path="hnsw", **options)}
        recalls.append(len(exact & walked) / max(len(exact), 1))
    print(f"\ncitus hnsw recall@10 vs exact: mean {np.mean(recalls):.3f} min {min(recalls):.2f}")
    assert np.mean(recalls) >= 0.9


def test_random_searches_never_leak_through_the_coordinator(
    pair: list[tuple[Client, World]], citus_dsn: str
) -> None:
    citus, world = pair[1]
    tally = run_loop(citus, citus_dsn, world, searches=150, seed=SEED)
    print(f"\ncitus permissions: {tally.searches} searches, {tally.rows} rows,"
          f" {tally.exact_checks} exact checks, by surface {tally.by_surface}")  # fmt: skip
    assert tally.leaks == 0
    assert tally.exact_checks > 0 and len(tally.by_surface) >= 6
