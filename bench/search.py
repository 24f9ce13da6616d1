"""Search speed and recall at scale: the SQL the query module builds, without model time.

On N synthetic segments (384-d unit vectors around random cluster centres, 4 segments per
record, metadata flags with known selectivity, ACLs, content words) this measures, on the
same data and queries:

- mmsearch: `mmsearch.query.search.run` (what `Client.search` runs after encoding the
  query) as the app role with the caller's principals: recall@10 of records against the
  same request ranked exactly, p50/p95 latency of the whole transaction, QPS with 1 and 4
  concurrent clients, and the path it took (vector leg by HNSW or exactly, full text by its
  GIN index or by scanning);
- the floor: hand-written SQL for the same top-10 as the connecting user (`ORDER BY v <=> q
  LIMIT 10` over segments with the filter or ACL as a plain WHERE clause, or a plain
  `@@`/`ts_rank_cd` query), no RLS, no CTE/fusion, pgvector's default ef_search 40 with
  relaxed iterative scans; its recall is against its own exact answer. It cannot express
  the hybrid search;
- loading: COPY rate (binary COPY into a staging table, then INSERT into `segment`, no HNSW
  index) and the HNSW build time and size (m=16, ef_construction=64, the defaults that
  `register_space` uses).

Usage:

    python bench/search.py --quick          # 20k segments, 20 queries: under 2 minutes
    python bench/search.py [--n 100000]     # the default size

It starts a throwaway embedded PostgreSQL under a temporary directory, or, with `--dsn` or
MMSEARCH_DATABASE_URL, creates (and afterwards drops) a scratch database on that server.
Prints a table and writes bench/out/search-<n>.json. `--exact-below N` moves the point below
which a vector leg ranks exactly instead of walking the index (default 2000 matching rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from mmsearch.db import embedded, schema
from mmsearch.db.engine import Database
from mmsearch.eval.synthetic import build_index, bulk_load, clustered
from mmsearch.query.builder import KeywordLeg, SearchRequest, VectorLeg, build
from mmsearch.query.expression import parse
from mmsearch.query.filters import Filters
from mmsearch.query.search import run
from mmsearch.spaces import Space, register_space

OUT = Path(__file__).resolve().parent / "out"
DIM = 384
PER_RECORD = 4
K = 10
#: candidates per leg as `search()` computes them for k=10, one hit per record
CANDIDATES = max(4 * K, 40) * 3
WORDS_PER_TOPIC = 20
EVERYONE = ["group:all"]


@dataclass(frozen=True)
class Scenario:
    name: str
    principals: list[str]
    filter: str | None = None
    #: the legs of the request: one vector leg, vector + keyword, or keyword alone
    legs: Literal["vector", "hybrid", "keyword"] = "vector"
    #: the floor's WHERE clause (a constant of this file, its value bound as %(f)s) and that
    #: value; None: the hand-written query has no equivalent
    floor: tuple[str, Any] | None = ("true", None)


META = "r.metadata @> %(f)s"
ACL = "s.acl && %(f)s::text[]"
SCENARIOS = [
    Scenario("unfiltered", EVERYONE),
    Scenario("filter 10%", EVERYONE, "meta.s10 = true", floor=(META, Jsonb({"s10": True}))),
    Scenario("filter 1%", EVERYONE, "meta.s1 = true", floor=(META, Jsonb({"s1": True}))),
    Scenario("filter 0.1%", EVERYONE, "meta.s01 = true", floor=(META, Jsonb({"s01": True}))),
    Scenario("permission 10%", ["group:g3"], floor=(ACL, ["group:g3"])),
    Scenario("permission 1%", ["group:h42"], floor=(ACL, ["group:h42"])),
    Scenario("hybrid (vector + keyword)", EVERYONE, legs="hybrid", floor=None),
    Scenario("keyword only", EVERYONE, legs="keyword"),
]


@dataclass
class Corpus:
    space: Space
    queries: np.ndarray
    #: a topic word of each query's cluster, for the keyword leg
    words: list[str]
    load: dict[str, float]


@dataclass
class Row:
    scenario: str
    system: str
    path: str
    recall_at_10: float
    p50_ms: float
    p95_ms: float
    qps_1: float
    qps_4: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="segments (default 100000)")
    parser.add_argument("--queries", type=int, default=100, help="queries per scenario")
    parser.add_argument("--quick", action="store_true", help="20k segments, 20 queries")
    parser.add_argument(
        "--exact-below",
        type=int,
        default=SearchRequest.exact_below,
        help="rank a vector leg exactly when fewer rows match (SearchRequest.exact_below)",
    )
    parser.add_argument("--dsn", default=os.environ.get("MMSEARCH_DATABASE_URL"))
    args = parser.parse_args()
    if args.quick:
        args.n, args.queries = 20_000, 20
    started = time.perf_counter()
    with server(args.dsn) as maintenance, scratch_database(maintenance) as dsn:
        schema.upgrade(dsn)
        corpus = load(dsn, args.n, args.queries)
        db = Database(dsn, max_size=8)
        try:
            rows = [
                row
                for scenario in SCENARIOS
                for row in measure(db, dsn, corpus, scenario, args.exact_below)
            ]
        finally:
            db.close()
    report(args, corpus, rows, time.perf_counter() - started)


@contextmanager
def server(dsn: str | None) -> Iterator[str]:
    """A maintenance DSN: the given server, or a throwaway embedded one."""
    if dsn:
        yield dsn
        return
    with tempfile.TemporaryDirectory(prefix="mmsb-", dir="/tmp") as tmp:
        pgdata = Path(tmp) / "pg"
        try:
            yield embedded.ensure_running(pgdata)
        finally:
            embedded.stop(pgdata)


@contextmanager
def scratch_database(maintenance: str) -> Iterator[str]:
    name = f"mmsearch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(maintenance)
    params["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**params)
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def load(dsn: str, n: int, n_queries: int) -> Corpus:
    """Register a space, COPY the records and segments, then build the HNSW index."""
    rng = np.random.default_rng(2026)
    centres = rng.standard_normal((max(n // 100, 10), DIM), dtype=np.float32)
    segments, cluster = clustered(rng, centres, n)
    n_records = n // PER_RECORD
    flag = rng.random(n_records)
    common = [f"w{i:04d}" for i in range(500)]
    records = []
    for i in range(n_records):
        meta = {"n": i, "s10": bool(flag[i] < 0.1), "s1": bool(flag[i] < 0.01)}
        meta["s01"] = bool(flag[i] < 0.001)
        records.append((meta, [*EVERYONE, f"group:g{i % 10}", f"group:h{i % 100}"]))
    rows = []
    for j in range(n):
        topic = [f"t{cluster[j]}x{w}" for w in rng.integers(0, WORDS_PER_TOPIC, 3)]
        rows.append((j // PER_RECORD, " ".join([*topic, *rng.choice(common, 9)]), segments[j]))
    with psycopg.connect(dsn, autocommit=True) as conn:
        register_vector(conn)
        space = register_space(
            conn,
            "bench",
            modalities=["text"],
            model_id="synthetic-clustered",
            revision="1",
            dim=DIM,
            distance="cosine",
        )
        copy_started = time.perf_counter()
        bulk_load(conn, space, "bench", records, rows)
        copy_s = time.perf_counter() - copy_started
        build_started = time.perf_counter()
        build_index(conn, space, "1GB")
        build_s = time.perf_counter() - build_started
        conn.execute("VACUUM ANALYZE mmsearch.record, mmsearch.segment")
        index_mb = conn.execute(
            "SELECT pg_relation_size(%s::regclass) / 1e6",
            (f"mmsearch.segment_{space.column_name}_hnsw",),
        ).fetchone()[0]
        table_mb = conn.execute(
            "SELECT pg_total_relation_size('mmsearch.segment') / 1e6"
        ).fetchone()[0]
    queries, query_cluster = clustered(rng, centres, n_queries)
    words = [f"t{c}x{rng.integers(0, WORDS_PER_TOPIC)}" for c in query_cluster]
    return Corpus(
        space,
        queries,
        words,
        {
            "segments": n,
            "records": n_records,
            "copy_s": copy_s,
            "copy_segments_per_s": n / copy_s,
            "index_build_s": build_s,
            "index_mb": float(index_mb),
            "segment_table_mb": float(table_mb),
        },
    )


def request(
    corpus: Corpus, scenario: Scenario, i: int, exact_below: int, *, exact: bool = False
) -> SearchRequest:
    legs: list[VectorLeg | KeywordLeg] = []
    if scenario.legs != "keyword":
        legs.append(VectorLeg(corpus.space, corpus.queries[i], exact=exact))
    if scenario.legs != "vector":
        legs.append(KeywordLeg(corpus.words[i]))
    filters = Filters(where=parse(scenario.filter)) if scenario.filter else Filters()
    return SearchRequest(tuple(legs), filters, k=K, candidates=CANDIDATES, exact_below=exact_below)


def measure(
    db: Database, dsn: str, corpus: Corpus, scenario: Scenario, exact_below: int
) -> list[Row]:
    n = len(corpus.queries)

    def ours(i: int) -> list[int]:
        with db.reader(scenario.principals) as conn:
            return [
                row["record_id"] for row in run(conn, request(corpus, scenario, i, exact_below))
            ]

    def exact(i: int) -> list[int]:
        with db.reader(scenario.principals) as conn:
            statement, params = build(request(corpus, scenario, i, exact_below, exact=True))
            return [row[0] for row in conn.execute(statement, params).fetchall()]

    truth = [exact(i) for i in range(n)]
    rows = [timed(scenario.name, "mmsearch", path(db, corpus, scenario, exact_below), ours, truth)]
    if scenario.floor is None:
        rows.append(Row(scenario.name, "hand-written SQL", "n/a", *([float("nan")] * 5)))
        return rows
    floor_db = Database(dsn, max_size=8)
    try:
        floor, how = hand_written(floor_db, corpus, scenario)
        floor_truth = [floor(i, True) for i in range(n)]
        rows.append(
            timed(scenario.name, "hand-written SQL", how, lambda i: floor(i, False), floor_truth)
        )
    finally:
        floor_db.close()
    return rows


def path(db: Database, corpus: Corpus, scenario: Scenario, exact_below: int) -> str:
    """How the statement ranked: its vector leg by HNSW or exactly; full text by GIN or not."""
    search = request(corpus, scenario, 0, exact_below)
    statement, params = build(search)
    with db.reader(scenario.principals) as conn:
        run(conn, search)  # the same settings for the EXPLAIN below
        plan = [row[0] for row in conn.execute(sql.SQL("EXPLAIN ANALYZE ") + statement, params)]
    return describe(plan)


def describe(plan: list[str]) -> str:
    index_scan = next((line for line in plan if "_hnsw on" in line), None)
    how = []
    if index_scan is not None:
        how.append("exact" if "never executed" in index_scan else "hnsw")
    if any("@@" in line for line in plan):
        how.append("gin" if any("segment_tsv_idx" in line for line in plan) else "tsv scan")
    return " + ".join(how)


def hand_written(
    db: Database, corpus: Corpus, scenario: Scenario
) -> tuple[Callable[[int, bool], list[int]], str]:
    """The floor: one plain query, segments not records, as the connecting user (a superuser
    on the embedded server: no RLS, so the planner sees real statistics and may use every
    index). Returns the search and the path the planner takes for it."""
    assert scenario.floor is not None
    where, value = scenario.floor
    if scenario.legs == "keyword":
        statement = sql.SQL(
            "SELECT s.id FROM mmsearch.segment s, websearch_to_tsquery('english', %(w)s) AS q"
            " WHERE s.content_tsv @@ q ORDER BY ts_rank_cd(s.content_tsv, q) DESC, s.id LIMIT 10"
        )
    else:
        statement = sql.SQL(
            "SELECT s.id FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id"
            " WHERE {where} ORDER BY s.{column} <=> %(q)s LIMIT 10"
        ).format(where=sql.SQL(where), column=sql.Identifier(corpus.space.column_name))

    def search(i: int, exact: bool, explain: bool = False) -> list[Any]:
        with db.transaction() as conn:
            conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            if exact:
                conn.execute("SET LOCAL enable_indexscan = off")
            query = sql.SQL("EXPLAIN ") + statement if explain else statement
            # unprepared: a cached plan would ignore `enable_indexscan` (exact or not)
            params = {"q": corpus.queries[i], "f": value, "w": corpus.words[i]}
            return [row[0] for row in conn.execute(query, params, prepare=False).fetchall()]

    plan = search(0, False, explain=True)
    return search, describe(plan) or "exact"


def timed(
    scenario: str,
    system: str,
    how: str,
    search: Callable[[int], list[int]],
    truth: list[list[int]],
) -> Row:
    n = len(truth)
    latencies, recalls = [], []
    for i in range(n):
        started = time.perf_counter()
        found = search(i)
        latencies.append(time.perf_counter() - started)
        recalls.append(len(set(found) & set(truth[i])) / max(len(truth[i]), 1))
    qps_1 = n / sum(latencies)
    return Row(
        scenario,
        system,
        how,
        statistics.fmean(recalls),
        1e3 * float(np.percentile(latencies, 50)),
        1e3 * float(np.percentile(latencies, 95)),
        qps_1,
        concurrent_qps(search, n, clients=4),
    )


def concurrent_qps(search: Callable[[int], list[int]], n: int, *, clients: int) -> float:
    """Queries per second with `clients` threads, each on its own pooled connection."""
    total = max(2 * n, 40)
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            search(i % n)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started)


def report(args: argparse.Namespace, corpus: Corpus, rows: list[Row], wall_s: float) -> None:
    load = corpus.load
    print(
        f"\n{load['segments']:,} segments ({load['records']:,} records), {DIM}-d,"
        f" {len(corpus.queries)} queries per scenario, k={K}, candidates {CANDIDATES},"
        f" exact below {args.exact_below} matching rows"
    )
    print(
        f"COPY: {load['copy_segments_per_s']:,.0f} segments/s ({load['copy_s']:.1f} s);"
        f" HNSW build {load['index_build_s']:.1f} s, index {load['index_mb']:.0f} MB,"
        f" segment table {load['segment_table_mb']:.0f} MB\n"
    )
    header = "| scenario | system | path | recall@10 | p50 ms | p95 ms | QPS ×1 | QPS ×4 |"
    print(header)
    print("|" + "---|" * 8)
    for row in rows:
        if row.path == "n/a":
            print(f"| {row.scenario} | {row.system} | cannot express it | | | | | |")
            continue
        print(
            f"| {row.scenario} | {row.system} | {row.path} | {row.recall_at_10:.3f} |"
            f" {row.p50_ms:.1f} | {row.p95_ms:.1f} | {row.qps_1:.0f} | {row.qps_4:.0f} |"
        )
    print(f"\nwall time {wall_s:.0f} s")
    OUT.mkdir(exist_ok=True)
    variant = "" if args.exact_below == SearchRequest.exact_below else f"-exact{args.exact_below}"
    out = OUT / f"search-{load['segments']}{variant}.json"
    out.write_text(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "args": {"n": args.n, "queries": args.queries},
                "k": K,
                "candidates": CANDIDATES,
                "exact_below": args.exact_below,
                "load": load,
                "rows": [asdict(row) for row in rows],
                "wall_s": wall_s,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
