"""Top-k through a Citus coordinator: per-shard HNSW, merged, against one node's answer.

3,000 random 32-d vectors in a table hash-distributed over 4 shards on 2 workers, each shard
with its own HNSW index, and the same rows in a plain table on the coordinator (one node).
Ground truth is numpy over the same array. Also pins down how settings reach the shards:
only `SET LOCAL` with `citus.propagate_set_commands = 'local'` does; `set_config(…, true)`,
which mmsearch uses today, does not.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg import sql

pytestmark = pytest.mark.citus

ROWS, DIM, SHARDS, K, QUERIES = 3000, 32, 4, 10, 20
TOP_K = "SELECT id FROM {} ORDER BY embedding <-> %s LIMIT %s"


@pytest.fixture(scope="module")
def vectors(citus_dsn: str) -> np.ndarray:
    data = np.random.default_rng(16).standard_normal((ROWS, DIM)).astype(np.float32)
    with psycopg.connect(citus_dsn, autocommit=True) as conn:
        register_vector(conn)
        conn.execute(sql.SQL("SET citus.shard_count = {}").format(sql.Literal(SHARDS)))
        for table in map(sql.Identifier, ("item", "item_local")):
            conn.execute(
                sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, embedding vector({}))").format(
                    table, sql.Literal(DIM)
                )
            )
        conn.execute("SELECT create_distributed_table('item', 'id')")
        for table in map(sql.Identifier, ("item", "item_local")):
            copy = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(table)
            with conn.cursor() as cur, cur.copy(copy) as cp:
                cp.set_types(["int8", "vector"])
                for i, v in enumerate(data):
                    cp.write_row([i, v])
        conn.execute("CREATE INDEX item_hnsw ON item USING hnsw (embedding vector_l2_ops)")
        conn.execute("ANALYZE item")
    return data


@pytest.fixture
def conn(citus_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(citus_dsn) as connection:
        register_vector(connection)
        yield connection


def queries() -> np.ndarray:
    return np.random.default_rng(61).standard_normal((QUERIES, DIM)).astype(np.float32)


def exact_ids(vectors: np.ndarray, query: np.ndarray) -> list[int]:
    return np.argsort(np.linalg.norm(vectors - query, axis=1))[:K].tolist()


def top_k_sql(table: str) -> sql.Composed:
    return sql.SQL(TOP_K).format(sql.Identifier(table))


def top_k(conn: psycopg.Connection, table: str, query: np.ndarray, k: int = K) -> list[int]:
    return [row[0] for row in conn.execute(top_k_sql(table), (query, k))]


def test_every_shard_has_its_own_hnsw_index_on_both_workers(
    vectors: np.ndarray, conn: psycopg.Connection
) -> None:
    shards = conn.execute(
        "SELECT shardid, nodeport FROM pg_dist_shard JOIN pg_dist_shard_placement USING (shardid)"
        " WHERE logicalrelid = 'item'::regclass"
    ).fetchall()
    assert len(shards) == SHARDS
    assert len({port for _, port in shards}) == 2
    indexed = conn.execute(
        "SELECT result FROM run_command_on_shards('item', $$SELECT count(*) FROM pg_indexes"
        " WHERE tablename = '%s' AND indexdef LIKE '%%USING hnsw%%'$$)"
    ).fetchall()
    assert [row[0] for row in indexed] == ["1"] * SHARDS


def test_exact_top_k_through_the_coordinator_equals_one_node(
    vectors: np.ndarray, conn: psycopg.Connection
) -> None:
    """With index scans off on the shards, the merged top-k is the exact one, in order."""
    with conn.transaction():
        conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        conn.execute("SET LOCAL enable_indexscan = off")
        for query in queries():
            expected = exact_ids(vectors, query)
            assert top_k(conn, "item_local", query) == expected
            assert top_k(conn, "item", query) == expected


def test_hnsw_top_k_through_the_coordinator_is_pushed_down_and_merged(
    vectors: np.ndarray, conn: psycopg.Connection
) -> None:
    """Each shard walks its own index for its k best; the coordinator merges them.

    750 rows a shard are few enough that a shard's planner would rather sort them all, so
    sequential scans are switched off on the shards. EXPLAIN binds the values client-side:
    with server-side parameters Citus answers "Could not get remote plan" for the shards.
    """
    with conn.transaction():
        conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        conn.execute("SET LOCAL enable_seqscan = off")
        with psycopg.ClientCursor(conn) as cur:
            explain = sql.SQL("EXPLAIN (COSTS OFF) {}").format(top_k_sql("item"))
            cur.execute(explain, (queries()[0], K))
            plan = "\n".join(row[0] for row in cur.fetchall())
        found = [set(top_k(conn, "item", q)) for q in queries()]
    assert "Custom Scan (Citus Adaptive)" in plan
    assert f"Task Count: {SHARDS}" in plan
    assert "Index Scan using item_hnsw_" in plan  # the shard's own index (item_hnsw_<shardid>)
    truth = [set(exact_ids(vectors, q)) for q in queries()]
    recall = np.mean([len(f & t) / K for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95


def test_set_local_reaches_the_shards_only_when_propagated(
    vectors: np.ndarray, conn: psycopg.Connection
) -> None:
    """`hnsw.ef_search = 1` (no iterative scan) caps every shard's index scan at one row.

    So the LIMIT 10 query returns 10 rows when the setting stayed on the coordinator and
    one row per shard when the workers got it. Every case first sends the shards
    `enable_seqscan = off` (propagated), so that they do walk their index.
    """
    query = queries()[0]

    def rows_with(*statements: str) -> int:
        with conn.transaction():
            conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
            conn.execute("SET LOCAL enable_seqscan = off")
            for statement in statements:
                conn.execute(statement)
            return len(top_k(conn, "item", query))

    assert rows_with("SET LOCAL hnsw.ef_search = 1") == SHARDS
    assert rows_with("SELECT set_config('hnsw.ef_search', '1', true)") == K  # never propagated
    not_propagated = "SET LOCAL citus.propagate_set_commands = 'none'"
    assert rows_with(not_propagated, "SET LOCAL hnsw.ef_search = 1") == K
