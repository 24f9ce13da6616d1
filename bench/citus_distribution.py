"""Citus distribution column: by record vs by collection vs one node, fan-out and recall.

On N synthetic segments (clustered unit vectors, 4 segments per record, records spread
evenly over C collections) this loads the same rows three ways through one Citus
coordinator and measures the vector leg's shape (`ORDER BY embedding <=> q LIMIT c`):

- `single`:        plain PostgreSQL tables on the coordinator (no Citus): the one-node baseline;
- `by_record`:     segments hash-distributed by record id over S shards (2 workers): every
                   search fans out to all S shards, each walks its own HNSW index for its
                   c nearest, the coordinator merges S*c rows;
- `by_collection`: segments distributed by collection id: a search within one collection
                   is routed to the one shard holding it; an unfiltered one fans out.

Each query asks for c candidates per shard (the LIMIT Citus pushes down, with
`hnsw.ef_search = c` sent to the shards by `SET LOCAL` with
`citus.propagate_set_commands = 'local'`, relaxed iterative scans on) and keeps the best
10. Recall@10 is against exact search with numpy over the same vectors (and the same
collection). Latency is the whole transaction as seen by the client, p50/p95 over the
queries, after one untimed warm-up query per setting.

    python -m bench.citus_distribution --quick        # 20k segments, 20 queries
    python -m bench.citus_distribution [--n 100000] [--shards 32] [--collections 8]

It starts a local cluster (coordinator + 2 workers, `mmsearch.cluster.local`) in a
temporary directory, or uses the coordinator given with `--dsn` (a database it may create
tables in). Prints a table and writes bench/out/citus-distribution-<n>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from bench.synthetic import clustered

LAYOUTS = ("single", "by_record", "by_collection")
CANDIDATES = (10, 20, 40, 100)
K = 10


@dataclass(frozen=True)
class Row:
    layout: str
    scenario: str
    candidates: int
    recall: float
    p50_ms: float
    p95_ms: float
    tasks: int
    path: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="segments (default 100000)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shards", type=int, default=32, help="shards per distributed table")
    parser.add_argument("--collections", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="20k segments, 20 queries")
    parser.add_argument("--dsn", help="a Citus coordinator (default: a throwaway local cluster)")
    args = parser.parse_args()
    if args.quick:
        args.n, args.queries = 20_000, 20
    rng = np.random.default_rng(796)
    centres = rng.standard_normal((100, args.dim)).astype(np.float32)
    vectors = clustered(rng, centres, args.n)[0].astype(np.float32)
    queries = clustered(rng, centres, args.queries)[0].astype(np.float32)
    collection_of = (np.arange(args.n) // 4) % args.collections  # record i: collection i % C
    with coordinator(args.dsn) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        loads = {layout: load(conn, layout, vectors, collection_of, args) for layout in LAYOUTS}
        rows = [
            row
            for layout in LAYOUTS
            for row in measure(conn, layout, vectors, queries, collection_of)
        ]
        for layout in LAYOUTS:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"seg_{layout}")))
    report(args, loads, rows)


@contextmanager
def coordinator(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from mmsearch.cluster.local import LocalCluster

    root = Path(tempfile.mkdtemp(prefix="mmsearch-citus-bench-", dir="/tmp"))
    cluster = LocalCluster(root)
    try:
        yield cluster.up()
    finally:
        cluster.down(purge=True)


def load(
    conn: psycopg.Connection,
    layout: str,
    vectors: np.ndarray,
    collection_of: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, float]:
    """COPY the rows in, then build the HNSW index (per shard when distributed)."""
    table = sql.Identifier(f"seg_{layout}")
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (id bigint, record_id bigint, collection_id int,"
            " embedding vector({}), PRIMARY KEY ({}, id))"
        ).format(
            table,
            sql.Literal(args.dim),
            sql.Identifier("collection_id" if layout == "by_collection" else "record_id"),
        )
    )
    if layout != "single":
        column = "collection_id" if layout == "by_collection" else "record_id"
        conn.execute(
            "SELECT create_distributed_table(%s, %s, shard_count => %s, colocate_with => 'none')",
            (f"seg_{layout}", column, args.shards),
        )
    began = time.perf_counter()
    copy = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(table)
    with conn.cursor() as cur, cur.copy(copy) as cp:
        cp.set_types(["int8", "int8", "int4", "vector"])
        for i, vector in enumerate(vectors):
            cp.write_row([i, i // 4, int(collection_of[i]), vector])
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    with conn.transaction():
        conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute(
            sql.SQL("CREATE INDEX ON {} USING hnsw (embedding vector_cosine_ops)").format(table)
        )
    indexed = time.perf_counter() - began
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    print(
        f"{layout}: COPY {loaded:.1f} s ({len(vectors) / loaded:,.0f} rows/s), HNSW {indexed:.1f} s"
    )
    return {"copy_s": round(loaded, 2), "index_s": round(indexed, 2)}


def measure(
    conn: psycopg.Connection,
    layout: str,
    vectors: np.ndarray,
    queries: np.ndarray,
    collection_of: np.ndarray,
) -> list[Row]:
    rows = []
    for scenario in ("unfiltered", "one_collection"):
        collection = 0 if scenario == "one_collection" else None
        ids = np.flatnonzero(collection_of == 0) if collection is not None else None
        truth = [exact(vectors, q, ids) for q in queries]
        for candidates in CANDIDATES:
            found, times = [], []
            search(conn, layout, queries[0], candidates, collection)  # warm-up
            for query in queries:
                began = time.perf_counter()
                found.append(search(conn, layout, query, candidates, collection))
                times.append((time.perf_counter() - began) * 1000)
            recall = float(
                np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)])
            )
            rows.append(
                Row(
                    layout,
                    scenario,
                    candidates,
                    round(recall, 4),
                    round(statistics.median(times), 2),
                    round(float(np.percentile(times, 95)), 2),
                    *plan_shape(conn, layout, queries[0], candidates, collection),
                )
            )
    return rows


def statement(layout: str, collection: int | None) -> sql.Composed:
    where = sql.SQL(" WHERE collection_id = %(c)s" if collection is not None else "")
    return sql.SQL("SELECT id FROM {} {} ORDER BY embedding <=> %(q)s LIMIT %(n)s").format(
        sql.Identifier(f"seg_{layout}"), where
    )


def search(
    conn: psycopg.Connection,
    layout: str,
    query: np.ndarray,
    candidates: int,
    collection: int | None,
) -> list[int]:
    """The c nearest per shard (pushed-down LIMIT), merged; the best K of them."""
    with conn.transaction():
        settings(conn, candidates)
        rows = conn.execute(
            statement(layout, collection), {"q": query, "n": candidates, "c": collection}
        ).fetchall()
    return [row[0] for row in rows[:K]]


def settings(conn: psycopg.Connection, candidates: int) -> None:
    """ef_search = the candidate count, on the shards too (SET LOCAL, propagated)."""
    conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(candidates)))
    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")


def plan_shape(
    conn: psycopg.Connection,
    layout: str,
    query: np.ndarray,
    candidates: int,
    collection: int | None,
) -> tuple[int, str]:
    """Task count of the plan (1 on one node) and how a shard scans: HNSW index or not."""
    with conn.transaction(), psycopg.ClientCursor(conn) as cur:
        settings(conn, candidates)
        cur.execute(
            sql.SQL("EXPLAIN (COSTS OFF) {}").format(statement(layout, collection)),
            {"q": query, "n": candidates, "c": collection},
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
    tasks = next(
        (int(line.split(":")[1]) for line in plan.splitlines() if "Task Count:" in line), 1
    )
    return tasks, "hnsw" if "Index Scan" in plan else "scan"


def exact(vectors: np.ndarray, query: np.ndarray, ids: np.ndarray | None) -> list[int]:
    pool = np.arange(len(vectors)) if ids is None else ids
    distances = 1 - vectors[pool] @ query
    return pool[np.argsort(distances, kind="stable")[:K]].tolist()


def report(args: argparse.Namespace, loads: dict[str, dict[str, float]], rows: list[Row]) -> None:
    print(f"\n{args.n:,} segments, {args.dim}-d, {args.collections} collections")
    print(f"{args.shards} shards per distributed table")
    print(
        f"{'layout':<14}{'scenario':<16}{'c/shard':>8}{'tasks':>7}{'path':>6}"
        f"{'recall@10':>11}{'p50 ms':>9}{'p95 ms':>9}"
    )
    for r in rows:
        print(
            f"{r.layout:<14}{r.scenario:<16}{r.candidates:>8}{r.tasks:>7}{r.path:>6}"
            f"{r.recall:>11.3f}{r.p50_ms:>9.1f}{r.p95_ms:>9.1f}"
        )
    out = Path("bench/out") / f"citus-distribution-{args.n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "args": vars(args) | {"dsn": None},
                "load": loads,
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
